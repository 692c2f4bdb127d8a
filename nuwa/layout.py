"""Canvas geometry: pixels <-> token grid <-> patch grid, for images and videos.

A canvas of ``frames x height x width`` pixels is tokenized (factor ``downsample`` per side) into a
token grid of ``F x H x W`` tokens, which is cut into non-overlapping patches of
``patch_size x patch_size`` tokens inside each frame (paper: 16x16 tokens = 256x256 px at f16).
Patches are named by a *patch id*, the row-major index ``f * rows * cols + r * cols + c``; every
other module (orders, plans, the pool, the sampler) speaks in patch ids. Images are videos with
``F == 1``; token tensors always carry the frame axis: ``[B, F, H, W]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

DOWNSAMPLE = 16
"""Pixels per token side: the tokenizer's compression factor (paper Table 1, f16)."""


@dataclass(frozen=True)
class PatchGrid:
    """A grid of ``frames x rows x cols`` patches."""

    rows: int
    cols: int
    frames: int = 1

    def __post_init__(self) -> None:
        if min(self.rows, self.cols, self.frames) < 1:
            raise ValueError(f"a patch grid needs at least one patch per axis, got {self}")

    @property
    def num_patches(self) -> int:
        return self.rows * self.cols * self.frames

    def coords(self, patch: int) -> tuple[int, int, int]:
        """``(frame, row, col)`` of a patch id."""
        frame, rest = divmod(patch, self.rows * self.cols)
        row, col = divmod(rest, self.cols)
        return frame, row, col

    def patch_id(self, frame: int, row: int, col: int) -> int:
        """Patch id of ``(frame, row, col)``."""
        return (frame * self.rows + row) * self.cols + col

    def region(
        self, rows: slice = slice(None), cols: slice = slice(None), frames: slice = slice(None)
    ) -> list[int]:
        """Patch ids of a box; ``grid.region(cols=slice(0, 2))`` = the two left columns."""
        return [
            self.patch_id(f, r, c)
            for f in range(self.frames)[frames]
            for r in range(self.rows)[rows]
            for c in range(self.cols)[cols]
        ]


@dataclass(frozen=True)
class Layout:
    """Pixel and token geometry shared by the tokenizer side and the transformer side.

    Args:
        patch_size: tokens per patch side (paper: 16, i.e. 256 tokens per patch).
        downsample: pixels per token side, the tokenizer's compression factor (paper: 16).
    """

    patch_size: int = 16
    downsample: int = DOWNSAMPLE

    @property
    def tokens_per_patch(self) -> int:
        return self.patch_size * self.patch_size

    @property
    def patch_pixels(self) -> int:
        """Side of one patch in pixels (paper: 256)."""
        return self.patch_size * self.downsample

    def grid_for_pixels(self, height: int, width: int, frames: int = 1) -> PatchGrid:
        """Patch grid of a ``height x width`` (x ``frames``) pixel canvas.

        Raises ``ValueError`` when a side is not a multiple of the patch size in pixels.
        """
        side = self.patch_pixels
        if height <= 0 or width <= 0 or height % side or width % side:
            raise ValueError(
                f"canvas {width}x{height} px is not a positive multiple of the patch size "
                f"{side} px ({self.patch_size} tokens x {self.downsample} px per token); "
                f"try {max(side, round(width / side) * side)}x"
                f"{max(side, round(height / side) * side)}"
            )
        return PatchGrid(height // side, width // side, frames)

    def grid_for_tokens(self, height: int, width: int, frames: int = 1) -> PatchGrid:
        """Patch grid of an ``H x W`` (x ``F``) token grid; raises on a non-multiple size."""
        p = self.patch_size
        if height <= 0 or width <= 0 or height % p or width % p:
            raise ValueError(
                f"token grid {width}x{height} is not a positive multiple of the patch size {p}"
            )
        return PatchGrid(height // p, width // p, frames)

    def token_shape(self, grid: PatchGrid) -> tuple[int, int, int]:
        """``(F, H, W)`` of the token grid of ``grid``."""
        return grid.frames, grid.rows * self.patch_size, grid.cols * self.patch_size

    def pixel_shape(self, grid: PatchGrid) -> tuple[int, int, int]:
        """``(F, height, width)`` in pixels of ``grid``."""
        return grid.frames, grid.rows * self.patch_pixels, grid.cols * self.patch_pixels

    def patchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token grid ``[B, F, H, W]`` -> patches ``[B, N, T]`` indexed by patch id (T raster)."""
        p = self.patch_size
        return rearrange(tokens, "b f (r ph) (c pw) -> b (f r c) (ph pw)", ph=p, pw=p)

    def unpatchify(self, patches: torch.Tensor, grid: PatchGrid) -> torch.Tensor:
        """Patches ``[B, N, T]`` (by patch id) -> token grid ``[B, F, H, W]``."""
        p = self.patch_size
        return rearrange(
            patches,
            "b (f r c) (ph pw) -> b f (r ph) (c pw)",
            f=grid.frames,
            r=grid.rows,
            c=grid.cols,
            ph=p,
            pw=p,
        )

    def patch_tokens(self, tokens: torch.Tensor, grid: PatchGrid, patch: int) -> torch.Tensor:
        """The ``[B, T]`` tokens of one patch of a token grid ``[B, F, H, W]`` (raster inside)."""
        f, r, c = grid.coords(patch)
        p = self.patch_size
        return tokens[:, f, r * p : (r + 1) * p, c * p : (c + 1) * p].reshape(tokens.shape[0], -1)

    def write_patch(
        self, tokens: torch.Tensor, grid: PatchGrid, patch: int, values: torch.Tensor
    ) -> None:
        """Write one patch's ``[B, T]`` tokens into a token grid ``[B, F, H, W]`` in place."""
        f, r, c = grid.coords(patch)
        p = self.patch_size
        tokens[:, f, r * p : (r + 1) * p, c * p : (c + 1) * p] = values.view(-1, p, p)

    def pixel_box(self, grid: PatchGrid, patch: int) -> tuple[int, int, int, int, int]:
        """``(frame, top, left, bottom, right)`` pixel box of a patch (to write decoded pixels)."""
        f, r, c = grid.coords(patch)
        s = self.patch_pixels
        return f, r * s, c * s, (r + 1) * s, (c + 1) * s
