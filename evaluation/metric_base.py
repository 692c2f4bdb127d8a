"""Shared machinery of the feature-based metrics (torchmetrics-style update/compute/reset).

A metric owns: the extractor name (the module loads lazily on the first update, so a metric id is
available on machines without weights), an optional feature cache, and per-side manifest hashes
of everything it has seen. Subclasses define `protocol()` and what `update`/`compute` keep.

With ``bootstrap=R`` (> 0) a metric also keeps what it needs per item (image, canvas, clip) and
``compute`` attaches a seeded bootstrap interval over items (evaluation.bootstrap) to its result.
The replicate count and seed change no value, so they are not part of the metric id; they are
recorded in the interval.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from evaluation.bootstrap import Interval, bootstrap_interval, check_replicates
from evaluation.cache import FeatureCache, load_reference_stats, save_reference_stats
from evaluation.errors import EvaluationError
from evaluation.extraction import iter_features
from evaluation.extractors import ExtractorSpec, get_extractor_spec, load_extractor
from evaluation.frechet import FRECHET_IMPL, FeatureStats, fid_from_features
from evaluation.metric_id import MetricId, canonical_json
from evaluation.preprocess import get_preprocess
from evaluation.samples import ClipSet, ImageSet, as_clip_set, as_image_set

SIDES = ("generated", "real")


@dataclass(frozen=True)
class MetricResult:
    """One number with its identity: value, metric id, sample counts, details (std, etc.) and,
    when the metric was built with bootstrap > 0, its bootstrap interval over items."""

    metric_id: MetricId
    value: float
    n: dict[str, int]
    manifests: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    interval: Interval | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-able record for results files (``interval`` null when none was computed)."""
        return {
            "metric": self.metric_id.to_json(),
            "value": self.value,
            "n": self.n,
            "manifests": self.manifests,
            "details": self.details,
            "interval": None if self.interval is None else self.interval.to_json(),
        }


def item_interval(
    statistic: Callable[[dict[str, np.ndarray]], float],
    sizes: dict[str, int],
    estimate: float,
    replicates: int,
    seed: int,
) -> Interval | None:
    """The bootstrap interval of ``statistic`` over items (None when ``replicates`` is 0)."""
    if not replicates:
        return None
    return bootstrap_interval(statistic, sizes, estimate=estimate, replicates=replicates, seed=seed)


