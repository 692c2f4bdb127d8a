"""FVD with StyleGAN-V's `fvd2048_16f` protocol: 16 consecutive frames per clip (the first 16 of
each clip here), the tf.hub I3D called with rescale=True, resize=True (bilinear to 224²), its
400-d pre-softmax logits, and the Fréchet distance of their Gaussians. The protocol asks for 2048
clips per side; the counts actually used are in every result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from evaluation.errors import EvaluationError
from evaluation.frechet import fid_from_stats
from evaluation.metric_base import FrechetMetric, MetricResult

WHOLE = "all"


class FVD(FrechetMetric):
    """FVD@1 (default protocol fvd2048_16f)."""

    NAME = "fvd"
    VERSION = 1
    MODALITY = "video"
    PAPER_PROTOCOL = {"frames": 16, "clips": 2048}

    def __init__(
        self, extractor: str, *, frames: int = 16, clips: int = 2048, **kwargs: Any
    ) -> None:
        self.frames, self.clips = frames, clips
        kwargs.setdefault("batch_size", 4)
        super().__init__(extractor, **kwargs)

    def protocol(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "frame_selection": "first consecutive frames of each clip",
            "clips": self.clips,
            "name": f"fvd{self.clips}_{self.frames}f",
        }

    def summary(self) -> list[str]:
        return [f"fvd{self.clips}_{self.frames}f"]

    def views_definition(self) -> dict[str, Any]:
        return {"frames": self.frames, "frame_selection": "first"}

    def views(self, clip: np.ndarray) -> list[torch.Tensor]:
        """The first ``frames`` frames as one extractor input [3, frames, H, W]."""
        if clip.shape[0] < self.frames:
            raise EvaluationError(
                f"a clip has {clip.shape[0]} frames; {self.protocol()['name']} needs at least "
                f"{self.frames}"
            )
        return super().views(clip[: self.frames])

    def update(self, clips: Any, real: bool) -> None:
        """Add clips (folder of videos, paths, uint8 [T, H, W, 3] arrays, or [N, T, H, W, 3])."""
        side = "real" if real else "generated"
        clip_set = self.samples(clips)
        for index, item in enumerate(clip_set.items):
            if isinstance(item, np.ndarray) and item.shape[0] < self.frames:
                raise EvaluationError(
                    f"clip #{index} has {item.shape[0]} frames; {self.protocol()['name']} needs "
                    f"at least {self.frames}"
                )
        for features in self._features(clip_set, side):
            self._accumulate(side, WHOLE, features)

    def compute(self) -> MetricResult:
        """FVD between everything added (counts used are in the result's n), with a bootstrap
        interval over clips when bootstrap > 0."""
        stats = self.synced_stats()
        for side in ("generated", "real"):
            if WHOLE not in stats[side]:
                raise EvaluationError(f"FVD needs {side} clips; none were added")
        value = fid_from_stats(stats["generated"][WHOLE], stats["real"][WHOLE])
        return self._result(value, interval=self._key_interval(WHOLE, value))
