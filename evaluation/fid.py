"""FID: Fréchet distance between Gaussians fitted to extractor features of two image sets.

With a CLIP extractor the same class computes CLIP-FID (the extractor is in the metric id).
"""

from __future__ import annotations

from typing import Any

from evaluation.errors import EvaluationError
from evaluation.frechet import fid_from_stats
from evaluation.metric_base import FrechetMetric, MetricResult

WHOLE = "all"


class FID(FrechetMetric):
    """FID@1 on whole images: each image is resized by the extractor's preprocessing.

    >>> fid = FID("inception_v3.surrogate_seed0@1")
    >>> fid.update(generated_folder, real=False); fid.update(real_folder, real=True)
    >>> fid.compute().value
    """

    NAME = "fid"
    VERSION = 1
    PAPER_PROTOCOL = {"input": "whole image"}

    def protocol(self) -> dict[str, Any]:
        return {"input": "whole image"}

    def update(self, images: Any, real: bool) -> None:
        """Add images (folder, paths, uint8 [H, W, 3] arrays, or uint8 [N, 3, H, W] tensor)."""
        side = "real" if real else "generated"
        for features in self._features(self.samples(images), side):
            self._accumulate(side, WHOLE, features)

    def compute(self) -> MetricResult:
        """FID between everything added so far (generated vs real), with a bootstrap interval
        over images when bootstrap > 0."""
        stats = self.synced_stats()
        for side in ("generated", "real"):
            if WHOLE not in stats[side]:
                raise EvaluationError(f"FID needs {side} images; none were added")
        value = fid_from_stats(stats["generated"][WHOLE], stats["real"][WHOLE])
        return self._result(value, interval=self._key_interval(WHOLE, value))
