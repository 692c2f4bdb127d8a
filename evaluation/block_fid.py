"""Block-FID@1: FID over 256x256 blocks of large canvases, our versioned definition (the paper
leaves block size, placement and reduction open, paper §4.3).

- Blocks lie on the canvas's 256-px grid (top-left at multiples of 256); an optional second pass
  adds the grid shifted by half a block in both axes, which puts blocks across the seams.
- Only blocks lying entirely inside ``region`` count (outpainting: the generated area; the real
  canvases are cut in the same place).
- Per block position, FID between the generated and real blocks at that position; the headline
  value is the mean over positions. The pooled variant (one FID over all blocks; exact, since
  the statistics add) is reported beside it under its own metric id.
- With bootstrap > 0 both numbers get a bootstrap interval over canvases: a resample draws whole
  canvases, and all blocks of a drawn canvas go into it together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from evaluation.bootstrap import Interval
from evaluation.errors import EvaluationError
from evaluation.frechet import FeatureStats, fid_from_features, fid_from_stats
from evaluation.metric_base import SIDES, FrechetMetric, MetricResult
from evaluation.metric_id import MetricId

BLOCK = 256
Blocks = dict[str, dict[str, np.ndarray]]  # side -> block position -> features [canvases, D]


@dataclass(frozen=True)
class Region:
    """A pixel rectangle of the canvas: rows top..top+height, columns left..left+width."""

    top: int
    left: int
    height: int
    width: int

    def contains(self, top: int, left: int, size: int) -> bool:
        return (
            self.top <= top
            and self.left <= left
            and top + size <= self.top + self.height
            and left + size <= self.left + self.width
        )

    def as_list(self) -> list[int]:
        return [self.top, self.left, self.height, self.width]

    def crop(self, image: np.ndarray) -> np.ndarray:
        """``image[..., H, W, C]`` cut to this rectangle (leading axes, e.g. frames, kept)."""
        return image[..., self.top : self.top + self.height, self.left : self.left + self.width, :]

    def mask(self, height: int, width: int) -> np.ndarray:
        """bool ``[height, width]``, True inside this rectangle."""
        inside = np.zeros((height, width), dtype=bool)
        inside[self.top : self.top + self.height, self.left : self.left + self.width] = True
        return inside


def block_positions(
    height: int,
    width: int,
    block: int = BLOCK,
    shifted_pass: bool = False,
    region: Region | None = None,
) -> list[tuple[str, int, int]]:
    """(key, top, left) of every block of a height x width canvas inside ``region``.

    Keys: "r{i}c{j}" on the aligned grid, "s{i}c{j}" on the half-block-shifted grid.
    """
    region = region or Region(0, 0, height, width)
    grids = [("r", 0)] + ([("s", block // 2)] if shifted_pass else [])
    positions = []
    for prefix, offset in grids:
        for i in range((height - offset) // block):
            for j in range((width - offset) // block):
                top, left = offset + i * block, offset + j * block
                if region.contains(top, left, block):
                    positions.append((f"{prefix}{i}c{j}", top, left))
    return positions


@dataclass(frozen=True)
class BlockFIDResult:
    """The headline (mean over positions), the pooled variant and the per-position values.
    ``position_mean`` is None when generated and real canvases differ in size (then only pooled
    FID is defined; e.g. Block-FID(x4) of 4096-wide canvases against 1024² real images)."""

    position_mean: MetricResult | None
    pooled: MetricResult
    per_position: dict[str, float]

    def results(self) -> list[MetricResult]:
        """Every number with its own metric id, for the leaderboard."""
        return [r for r in (self.position_mean, self.pooled) if r is not None]


class BlockFID(FrechetMetric):
    """Block-FID@1. ``region``: the generated pixel rectangle (None: the whole canvas)."""

    NAME = "block_fid"
    VERSION = 1
    PAPER_PROTOCOL = {"block": BLOCK, "stride": BLOCK, "shifted_pass": False}

    def __init__(
        self,
        extractor: str,
        *,
        block: int = BLOCK,
        shifted_pass: bool = False,
        region: Region | tuple[int, int, int, int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.block = block
        self.shifted_pass = shifted_pass
        self.region = Region(*region) if isinstance(region, tuple) else region
        super().__init__(extractor, **kwargs)

    def protocol(self) -> dict[str, Any]:
        return {
            "block": self.block,
            "stride": self.block,
            "grid_origin": "canvas top-left",
            "shifted_pass": self.shifted_pass,
            "shift": self.block // 2 if self.shifted_pass else 0,
            "region": self.region.as_list() if self.region else "full canvas",
            "block_selection": "entirely inside the region",
            "reduction": "mean over positions of per-position FID",
        }

    def summary(self) -> list[str]:
        region = "full" if self.region is None else "r" + "-".join(map(str, self.region.as_list()))
        return [f"b{self.block}" + ("+shift" if self.shifted_pass else ""), region]

    def views_definition(self) -> dict[str, Any]:
        protocol = self.protocol()
        return {k: protocol[k] for k in ("block", "stride", "shifted_pass", "shift", "region")}

    def reset(self) -> None:
        super().reset()
        self.canvas_size: dict[str, tuple[int, int]] = {}

    @property
    def pooled_id(self) -> MetricId:
        return self.metric_id.variant("pooled")

    def positions(self, height: int, width: int) -> list[tuple[str, int, int]]:
        """(key, top, left) of the measured blocks of a height x width canvas (at least one)."""
        positions = block_positions(height, width, self.block, self.shifted_pass, self.region)
        if not positions:
            raise EvaluationError(
                f"a {height}x{width} canvas has no {self.block}x{self.block} block inside "
                f"region {self.region.as_list() if self.region else 'full canvas'}"
            )
        return positions

    def views(self, canvas: np.ndarray) -> list[torch.Tensor]:
        """One preprocessed input per measured block of ``canvas`` [H, W, 3]."""
        b, preprocess = self.block, super().views
        return [
            preprocess(canvas[t : t + b, l : l + b])[0]
            for _, t, l in self.positions(*canvas.shape[:2])
        ]

    def update(self, canvases: Any, real: bool) -> None:
        """Add canvases (folder, paths, uint8 [H, W, 3] arrays or uint8 [N, 3, H, W] tensor)."""
        side = "real" if real else "generated"
        images = self.samples(canvases)
        size = (images.height, images.width)
        if self.canvas_size.setdefault(side, size) != size:
            raise EvaluationError(
                f"{side} canvases are {size[0]}x{size[1]} but earlier ones were "
                f"{self.canvas_size[side][0]}x{self.canvas_size[side][1]}"
            )
        positions = self.positions(*size)
        for features in self._features(images, side):
            per_item = features.reshape(-1, len(positions), features.shape[1])
            for index, (key, _, _) in enumerate(positions):
                self._accumulate(side, key, per_item[:, index])

    def compute(self) -> BlockFIDResult:
        """Per-position FIDs, their mean, and the pooled FID."""
        stats = self.synced_stats()
        for side in ("generated", "real"):
            if not stats[side]:
                raise EvaluationError(f"Block-FID needs {side} canvases; none were added")
            for key, value in stats[side].items():
                if value.n < 2:
                    raise EvaluationError(
                        f"block position {key} has {value.n} {side} block(s); Block-FID needs "
                        "at least 2 canvases per side"
                    )
        pooled = {
            side: sum(stats[side].values(), FeatureStats.empty(self._dim(stats))) for side in stats
        }
        pooled_value = fid_from_stats(pooled["generated"], pooled["real"])
        pooled_result = self._result(
            pooled_value,
            {"blocks": {side: pooled[side].n for side in pooled}},
            metric_id=self.pooled_id,
            interval=self._canvas_interval(_pooled_fid, pooled_value),
        )
        if set(stats["generated"]) != set(stats["real"]):
            return BlockFIDResult(None, pooled_result, {})
        per_position = {
            key: fid_from_stats(stats["generated"][key], stats["real"][key])
            for key in sorted(stats["generated"])
        }
        value = float(np.mean(list(per_position.values())))
        mean = self._result(
            value,
            {"per_position": per_position, "positions": len(per_position)},
            interval=self._canvas_interval(_position_mean_fid, value),
        )
        return BlockFIDResult(mean, pooled_result, per_position)

    def _canvas_interval(self, reduce: Callable[[Blocks], float], value: float) -> Interval | None:
        """Bootstrap interval over whole canvases of ``reduce`` (blocks -> number) around its
        point estimate ``value``; None when bootstrap is 0. A resample picks canvases per side and
        every block position takes the blocks of those same canvases: the blocks of one canvas
        are not independent samples."""
        if not self.bootstrap:
            return None
        blocks = self.item_features()
        sizes = {side: len(next(iter(keys.values()))) for side, keys in blocks.items()}

        def statistic(indices: dict[str, np.ndarray]) -> float:
            return reduce(
                {
                    side: {key: rows[indices[side]] for key, rows in keys.items()}
                    for side, keys in blocks.items()
                }
            )

        return self._interval(statistic, sizes, value)

    @staticmethod
    def _dim(stats: dict[str, dict[str, FeatureStats]]) -> int:
        return next(iter(stats["generated"].values())).dim


def _position_mean_fid(blocks: Blocks) -> float:
    """Mean over block positions of the per-position FID."""
    generated, real = blocks["generated"], blocks["real"]
    return float(np.mean([fid_from_features(generated[k], real[k]) for k in sorted(generated)]))


def _pooled_fid(blocks: Blocks) -> float:
    """FID between all blocks of each side."""
    generated, real = (np.concatenate(list(blocks[side].values())) for side in SIDES)
    return fid_from_features(generated, real)
