"""SWD: sliced Wasserstein distance between 7x7 patch descriptors of Laplacian pyramid levels
(Karras et al. 2018, ProGAN). Needs no learned weights, so it runs anywhere.

Hand-written because no installed library implements it (torchmetrics, clean-fid and
torch-fidelity do not); it follows ProGAN's metric: 5-tap binomial filter with mirror padding,
levels from full size down to 16 px, 128 random 7x7 neighbourhoods per image per level, each
descriptor set normalised per channel, 4 x 128 random unit directions, and distances reported
×1e3 (the scale ProGAN prints).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from evaluation.bootstrap import check_replicates
from evaluation.errors import EvaluationError
from evaluation.metric_base import SIDES, MetricResult, item_interval
from evaluation.metric_id import MetricId
from evaluation.samples import as_image_set

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5x5 binomial filter with mirror padding; x: [N, C, H, W] float64."""
    channels = x.shape[1]
    kernel = (_BINOMIAL[:, None] * _BINOMIAL[None, :]).expand(channels, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=channels)


def laplacian_pyramid(images: torch.Tensor, min_size: int = 16) -> list[torch.Tensor]:
    """Band-pass levels of images [N, C, H, W] (float64), finest first; the last level is the
    low-pass residual at >= min_size px."""
    levels, current = [], images
    while min(current.shape[-2:]) // 2 >= min_size:
        down = _blur(current)[:, :, ::2, ::2]
        up = torch.zeros_like(current)
        up[:, :, ::2, ::2] = down
        levels.append(current - 4.0 * _blur(up))
        current = down
    levels.append(current)
    return levels


def _descriptors(
    level: torch.Tensor, rng: np.random.RandomState, per_image: int, size: int
) -> np.ndarray:
    """``per_image`` random size x size patches per image: [N * per_image, C * size * size]."""
    n, c, h, w = level.shape
    ys = rng.randint(0, h - size + 1, size=(n, per_image))
    xs = rng.randint(0, w - size + 1, size=(n, per_image))
    offsets = torch.arange(size)
    rows = torch.from_numpy(ys)[:, :, None] + offsets  # [n, p, size]
    cols = torch.from_numpy(xs)[:, :, None] + offsets
    index = torch.arange(n)[:, None, None, None, None]
    patches = level.permute(0, 2, 3, 1)[
        index, rows[:, :, :, None, None], cols[:, :, None, :, None], torch.arange(c)
    ]
    return patches.reshape(n * per_image, -1).numpy()


def _normalise(descriptors: np.ndarray, channels: int) -> np.ndarray:
    d = descriptors.reshape(len(descriptors), -1, channels)
    d = (d - d.mean(axis=(0, 1))) / d.std(axis=(0, 1))
    return d.reshape(len(descriptors), -1)


