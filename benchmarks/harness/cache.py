"""Content-addressed stores that make runs resumable: generated batches, real items, metric values.

A generated batch lives in ``<root>/<key[:2]>/<key>/`` where the key hashes everything the batch
depends on (checkpoint, task geometry, sampler, seed, inputs). Its samples are written first and
``done.json`` last, each atomically, so a batch counts as finished only once all of it is on
disk: a killed run regenerates at most the batches it was in the middle of. Metric values are
cached under a key over the metric id and the content hashes of every sample they saw, so a
finished run asked again recomputes nothing.

Samples are lossless PNG: an image is ``<name>.png``, a video a folder ``<name>/`` of frames.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evaluation.cache import array_sha256, warn_changed
from evaluation.metric_id import canonical_json
from nuwa.io import atomic_write_bytes, atomic_write_json

DONE = "done.json"


def digest(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def list_hash(hashes: Sequence[str]) -> str:
    """SHA-256 over per-item hashes in order (lm-eval's ``task_hashes``)."""
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_sample(stem: Path, array: np.ndarray) -> Path:
    """Write uint8 [H, W, 3] as ``stem.png`` or [F, H, W, 3] as ``stem/000.png...``; returns it."""
    if array.dtype != np.uint8 or array.ndim not in (3, 4) or array.shape[-1] != 3:
        raise ValueError(
            f"a sample must be uint8 [H, W, 3] or [F, H, W, 3]; got {array.dtype} {array.shape}"
        )
    if array.ndim == 3:
        path = stem.with_name(stem.name + ".png")
        atomic_write_bytes(path, _png(array))
        return path
    for index, frame in enumerate(array):
        atomic_write_bytes(stem / f"{index:03d}.png", _png(frame))
    return stem


def read_sample(path: Path) -> np.ndarray:
    """Inverse of ``write_sample``: uint8 [H, W, 3] or [F, H, W, 3]."""
    if path.is_dir():
        return np.stack([read_sample(frame) for frame in sorted(path.glob("*.png"))])
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def stored_intact(path: Path, sha256: str) -> bool:
    """Whether the sample stored at ``path`` is there and still has the pixels hashed as
    ``sha256`` (``array_sha256``) when it was written."""
    try:
        return array_sha256(read_sample(path)) == sha256
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class SampleRef:
    """A stored sample: where it is and the hash of its pixels."""

    path: Path
    sha256: str

    def load(self) -> np.ndarray:
        return read_sample(self.path)


class SampleStore:
    """Finished batches of generated samples, addressed by a key over their inputs."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def lookup(self, key: str) -> list[SampleRef] | None:
        """The batch's samples if it finished (``done.json`` present) and every file is there
        with the pixels it was written with; None (regenerate it) otherwise, with a warning
        when a file changed on disk."""
        folder = self.folder(key)
        try:
            done = json.loads((folder / DONE).read_text(encoding="utf-8"))
            refs = [
                SampleRef(folder / name, sha)
                for name, sha in zip(done["files"], done["sha256"], strict=True)
            ]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        for ref in refs:
            if not stored_intact(ref.path, ref.sha256):
                warn_changed(f"sample {ref.path} is missing or", "generating its batch again")
                return None
        return refs

    def save(
        self, key: str, samples: Sequence[np.ndarray], info: dict[str, Any]
    ) -> list[SampleRef]:
        """Write a finished batch (samples first, ``done.json`` last); ``info`` is kept beside."""
        folder = self.folder(key)
        refs = [
            SampleRef(write_sample(folder / f"{index:03d}", sample), array_sha256(sample))
            for index, sample in enumerate(samples)
        ]
        atomic_write_json(
            folder / DONE,
            {
                "files": [r.path.name for r in refs],
                "sha256": [r.sha256 for r in refs],
                "info": info,
            },
        )
        return refs


class ValueCache:
    """Small JSON records (metric values with their details) under a content key, each stored
    with the digest of its value: an edited record is recomputed, not reused."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def get(self, key: str) -> Any | None:
        path = self.root / f"{key}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            value, recorded = record["value"], record["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if digest(value) != recorded:
            warn_changed(f"metric value {path}", "computing it again")
            return None
        return value

    def put(self, key: str, value: Any) -> None:
        atomic_write_json(self.root / f"{key}.json", {"value": value, "sha256": digest(value)})
