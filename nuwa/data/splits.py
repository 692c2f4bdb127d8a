"""The LHQC-repro v1 split, its committed manifest, hash pinning and leakage checks.

NUWA-Infinity's 85k/5k LHQC split was never published, so this suite fixes its own: a hash order
that no one can tune and anyone can recompute. Test = the 5,000 LHQ indices with the smallest
sha256("lhqc-test-v1:%07d"), val = the next 1,000, train = the remaining 84,000. Index order is not
used because LHQ is sorted by likelihood (low indices are noisier). Results on this split are
"LHQC-repro", never "LHQC".

The manifest (manifests/lhqc_repro_v1.jsonl.gz, one JSON row per LHQ index) starts with only
indices and splits: we do not ship LHQ pixels, so we cannot know their hashes. `verify` fills in
each file's sha256 (per variant, e.g. "lhq256_png") and a 64-bit perceptual hash the first time
it sees real data, and checks them on every later run.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft
from PIL import Image

from nuwa.io import atomic_write_bytes, sha256_file

SPLIT_NAME = "lhqc-repro-v1"
N_LHQ = 90_000
N_TEST = 5_000
N_VAL = 1_000
TEST_DIGEST = "6fce0b1bd23182171544993a2821c16f603a0ce9cbdf80ee31137a086f552f69"
VAL_DIGEST = "47f78e98a00b011fcbe4ed3188b074ebce9eaf5f3cd195135139622954d39d23"
MANIFEST_PATH = Path(__file__).parent / "manifests" / "lhqc_repro_v1.jsonl.gz"
SPLITS = ("train", "val", "test")
NEAR_DUPLICATE_BITS = 2  # perceptual hashes this close (Hamming) count as the same picture


def lhq_id(index: int) -> str:
    """Record id of LHQ image `index`: "lhq_0001234"."""
    return f"lhq_{index:07d}"


@functools.cache
def split_indices() -> dict[str, tuple[int, ...]]:
    """{"train", "val", "test"} -> sorted LHQ indices of LHQC-repro v1."""
    keys = [hashlib.sha256(f"lhqc-test-v1:{i:07d}".encode()).digest() for i in range(N_LHQ)]
    order = sorted(range(N_LHQ), key=keys.__getitem__)
    return {
        "test": tuple(sorted(order[:N_TEST])),
        "val": tuple(sorted(order[N_TEST : N_TEST + N_VAL])),
        "train": tuple(sorted(order[N_TEST + N_VAL :])),
    }


@functools.cache
def _split_of_index() -> dict[int, str]:
    return {i: name for name, indices in split_indices().items() for i in indices}


def split_of(index: int) -> str:
    """The LHQC-repro v1 split ("train", "val" or "test") of LHQ image `index`."""
    try:
        return _split_of_index()[index]
    except KeyError:
        raise ValueError(f"LHQ index {index} is outside 0..{N_LHQ - 1}") from None


def split_digest(indices: Iterable[int]) -> str:
    """sha256 of the sorted 7-digit ids joined by newlines (no trailing newline)."""
    return hashlib.sha256("\n".join(f"{i:07d}" for i in sorted(indices)).encode()).hexdigest()


# ---------------------------------------------------------------- manifest


@dataclass
class ManifestRow:
    """One LHQ image: its split, pinned file hashes per variant, perceptual hash, caption."""

    lhq_index: int
    split: str
    sha256: dict[str, str] = field(default_factory=dict)
    phash: str | None = None
    caption: str | None = None
    leak_of: int | None = None  # set on train/val rows that duplicate a test image


def build_manifest() -> list[ManifestRow]:
    """The fresh manifest: every index with its split and nothing pinned."""
    return [ManifestRow(i, split_of(i)) for i in range(N_LHQ)]


def read_manifest(path: str | Path = MANIFEST_PATH) -> list[ManifestRow]:
    """Rows of a manifest (.jsonl or .jsonl.gz), ordered by LHQ index."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [ManifestRow(**json.loads(line)) for line in f if line.strip()]


def write_manifest(rows: list[ManifestRow], path: str | Path = MANIFEST_PATH) -> None:
    """Write rows atomically; gzip output is byte-reproducible (no name or time in the header)."""
    text = "".join(
        json.dumps({k: v for k, v in vars(r).items() if v not in (None, {})}, sort_keys=True) + "\n"
        for r in rows
    ).encode()
    if Path(path).suffix == ".gz":
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as f:
            f.write(text)
        text = buffer.getvalue()
    atomic_write_bytes(path, text)


def manifest_digests(rows: list[ManifestRow]) -> dict[str, str]:
    """Split digests recomputed from a manifest (they must equal those of the hash rule)."""
    return {s: split_digest(r.lhq_index for r in rows if r.split == s) for s in SPLITS}


# ---------------------------------------------------------------- hashes


def perceptual_hash(image: Image.Image) -> str:
    """64-bit DCT hash (16 hex digits): the signs of the 8x8 lowest DCT frequencies of a 32x32
    grayscale thumbnail against their median. Robust to re-encoding and resizing; near-equal
    pictures differ in a few bits, so compare with Hamming distance."""
    thumb = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), np.float64)
    low = scipy.fft.dctn(thumb, norm="ortho")[:8, :8].ravel()
    bits = low > np.median(low[1:])  # the DC term would dominate the median
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two perceptual hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def variant_of(path: Path, width: int, height: int) -> str:
    """Which LHQ release a file belongs to, from its size and format, e.g. "lhq256_png"."""
    fmt = "jpg" if path.suffix.lower() in (".jpg", ".jpeg") else path.suffix.lower().lstrip(".")
    return f"lhq{width}_{fmt}" if width == height else f"lhq_{fmt}"


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (what the manifest pins)."""
    return sha256_file(path)


def cross_split_duplicates(rows: list[ManifestRow]) -> list[tuple[int, int]]:
    """(train/val index, test index) pairs whose perceptual hashes are within NEAR_DUPLICATE_BITS.

    All pairs are compared with vectorised XOR + popcount in chunks (85k x 5k pairs: seconds).
    """
    test = [r for r in rows if r.split == "test" and r.phash]
    other = [r for r in rows if r.split != "test" and r.phash]
    if not test or not other:
        return []
    test_bits = np.array([int(r.phash, 16) for r in test], np.uint64)
    pairs = []
    for start in range(0, len(other), 2048):
        chunk = other[start : start + 2048]
        bits = np.array([int(r.phash, 16) for r in chunk], np.uint64)
        distance = np.bitwise_count(bits[:, None] ^ test_bits[None, :])
        for i, j in zip(*np.nonzero(distance <= NEAR_DUPLICATE_BITS), strict=True):
            pairs.append((chunk[i].lhq_index, test[j].lhq_index))
    return pairs
