"""Inception Score: exp E_x KL(p(y|x) || p(y)), over 10 seeded splits of the generated set.

Same recipe as torch-fidelity (bias-free logits, float64 softmax, a seeded permutation before
splitting, default seed 2020), which matches the TTUR/TF reference to 1e-3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from evaluation.errors import EvaluationError
from evaluation.metric_base import FeatureMetric, MetricResult


def inception_score(logits: np.ndarray, splits: int = 10, seed: int = 2020) -> tuple[float, float]:
    """IS from class logits [N, C]: (mean, std over ``splits`` splits after a seeded shuffle)."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or len(logits) < splits:
        raise EvaluationError(f"IS needs logits [N >= {splits}, C]; got shape {logits.shape}")
    if not np.all(np.isfinite(logits)):
        raise EvaluationError("IS logits contain NaN/Inf values")
    n = len(logits)
    shuffled = torch.from_numpy(logits[np.random.RandomState(seed).permutation(n)]).double()
    p, log_p = shuffled.softmax(dim=1), shuffled.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        part = slice(i * n // splits, (i + 1) * n // splits)
        p_y = p[part].mean(dim=0, keepdim=True)
        kl = (p[part] * (log_p[part] - p_y.log())).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))


class InceptionScore(FeatureMetric):
    """IS@1 on whole generated images (needs an extractor with a "logits_unbiased" output)."""

    NAME = "is"
    VERSION = 1
    PAPER_PROTOCOL = {"input": "whole image", "splits": 10}

    def __init__(
        self, extractor: str, *, splits: int = 10, seed: int = 2020, **kwargs: Any
    ) -> None:
        self.splits, self.seed = splits, seed
        super().__init__(extractor, output="logits_unbiased", **kwargs)

    def protocol(self) -> dict[str, Any]:
        return {
            "input": "whole image",
            "splits": self.splits,
            "seed": self.seed,
            "logits": "bias-free",
        }

    def summary(self) -> list[str]:
        return [f"{self.splits}splits", f"seed{self.seed}"]

    def reset(self) -> None:
        super().reset()
        self.logits: list[np.ndarray] = []

    def update(self, images: Any) -> None:
        """Add generated images (any form `as_image_set` accepts)."""
        self.logits.extend(self._features(self.samples(images), "generated"))

    def compute(self) -> MetricResult:
        """IS (mean over splits); std in details. Its bootstrap interval (bootstrap > 0)
        resamples images and recomputes the same seeded split IS on their logits."""
        if not self.logits:
            raise EvaluationError("IS needs generated images; none were added")
        logits = np.concatenate(self.logits)
        mean, std = inception_score(logits, self.splits, self.seed)

        def statistic(indices: dict[str, np.ndarray]) -> float:
            return inception_score(logits[indices["generated"]], self.splits, self.seed)[0]

        interval = self._interval(statistic, {"generated": len(logits)}, mean)
        return self._result(mean, {"std": std}, interval=interval)
