"""KID: unbiased MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³ (Bińkowski et al.
2018), averaged over random subsets drawn from an explicit seed.

Written here rather than called from a library: clean-fid draws subsets from the global numpy
RNG (unseeded), torch-fidelity refuses sets smaller than the subset size, torchmetrics draws from
torch's global RNG. With the same seed this draws exactly as torch-fidelity does
(`np.random.RandomState(seed)`, set 1 then set 2), so its subsets match torch-fidelity's.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from evaluation.errors import EvaluationError
from evaluation.metric_base import FeatureMetric, MetricResult


def polynomial_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> float:
    """Unbiased MMD² between x [m, D] and y [m, D] (same m), kernel (xᵀy / D + coef0)^degree."""
    m, dim = x.shape
    k_xx = (x @ x.T / dim + coef0) ** degree
    k_yy = (y @ y.T / dim + coef0) ** degree
    k_xy = (x @ y.T / dim + coef0) ** degree
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
) -> tuple[float, float, int]:
    """KID between features1 [N1, D] and features2 [N2, D]: (mean, std over subsets, subset size
    used). The subset size is capped at min(N1, N2), with a warning."""
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise EvaluationError(f"KID needs features [N1, D] and [N2, D]; got {f1.shape}, {f2.shape}")
    if not (np.all(np.isfinite(f1)) and np.all(np.isfinite(f2))):
        raise EvaluationError("KID features contain NaN/Inf values")
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise EvaluationError(f"KID needs at least 2 samples per set; got {len(f1)} and {len(f2)}")
    if m < subset_size:
        warnings.warn(
            f"KID subset size reduced from {subset_size} to {m} (set sizes {len(f1)}, {len(f2)})",
            stacklevel=2,
        )
    rng = np.random.RandomState(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        values[i] = polynomial_mmd2(x, y)
    return float(values.mean()), float(values.std()), m


class KID(FeatureMetric):
    """KID@1 (not reported by the paper; never paper-comparable). compute() gives the mean, with
    std and the effective subset size in details."""

    NAME = "kid"
    VERSION = 1

    def __init__(
        self,
        extractor: str,
        *,
        num_subsets: int = 100,
        subset_size: int = 1000,
        seed: int = 2020,
        **kwargs: Any,
    ) -> None:
        self.num_subsets, self.subset_size, self.seed = num_subsets, subset_size, seed
        super().__init__(extractor, **kwargs)

    def protocol(self) -> dict[str, Any]:
        return {
            "input": "whole image",
            "kernel": "polynomial degree 3, gamma 1/D, coef0 1",
            "estimator": "unbiased MMD^2",
            "num_subsets": self.num_subsets,
            "subset_size": self.subset_size,
            "seed": self.seed,
            "rng": "numpy RandomState, generated then real per subset",
        }

    def summary(self) -> list[str]:
        return [f"{self.num_subsets}x{self.subset_size}", f"seed{self.seed}"]

    def reset(self) -> None:
        super().reset()
        self.features: dict[str, list[np.ndarray]] = {"generated": [], "real": []}

    def update(self, images: Any, real: bool) -> None:
        """Add images (any form `as_image_set` accepts)."""
        side = "real" if real else "generated"
        self.features[side].extend(self._features(self.samples(images), side))

    def compute(self) -> MetricResult:
        """KID (mean over subsets) of generated vs real. Its bootstrap interval (bootstrap > 0)
        resamples images and recomputes KID with the same subsets protocol and seed."""
        for side, chunks in self.features.items():
            if not chunks:
                raise EvaluationError(f"KID needs {side} images; none were added")
        generated, real = (np.concatenate(self.features[side]) for side in ("generated", "real"))
        mean, std, m = self._kid(generated, real)

        def statistic(indices: dict[str, np.ndarray]) -> float:
            return self._kid(generated[indices["generated"]], real[indices["real"]])[0]

        interval = self._interval(statistic, {"generated": len(generated), "real": len(real)}, mean)
        return self._result(mean, {"std": std, "subset_size_used": m}, interval=interval)

    def _kid(self, generated: np.ndarray, real: np.ndarray) -> tuple[float, float, int]:
        return kernel_inception_distance(
            generated, real, self.num_subsets, self.subset_size, self.seed
        )
