"""Seeded bootstrap intervals over samples (Efron & Tibshirani 1993, *An Introduction to the
Bootstrap*, ch. 6, 10, 13): each side's items (images, canvases, clips) are resampled with
replacement, independently per side and at the side's own size, and the metric is recomputed on
every resample. The interval is the central ``level`` percentile range of those replicates.

It is then shifted by the bootstrap bias estimate (ch. 10: mean of the replicates minus the point
estimate), so that the replicates are centred on the reported value. The plain percentile
interval is not: a resample repeats items, which inflates FID and SWD, and at small sample counts
it can lie entirely above the point estimate (Gaussian features, 32 per side, D=16; see
tests/test_eval_bootstrap.py), so an unchanged rerun would fall outside its own interval. The
shifted interval is one for the metric's expected value at this sample count, which is what two
runs of the same size estimate alike; it is not one for the unbiased (infinite-sample) value.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from evaluation.errors import EvaluationError

MIN_INTERVAL_SAMPLES = 8
MIN_REPLICATES = 10
METHOD = "percentile, bias-shifted"


@dataclass(frozen=True, kw_only=True)
class Interval:
    """A bootstrap interval [low, high] at ``level``, with what is needed to reproduce it:
    ``replicates`` resamples drawn by numpy's default_rng(``seed``); ``bias`` is the mean of the
    replicates minus the point estimate, which was subtracted from their percentiles."""

    low: float
    high: float
    level: float = 0.95
    replicates: int
    seed: int
    method: str = METHOD
    bias: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-able record (results files, value caches)."""
        return asdict(self)

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Interval:
        """Inverse of ``to_json``."""
        return cls(**record)


def check_replicates(replicates: int) -> None:
    """Refuse a replicate count other than 0 (no interval) or at least MIN_REPLICATES."""
    if isinstance(replicates, bool) or not isinstance(replicates, int):
        raise EvaluationError(f"bootstrap must be a whole number of replicates; got {replicates!r}")
    if replicates != 0 and replicates < MIN_REPLICATES:
        raise EvaluationError(
            f"bootstrap={replicates} replicates is too few for an interval; use 0 (none) or at "
            f"least {MIN_REPLICATES}"
        )


def bootstrap_interval(
    statistic: Callable[[dict[str, np.ndarray]], float],
    sizes: Mapping[str, int],
    *,
    replicates: int = 200,
    seed: int = 0,
    level: float = 0.95,
    estimate: float | None = None,
) -> Interval:
    """The bias-shifted percentile bootstrap interval of a metric.

    ``statistic(indices)`` recomputes the metric on resampled items: ``indices[side]`` is an
    int64 array [sizes[side]] of item positions (drawn with replacement) for each side in
    ``sizes`` ({"generated": N1, "real": N2}). ``estimate`` is the metric on all items, on which the
    replicates are centred (None: ``statistic`` of every item in order). Sides are drawn in
    sorted order from one ``np.random.default_rng(seed)``, so the same seed and sizes give the
    same resamples and the identical interval. Warnings raised inside the replicates are
    suppressed: they repeat those of the point estimate (e.g. FewSamplesWarning).
    """
    check_replicates(replicates)
    if replicates == 0:
        raise EvaluationError("bootstrap_interval needs replicates > 0")
    if not 0.0 < level < 1.0:
        raise EvaluationError(f"interval level must lie in (0, 1); got {level}")
    if not sizes:
        raise EvaluationError("bootstrap_interval needs the item count of at least one side")
    small = {side: n for side, n in sizes.items() if n < MIN_INTERVAL_SAMPLES}
    if small:
        listed = ", ".join(f"{side} has {n}" for side, n in sorted(small.items()))
        raise EvaluationError(
            f"too few samples for a bootstrap interval: {listed}; it needs at least "
            f"{MIN_INTERVAL_SAMPLES} per side"
        )
    if estimate is None:
        estimate = statistic({side: np.arange(n) for side, n in sizes.items()})
    if not math.isfinite(estimate):
        raise EvaluationError(f"the point estimate {estimate} is not finite; no interval")
    rng = np.random.default_rng(seed)
    values = np.empty(replicates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index in range(replicates):
            drawn = {side: rng.integers(0, sizes[side], sizes[side]) for side in sorted(sizes)}
            values[index] = statistic(drawn)
            if not math.isfinite(values[index]):
                raise EvaluationError(
                    f"bootstrap replicate {index} (seed {seed}) gave {values[index]}; the metric "
                    "is not finite on a resample of these samples"
                )
    bias = float(values.mean() - estimate)
    low, high = np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0]) - bias
    return Interval(
        low=float(low),
        high=float(high),
        level=level,
        replicates=replicates,
        seed=seed,
        bias=bias,
    )
