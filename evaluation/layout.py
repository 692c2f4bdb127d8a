"""Row-profile L1: does a generated landscape put sky, ridges and ground at the real heights?

Each generated image is compared with its own real scene (the one whose caption or given half it
was made from): the mean absolute difference, on the 0-255 scale, between the mean colour of each
pixel row of the two. Continuing clouds below a horizon, or ground above it, scores high; a
flipped image scores as high as a wrong scene. No learned weights, so it runs anywhere, but it
only means something where the real layout is a fair target (the procedural landscapes, whose
scene is fixed by the caption); it is never a paper metric.

The value is the mean over pairs, with a bootstrap interval over pairs. ``details`` also gives
the **shuffled-scene** level: each generated image against the next pair's real scene, what a
model scores whose layouts ignore their inputs.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from evaluation.bootstrap import check_replicates
from evaluation.errors import EvaluationError
from evaluation.metric_base import MetricResult, item_interval
from evaluation.metric_id import MetricId
from evaluation.samples import as_image_set


def row_profiles(images: np.ndarray) -> np.ndarray:
    """Mean colour of each pixel row: uint8 ``[N, H, W, 3]`` -> float64 ``[N, H, 3]``."""
    return images.astype(np.float64).mean(axis=2)


def profile_l1(generated: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Per-pair L1 between row profiles: float ``[N, H, 3]`` twice -> ``[N]``."""
    return np.abs(generated - real).mean(axis=(1, 2))


class RowProfileL1:
    """Paired row-profile L1 (update/compute/reset); ``bootstrap`` replicates (0: none) and
    ``bootstrap_seed`` set its interval, not its value or metric id."""

    NAME = "row_profile_l1"
    VERSION = 1

    def __init__(self, *, bootstrap: int = 0, bootstrap_seed: int = 0) -> None:
        check_replicates(bootstrap)
        self.bootstrap, self.bootstrap_seed = bootstrap, bootstrap_seed
        self.metric_id = MetricId(
            f"{self.NAME}@{self.VERSION}",
            "none",
            {
                "protocol": {
                    "pairs": "each generated image against its own real scene",
                    "profile": "mean colour per pixel row, 0-255",
                    "distance": "mean absolute difference over rows and channels",
                },
                "summary": ["paired"],
            },
            paper_comparable=False,
        )
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.generated: list[np.ndarray] = []
        self.real: list[np.ndarray] = []
        self.manifest = hashlib.sha256()

    def update(self, generated: Any, real: Any) -> None:
        """Add pairs: ``generated[i]`` was made for ``real[i]`` (any form ``as_image_set``
        accepts, one size)."""
        generated, real = as_image_set(generated), as_image_set(real)
        if len(generated) != len(real):
            raise EvaluationError(
                f"row-profile L1 compares pairs; got {len(generated)} generated and "
                f"{len(real)} real images"
            )
        for i in range(len(generated)):
            fake, scene = generated[i], real[i]
            if fake.shape != scene.shape:
                raise EvaluationError(
                    f"row-profile L1 compares images of one size; got {fake.shape} and "
                    f"{scene.shape}"
                )
            self.generated.append(row_profiles(fake[None])[0])
            self.real.append(row_profiles(scene[None])[0])
            self.manifest.update(f"{generated.item_hash(i)}:{real.item_hash(i)}".encode())

    def compute(self) -> MetricResult:
        """Mean row-profile L1 over pairs; details: per-pair scores' spread and the
        shuffled-scene level (needs 2 pairs or more)."""
        if len(self.generated) < 2:
            raise EvaluationError("row-profile L1 needs at least 2 pairs")
        fake, real = np.stack(self.generated), np.stack(self.real)
        scores = profile_l1(fake, real)
        shuffled = profile_l1(fake, np.roll(real, 1, axis=0))
        value = float(scores.mean())
        interval = item_interval(
            lambda indices: float(scores[indices["pairs"]].mean()),
            {"pairs": len(scores)},
            value,
            self.bootstrap,
            self.bootstrap_seed,
        )
        return MetricResult(
            self.metric_id,
            value,
            {"pairs": len(scores)},
            {"pairs": self.manifest.hexdigest()},
            {"std": float(scores.std(ddof=1)), "shuffled_scene": float(shuffled.mean())},
            interval,
        )