class FeatureMetric:
    """Base of FID, Block-FID, KID, IS, CLIP-SIM and FVD."""

    NAME: ClassVar[str]
    VERSION: ClassVar[int]
    MODALITY: ClassVar[str] = "image"
    PAPER_PROTOCOL: ClassVar[dict[str, Any] | None] = None  # None: the paper has no such metric

    def __init__(
        self,
        extractor: str,
        *,
        output: str | None = None,
        batch_size: int = 32,
        device: str | torch.device = "cpu",
        cache_dir: str | Path | None = None,
        progress: bool = True,
        bootstrap: int = 0,
        bootstrap_seed: int = 0,
    ) -> None:
        check_replicates(bootstrap)
        self.bootstrap, self.bootstrap_seed = bootstrap, bootstrap_seed
        self.spec: ExtractorSpec = get_extractor_spec(extractor)
        if self.spec.modality != self.MODALITY:
            raise EvaluationError(
                f"{self.NAME} needs a {self.MODALITY} extractor; "
                f"{extractor} is {self.spec.modality}"
            )
        self.output = output or self.spec.default_output
        if self.output not in self.spec.outputs:
            raise EvaluationError(
                f"{self.NAME} needs output {self.output!r}; "
                f"{extractor} provides {sorted(self.spec.outputs)}"
            )
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.cache = FeatureCache(cache_dir) if cache_dir is not None else None
        self.progress = progress
        self._model: nn.Module | None = None
        self.reset()

    # --- identity -------------------------------------------------------------------------
    def protocol(self) -> dict[str, Any]:
        """Protocol parameters (JSON-able) that define the number; part of the metric id."""
        return {}

    def summary(self) -> list[str]:
        """A few short readable protocol tokens for the metric id label."""
        return []

    @cached_property
    def metric_id(self) -> MetricId:
        """Hash of extractor provenance + output + protocol + implementation version."""
        protocol = self.protocol()
        config = {
            "extractor": self.spec.provenance(),
            "output": self.output,
            "protocol": protocol,
            "implementation": {"metric": f"{self.NAME}@{self.VERSION}", "frechet": FRECHET_IMPL},
            "summary": self.summary(),
        }
        comparable = (
            self.spec.paper_weights
            and self.PAPER_PROTOCOL is not None
            and all(protocol.get(k) == v for k, v in self.PAPER_PROTOCOL.items())
        )
        return MetricId(f"{self.NAME}@{self.VERSION}", self.spec.name, config, comparable)

    @cached_property
    def feature_key(self) -> str:
        """What cached features depend on: extractor, output, and how samples become views."""
        definition = {
            "extractor": self.spec.provenance(),
            "output": self.output,
            "views": self.views_definition(),
        }
        return hashlib.sha256(canonical_json(definition).encode()).hexdigest()

    def views_definition(self) -> dict[str, Any]:
        """How one sample becomes extractor inputs (e.g. the block grid); part of feature_key."""
        return {"views": "whole sample"}

    # --- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything seen so far."""
        self._manifest = {side: hashlib.sha256() for side in SIDES}
        self._counts = dict.fromkeys(SIDES, 0)

    def manifests(self) -> dict[str, str]:
        """Content hash of each side's items, in update order (sides with no items omitted)."""
        return {s: self._manifest[s].hexdigest() for s in SIDES if self._counts[s]}

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            self._model = load_extractor(self.spec.name).to(self.device)
        return self._model

    def views(self, sample: np.ndarray) -> list[torch.Tensor]:
        """The extractor inputs one sample becomes (default: the whole sample, preprocessed)."""
        return [get_preprocess(self.spec.preprocessing)(sample)]

    def samples(self, data: Any) -> ImageSet | ClipSet:
        """Validate ``data`` as this metric's kind of sample set."""
        return as_clip_set(data) if self.MODALITY == "video" else as_image_set(data)

    def extract(self, data: Any) -> np.ndarray:
        """Features [N * views per sample, D] of ``data`` (cached; not added to the state)."""
        samples = self.samples(data)
        return np.concatenate(list(self._features(samples, side=None)))

    def _features(self, samples: ImageSet | ClipSet, side: str | None) -> Iterator[np.ndarray]:
        """Feature chunks of ``samples`` (cached), recording their hashes in ``side``'s manifest."""
        if side is not None:
            self._counts[side] += len(samples)
        return iter_features(
            samples,
            self.views,
            _LazyModel(self),
            self.output,
            feature_key=self.feature_key,
            cache=self.cache,
            batch_size=self.batch_size,
            device=self.device,
            progress=self.progress,
            desc=f"{self.NAME} {side or 'features'}",
            on_item_hash=None
            if side is None
            else lambda h: self._manifest[side].update(h.encode()),
        )

    def _interval(
        self,
        statistic: Callable[[dict[str, np.ndarray]], float],
        sizes: dict[str, int],
        estimate: float,
    ) -> Interval | None:
        """The bootstrap interval of ``statistic`` with this metric's replicates and seed."""
        return item_interval(statistic, sizes, estimate, self.bootstrap, self.bootstrap_seed)

    def _result(
        self,
        value: float,
        details: dict[str, Any] | None = None,
        metric_id=None,
        interval: Interval | None = None,
    ) -> MetricResult:
        return MetricResult(
            metric_id or self.metric_id,
            float(value),
            {s: c for s, c in self._counts.items() if c},
            self.manifests(),
            details or {},
            interval,
        )


class _LazyModel:
    """Loads the metric's extractor only when a chunk actually misses the cache."""

    def __init__(self, metric: FeatureMetric) -> None:
        self.metric = metric
        self.spec = metric.spec

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.metric.model(x)


