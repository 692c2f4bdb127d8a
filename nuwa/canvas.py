"""Streaming decode: token patches in, a uint8 pixel canvas out, one tokenizer tile at a time.

The sampler hands over each patch as it finishes (``sample(..., on_patch=...)``). A tokenizer tile
(``tokenizer.geometry``: 16 tokens a side plus a ``margin`` of neighbour tokens, see
``nuwa.tokenizer.tiling``) is decoded the moment every token its window reads exists, and its
pixels go straight into a uint8 canvas, so no float32 image of the canvas is ever held. Because
each tile is decoded exactly as ``tokenizer.decode`` would decode it, the streamed canvas equals
decoding the final token grid, bit for bit.

Videos: frame 0 decodes with the plain VQGAN, or with the PG-VQGAN guided by ``first_guide``
(animation: the given image); frame ``f > 0`` decodes with the PG-VQGAN guided by the decoded
frame ``f - 1``, so a tile of frame ``f`` also waits for all of frame ``f - 1``. Without a
PG-VQGAN every frame decodes plainly. This is ``PGVQGAN.decode_video``, streamed.

Canvases over ``memmap_over_bytes`` live in an unlinked ``np.memmap`` file on disk (a 38912x2048
canvas is 239 MB of uint8 per sample), so RAM holds only the tiles being decoded.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable

import numpy as np
import torch

from nuwa.layout import Layout, PatchGrid
from nuwa.tokenizer import PGVQGAN, VQGAN
from nuwa.tokenizer.tiling import spans

PX = 16  # pixels per token side (the tokenizer's factor)


def allocate_pixels(
    shape: tuple[int, ...], memmap_over_bytes: int = 1 << 30, directory: str | None = None
) -> np.ndarray:
    """A zeroed uint8 array of ``shape``: in RAM, or memory-mapped on disk above the threshold.

    The memmap file is unlinked right away: the mapping keeps the data alive and the disk space
    is returned when the array is garbage-collected, so nothing is left behind.
    """
    if int(np.prod(shape)) <= memmap_over_bytes:
        return np.zeros(shape, dtype=np.uint8)
    fd, path = tempfile.mkstemp(prefix="nuwa-canvas-", suffix=".u8", dir=directory)
    os.close(fd)
    try:
        return np.memmap(path, dtype=np.uint8, mode="w+", shape=shape)
    finally:
        os.unlink(path)


class StreamingCanvas:
    """Decodes tokenizer tiles into a uint8 canvas ``[B, F, 16H, 16W, 3]`` as tokens arrive.

    Args:
        tokenizer: the image VQGAN (tile geometry, plain decoding).
        tokens: ``[B, F, H, W]`` token grid; entries of ``known`` patches must be final.
        layout, grid: the model's patch geometry (which tokens a model patch covers).
        known: model patch ids whose tokens are already final (given patches).
        pg: a PG-VQGAN over the same VQGAN, to decode video frames guided (None: plain).
        first_guide: uint8 ``[B, 16H, 16W, 3]``, the pixels guiding frame 0 (needs ``pg``).
        memmap_over_bytes, memmap_dir: see :func:`allocate_pixels`.
    """

    def __init__(
        self,
        tokenizer: VQGAN,
        tokens: torch.Tensor,
        layout: Layout,
        grid: PatchGrid,
        known: Iterable[int] = (),
        *,
        pg: PGVQGAN | None = None,
        first_guide: torch.Tensor | None = None,
        memmap_over_bytes: int = 1 << 30,
        memmap_dir: str | None = None,
    ) -> None:
        if first_guide is not None and pg is None:
            raise ValueError("a first-frame guide needs a PG-VQGAN")
        self.tokenizer, self.pg, self.first_guide = tokenizer, pg, first_guide
        self.layout, self.grid = layout, grid
        self.tokens = tokens.detach().to("cpu", copy=True)
        b, f, h, w = self.tokens.shape
        self.pixels = allocate_pixels((b, f, h * PX, w * PX, 3), memmap_over_bytes, memmap_dir)
        geom = tokenizer.geometry
        self.tile, self.rows, self.cols = geom.patch, spans(h, geom.patch), spans(w, geom.patch)
        known = set(known)
        self.pending: dict[tuple[int, int, int], int] = {}  # tile -> what it still waits for
        self.waiting_on: dict[int, list[tuple[int, int, int]]] = {}  # patch id -> its tiles
        self.left_in_frame = [len(self.rows) * len(self.cols)] * f
        for frame in range(f):
            for r, (y0, y1) in enumerate(self.rows):
                for c, (x0, x1) in enumerate(self.cols):
                    needs = self._patches_read(frame, y0, y1, x0, x1) - known
                    for patch in needs:
                        self.waiting_on.setdefault(patch, []).append((frame, r, c))
                    self.pending[frame, r, c] = len(needs) + int(self._guided_by_previous(frame))
        self.patches_streamed = 0
        for tile in [t for t, n in self.pending.items() if n == 0]:
            self._decode(tile)

    def _patches_read(self, frame: int, y0: int, y1: int, x0: int, x1: int) -> set[int]:
        """Model patch ids whose tokens the decode window of token box [y0:y1, x0:x1] reads."""
        m, p = self.tokenizer.geometry.margin, self.layout.patch_size
        _, h, w = self.tokens.shape[1:]
        wy0, wy1 = max(0, y0 - m), min(h, y1 + m)
        wx0, wx1 = max(0, x0 - m), min(w, x1 + m)
        return {
            self.grid.patch_id(frame, r, c)
            for r in range(wy0 // p, (wy1 - 1) // p + 1)
            for c in range(wx0 // p, (wx1 - 1) // p + 1)
        }

    def _guided_by_previous(self, frame: int) -> bool:
        return self.pg is not None and frame > 0

    def add(self, patch: int, tokens: torch.Tensor) -> None:
        """Take a finished patch's ``[B, T]`` tokens; decode every tile that is now complete."""
        self.layout.write_patch(self.tokens, self.grid, patch, tokens.cpu())
        self.patches_streamed += 1
        for tile in self.waiting_on.pop(patch, ()):
            self._release(tile)

    def _release(self, tile: tuple[int, int, int]) -> None:
        self.pending[tile] -= 1
        if self.pending[tile] == 0:
            self._decode(tile)

    def _decode(self, tile: tuple[int, int, int]) -> None:
        frame, r, c = tile
        del self.pending[tile]
        frame_tokens = self.tokens[:, frame]
        guide = self._guide(frame)
        if guide is None:
            pixels = self.tokenizer.decode_patch(frame_tokens, r, c)
        else:
            pixels = self.pg.decode_patch(frame_tokens, r, c, guide)
        y0, x0 = self.rows[r][0] * PX, self.cols[c][0] * PX
        self.pixels[:, frame, y0 : y0 + pixels.shape[1], x0 : x0 + pixels.shape[2]] = pixels
        self.left_in_frame[frame] -= 1
        if self.left_in_frame[frame] == 0 and self._guided_by_previous(frame + 1):
            for next_tile in [t for t in self.pending if t[0] == frame + 1]:
                self._release(next_tile)  # frame + 1's guide is complete

    def _guide(self, frame: int) -> torch.Tensor | None:
        """uint8 ``[B, 16H, 16W, 3]`` pixels guiding ``frame``, or None to decode it plainly."""
        if self.pg is None:
            return None
        if frame == 0:
            return self.first_guide
        return torch.from_numpy(self.pixels[:, frame - 1])

    def result(self) -> np.ndarray:
        """The finished canvas ``[B, F, 16H, 16W, 3]`` uint8 (raises if a tile is still open)."""
        if self.pending:
            raise RuntimeError(f"{len(self.pending)} tiles still wait for tokens")
        return self.pixels