def sliced_wasserstein(
    a: np.ndarray,
    b: np.ndarray,
    rng: np.random.RandomState,
    repeats: int = 4,
    directions: int = 128,
) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance; a, b: [M, D], same M."""
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((a.shape[1], directions))
        dirs /= np.sqrt((dirs**2).sum(axis=0, keepdims=True))
        proj_a, proj_b = np.sort(a @ dirs, axis=0), np.sort(b @ dirs, axis=0)
        results.append(np.abs(proj_a - proj_b).mean())
    return float(np.mean(results))


class SWD:
    """SWD@1 between generated and real images of one size (update/compute/reset). ``bootstrap``
    replicates (0: none) and ``bootstrap_seed`` set its interval, not its value or metric id."""

    NAME = "swd"
    VERSION = 1

    def __init__(
        self,
        *,
        patches_per_image: int = 128,
        patch_size: int = 7,
        repeats: int = 4,
        directions: int = 128,
        min_size: int = 16,
        seed: int = 0,
        bootstrap: int = 0,
        bootstrap_seed: int = 0,
    ) -> None:
        check_replicates(bootstrap)
        self.bootstrap, self.bootstrap_seed = bootstrap, bootstrap_seed
        self.patches_per_image, self.patch_size = patches_per_image, patch_size
        self.repeats, self.directions, self.min_size, self.seed = (
            repeats,
            directions,
            min_size,
            seed,
        )
        self.metric_id = MetricId(
            f"{self.NAME}@{self.VERSION}",
            "none",
            {
                "protocol": {
                    "pyramid": "Laplacian, 5-tap binomial, mirror padding",
                    "min_size": min_size,
                    "patches_per_image": patches_per_image,
                    "patch_size": patch_size,
                    "normalisation": "per descriptor set, per channel",
                    "directions": f"{repeats} x {directions} unit Gaussian",
                    "scale": "x1e3, mean over levels",
                    "seed": seed,
                },
                "summary": [f"{patches_per_image}p{patch_size}", f"seed{seed}"],
            },
            paper_comparable=False,
        )
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.descriptors: dict[str, list[list[np.ndarray]]] = {s: [] for s in SIDES}
        self.rngs = {s: np.random.RandomState([self.seed, i]) for i, s in enumerate(SIDES)}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.manifest = {s: hashlib.sha256() for s in SIDES}
        self.counts = dict.fromkeys(SIDES, 0)

    def update(self, images: Any, real: bool, batch_size: int = 16) -> None:
        """Add images (any form `as_image_set` accepts)."""
        side = "real" if real else "generated"
        images = as_image_set(images)
        size = (images.height, images.width)
        if min(size) < 2 * self.min_size:
            raise EvaluationError(
                f"SWD needs images of at least {2 * self.min_size} px; got {size}"
            )
        if self.sizes.setdefault(side, size) != size or len(set(self.sizes.values())) > 1:
            raise EvaluationError(
                f"SWD compares images of one size; got {sorted(set(self.sizes.values()) | {size})}"
            )
        for start in range(0, len(images), batch_size):
            indices = range(start, min(start + batch_size, len(images)))
            batch = np.stack([images[i] for i in indices]).transpose(0, 3, 1, 2)
            for i in indices:
                self.manifest[side].update(images.item_hash(i).encode())
            levels = laplacian_pyramid(torch.from_numpy(batch).double(), self.min_size)
            per_level = [
                _descriptors(lv, self.rngs[side], self.patches_per_image, self.patch_size)
                for lv in levels
            ]
            self.descriptors[side].append(per_level)
        self.counts[side] += len(images)

    def compute(self) -> MetricResult:
        """SWD ×1e3 averaged over pyramid levels (per-level values in details). Its bootstrap
        interval (bootstrap > 0) resamples images, each with the patches drawn from it, and
        recomputes SWD with the same seed."""
        if not all(self.descriptors[s] for s in SIDES):
            raise EvaluationError("SWD needs generated and real images")
        levels = {side: self._levels(side) for side in SIDES}
        per_level = self._per_level(levels)
        value = float(np.mean(per_level))

        def statistic(indices: dict[str, np.ndarray]) -> float:
            drawn = {side: [lv[indices[side]] for lv in levels[side]] for side in SIDES}
            return float(np.mean(self._per_level(drawn)))

        interval = item_interval(
            statistic, dict(self.counts), value, self.bootstrap, self.bootstrap_seed
        )
        return MetricResult(
            self.metric_id,
            value,
            dict(self.counts),
            {s: self.manifest[s].hexdigest() for s in SIDES},
            {"per_level_x1e3": per_level, "levels": len(per_level)},
            interval,
        )

    def _levels(self, side: str) -> list[np.ndarray]:
        """Per pyramid level, ``side``'s descriptors [N images, patches_per_image, D] in update
        order."""
        batches = self.descriptors[side]
        return [
            np.concatenate([batch[level] for batch in batches]).reshape(
                self.counts[side], self.patches_per_image, -1
            )
            for level in range(len(batches[0]))
        ]

    def _per_level(self, levels: dict[str, list[np.ndarray]]) -> list[float]:
        """SWD ×1e3 per level between the sides' descriptors {side: [[N, P, D] per level]}."""
        rng = np.random.RandomState(self.seed)
        per_level = []
        for level in range(len(levels["generated"])):
            sets = [levels[s][level].reshape(-1, levels[s][level].shape[-1]) for s in SIDES]
            m = min(len(s) for s in sets)
            sets = [
                s[np.sort(rng.choice(len(s), m, replace=False))] if len(s) > m else s for s in sets
            ]
            a, b = (_normalise(s, 3) for s in sets)
            per_level.append(1e3 * sliced_wasserstein(a, b, rng, self.repeats, self.directions))
        return per_level
