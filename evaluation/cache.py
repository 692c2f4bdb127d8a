"""On-disk stores: the feature cache and reference statistics.

Feature chunks are keyed by a hash of (metric feature key, library versions, the content hashes of
the chunk's items), so a re-run, or a killed run started again, extracts nothing it already has.
Reference statistics are stored with the metric id and the manifest hash of the real set they
came from, and refuse to load under any other metric id. Every write is atomic.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.errors import EvaluationError, MetricIdMismatch
from evaluation.frechet import FeatureStats
from evaluation.metric_id import MetricId
from nuwa.io import atomic_open


class CacheChangedWarning(UserWarning):
    """A cached item no longer matches the hash recorded when it was made; it is made again."""


def warn_changed(what: str, redo: str) -> None:
    """One warning for a cached item that changed on disk: ``cached <what> ...; <redo>``."""
    warnings.warn(f"cached {what} changed since it was made; {redo}", CacheChangedWarning,
                  stacklevel=3)  # fmt: skip


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 over an array's dtype, shape and bytes."""
    hasher = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    hasher.update(np.ascontiguousarray(array).data)
    return hasher.hexdigest()


class FeatureCache:
    """Feature arrays stored as `<root>/<key[:2]>/<key>.npz` with the SHA-256 of their content
    (no pickle); an array that no longer matches its hash counts as a miss and is replaced."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> np.ndarray | None:
        """The array stored under ``key``, or None (counted as a hit or a miss)."""
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as stored:
                array, recorded = stored["features"], str(stored["sha256"])
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            self.misses += 1
            return None
        if array_sha256(array) != recorded:
            warn_changed(f"features {path}", "extracting them again")
            self.misses += 1
            return None
        self.hits += 1
        return array

    def put(self, key: str, array: np.ndarray) -> None:
        """Store ``array`` and its hash under ``key`` atomically."""
        array = np.ascontiguousarray(array)
        with atomic_open(self._path(key)) as f:
            np.savez(f, features=array, sha256=np.asarray(array_sha256(array)))


def save_reference_stats(
    path: str | Path,
    stats: Mapping[str, FeatureStats],
    metric_id: MetricId,
    manifest_hash: str,
) -> None:
    """Write per-key statistics (e.g. per block position) with their provenance to one .npz."""
    arrays: dict[str, Any] = {}
    for key, value in stats.items():
        arrays.update(value.to_arrays(prefix=f"{key}/"))
    meta = {"metric_id": metric_id.to_json(), "manifest_hash": manifest_hash, "keys": sorted(stats)}
    arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True))
    with atomic_open(Path(path)) as f:
        np.savez(f, **arrays)


def load_reference_stats(
    path: str | Path, metric_id: MetricId, manifest_hash: str | None = None
) -> tuple[dict[str, FeatureStats], str]:
    """Read statistics written by `save_reference_stats`; returns (stats per key, manifest hash).

    Raises MetricIdMismatch if they were computed under another metric id, and EvaluationError if
    ``manifest_hash`` is given and differs (the real set changed).
    """
    with np.load(Path(path), allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        stored = meta["metric_id"]["id"]
        if stored != metric_id.digest:
            raise MetricIdMismatch(
                f"{path} holds statistics for {meta['metric_id']['label']}, not {metric_id.label}"
            )
        if manifest_hash is not None and meta["manifest_hash"] != manifest_hash:
            raise EvaluationError(
                f"{path} was computed from real set {meta['manifest_hash'][:12]}, "
                f"not {manifest_hash[:12]}; recompute it"
            )
        stats = {key: FeatureStats.from_arrays(data, prefix=f"{key}/") for key in meta["keys"]}
    return stats, meta["manifest_hash"]


def save_mu_sigma_npz(path: str | Path, stats: FeatureStats) -> None:
    """Write {mu, sigma} as clean-fid and pytorch-fid read reference statistics."""
    with atomic_open(Path(path)) as f:
        np.savez(f, mu=stats.mean(), sigma=stats.cov())