class FrechetMetric(FeatureMetric):
    """A metric whose state is streaming Gaussian statistics per key and side (FID: one key
    "all"; Block-FID: one per block position). With bootstrap > 0 it also keeps, per side and
    key, the feature rows in update order (one row per item and key), so that a resample of
    items takes the same items at every key."""

    def reset(self) -> None:
        super().reset()
        self.stats: dict[str, dict[str, FeatureStats]] = {side: {} for side in SIDES}
        self.rows: dict[str, dict[str, list[np.ndarray]]] = {side: {} for side in SIDES}

    def _accumulate(self, side: str, key: str, features: np.ndarray) -> None:
        table = self.stats[side]
        if key not in table:
            table[key] = FeatureStats.empty(features.shape[1])
        table[key].update(features)
        if self.bootstrap:
            self.rows[side].setdefault(key, []).append(np.ascontiguousarray(features))

    def item_features(self) -> dict[str, dict[str, np.ndarray]]:
        """Per side and key, the features [N items, D] in update order (row i: item i)."""
        if not self.bootstrap:
            raise EvaluationError("per-item features are kept only when bootstrap > 0")
        return {
            side: {key: np.concatenate(chunks) for key, chunks in table.items()}
            for side, table in self.rows.items()
        }

    def _key_interval(self, key: str, value: float) -> Interval | None:
        """Bootstrap interval over items of the Fréchet distance at one key (FID, FVD: the whole
        sample), ``value`` being its point estimate; None when bootstrap is 0."""
        if not self.bootstrap:
            return None
        rows = self.item_features()
        generated, real = rows["generated"][key], rows["real"][key]

        def statistic(indices: dict[str, np.ndarray]) -> float:
            return fid_from_features(generated[indices["generated"]], real[indices["real"]])

        return self._interval(statistic, {"generated": len(generated), "real": len(real)}, value)

    def synced_stats(self) -> dict[str, dict[str, FeatureStats]]:
        """The statistics summed over all ranks when torch.distributed is initialised (every rank
        must have updated the same keys), else this process's own (a copy either way)."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return {side: dict(table) for side, table in self.stats.items()}
        if self.bootstrap:
            raise EvaluationError(
                f"{self.NAME}: bootstrap intervals need every item's features in one process, "
                "but a process group is initialised; compute on one rank (as nuwa-eval does) "
                "or use bootstrap=0"
            )
        return {
            side: {key: table[key].all_reduce() for key in sorted(table)}
            for side, table in self.stats.items()
        }

    def save_real_stats(self, path: str | Path) -> None:
        """Store the real side's statistics with this metric id and the real manifest hash."""
        if not self.stats["real"]:
            raise EvaluationError("no real samples have been added; nothing to save")
        save_reference_stats(path, self.stats["real"], self.metric_id, self.manifests()["real"])

    def load_real_stats(self, path: str | Path, manifest_hash: str | None = None) -> None:
        """Use stored real statistics (refused unless their metric id equals this metric's, and
        with bootstrap > 0, which resamples real items that a statistics file does not hold)."""
        if self.bootstrap:
            raise EvaluationError(
                f"{self.NAME}: stored real statistics hold no per-item features to resample; "
                "add the real samples or use bootstrap=0"
            )
        stats, stored_manifest = load_reference_stats(path, self.metric_id, manifest_hash)
        self.stats["real"] = stats
        self._counts["real"] = max(s.n for s in stats.values())
        self._manifest["real"] = _FixedDigest(stored_manifest)


class _FixedDigest:
    """Stands in for a hashlib object when the real manifest comes from a stored file."""

    def __init__(self, digest: str) -> None:
        self.digest = digest

    def hexdigest(self) -> str:
        return self.digest

    def update(self, _: bytes) -> None:
        raise EvaluationError(
            "real statistics were loaded from a file; do not add real samples too"
        )
