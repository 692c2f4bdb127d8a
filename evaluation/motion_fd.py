"""Motion FD: does a generated clip move like the real clips? (offline video coherence)

Each frame goes through an image extractor (the landscape network's layout grid by default). A
clip's motion descriptor is, for each frame lag k in LAGS, log(ε + mean over t of the RMS
feature change between frames t and t + k). A smooth pan changes a little per frame and more
over longer lags; frozen frames do not change at all; a slideshow of unrelated frames changes a
lot at every lag; shuffled frames change as much at lag 1 as at lag 8. The Fréchet distance
between the descriptors of generated and real clips measures how far the generated motion is
from the real motion, in the way FVD compares clip features (Unterthiner et al. 2018), but with
weights this project trains (I3D's are not available offline).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from evaluation.errors import EvaluationError
from evaluation.frechet import fid_from_stats
from evaluation.metric_base import FrechetMetric, MetricResult
from evaluation.preprocess import get_preprocess
from evaluation.samples import ClipSet, as_clip_set

LAGS = (1, 2, 4, 8)
EPSILON = 1e-3
WHOLE = "all"


def motion_descriptors(features: np.ndarray) -> np.ndarray:
    """Per-frame features [N, T, D] -> descriptors [N, len(LAGS)]: log(ε + mean over t of
    ‖f[t + k] − f[t]‖ / √D) for each lag k (T must exceed the largest lag)."""
    n, frames, dim = features.shape
    if frames <= max(LAGS):
        raise EvaluationError(
            f"motion FD needs clips of more than {max(LAGS)} frames; got {frames}"
        )
    columns = []
    for lag in LAGS:
        change = np.linalg.norm(features[:, lag:] - features[:, :-lag], axis=2) / np.sqrt(dim)
        columns.append(np.log(EPSILON + change.mean(axis=1)))
    return np.stack(columns, axis=1)


class MotionFD(FrechetMetric):
    """MotionFD@1: Fréchet distance between the motion descriptors of generated and real clips.
    Takes an *image* extractor and applies it to every frame."""

    NAME = "motion_fd"
    VERSION = 1

    def __init__(self, extractor: str, *, frames: int = 16, **kwargs: Any) -> None:
        self.frames = frames
        super().__init__(extractor, **kwargs)

    def protocol(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "frame_selection": "first consecutive frames of each clip",
            "descriptor": f"log({EPSILON} + mean RMS feature change) at lags {list(LAGS)}",
            "distance": "Fréchet between generated and real descriptors",
        }

    def summary(self) -> list[str]:
        return [f"{self.frames}f", "lags" + "-".join(map(str, LAGS))]

    def views_definition(self) -> dict[str, Any]:
        return {"frames": self.frames, "frame_selection": "first", "per": "frame"}

    def samples(self, data: Any) -> ClipSet:
        """Clips, although the extractor is an image network (it sees one frame at a time)."""
        return as_clip_set(data)

    def views(self, clip: np.ndarray) -> list[torch.Tensor]:
        """One extractor input per frame of the first ``frames`` frames."""
        if clip.shape[0] < self.frames:
            raise EvaluationError(
                f"a clip has {clip.shape[0]} frames; motion FD needs at least {self.frames}"
            )
        preprocess = get_preprocess(self.spec.preprocessing)
        return [preprocess(frame) for frame in clip[: self.frames]]

    def descriptors(self, clips: Any) -> np.ndarray:
        """Motion descriptors [N, len(LAGS)] of ``clips`` (not added to the state)."""
        features = self.extract(clips)
        return motion_descriptors(features.reshape(-1, self.frames, features.shape[1]))

    def update(self, clips: Any, real: bool) -> None:
        """Add clips (folder of videos, paths, uint8 [T, H, W, 3] arrays, or [N, T, H, W, 3])."""
        side = "real" if real else "generated"
        for features in self._features(self.samples(clips), side):
            per_clip = features.reshape(-1, self.frames, features.shape[1])
            self._accumulate(side, WHOLE, motion_descriptors(per_clip))

    def compute(self) -> MetricResult:
        """Motion FD between everything added (with its interval over clips if bootstrap > 0)."""
        stats = self.synced_stats()
        for side in ("generated", "real"):
            if WHOLE not in stats[side]:
                raise EvaluationError(f"motion FD needs {side} clips; none were added")
        value = fid_from_stats(stats["generated"][WHOLE], stats["real"][WHOLE])
        return self._result(value, interval=self._key_interval(WHOLE, value))
