"""Canvas <-> tiles for the tokenizer: any canvas size, tokens independent of canvas size.

Encoding cuts the canvas into non-overlapping ``tile``-px tiles on a grid anchored at the
top-left corner (edge tiles are smaller when a side is not a multiple of the tile), so a token
depends only on the pixels of its own tile: this matches the transformer's 16x16-token patches,
and the tokens of a patch never change when the canvas grows.

Decoding uses overlapping windows: patch (r, c) is decoded from its own tokens plus ``margin``
tokens of each neighbour, and only the patch's own pixels are kept (the overlap is cropped, not
blended). Each output pixel therefore comes from exactly one window, so ``decode_tiled`` equals
stitching ``decode_one_patch`` bit for bit, a sampler can decode a patch as soon as its
neighbours within the margin exist, and memory is one window of float32 at a time. Blending
overlaps instead would make every patch depend on its neighbours' windows (up to 9 decodes per
streamed patch); the seam error of cropping is measured in
benchmarks/perf/tokenizer_throughput.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from nuwa.layout import DOWNSAMPLE

PX = DOWNSAMPLE  # pixels per token side, short for the index arithmetic below


@dataclass(frozen=True)
class Geometry:
    patch: int  # tokens per patch side (16)
    margin: int  # neighbour tokens decoded around each patch


# ---- pixel conversions ------------------------------------------------------------------------
def to_float(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 [B, H, W, C] -> float [B, C, H, W] in [-1, 1] of ``dtype`` (the weights')."""
    return images.permute(0, 3, 1, 2).to(dtype).div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [B, C, H, W] in [-1, 1] -> uint8 [B, H, W, C] on the CPU."""
    x = x.detach().clamp(-1.0, 1.0).add(1.0).mul(127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).cpu()


def as_uint8_batch(images: np.ndarray | torch.Tensor, *, pad: bool = False) -> torch.Tensor:
    """Validate uint8 [H, W, C] / [B, H, W, C] -> uint8 tensor [B, H, W, C], sides multiple of 16.

    Raises ValueError on a wrong dtype/rank, or on sides not multiple of 16 unless ``pad`` (then
    the right/bottom edge pixels are repeated up to the next multiple of 16).
    """
    images = torch.as_tensor(np.asarray(images)) if isinstance(images, np.ndarray) else images
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 [H, W, C] or [B, H, W, C], got {images.dtype}")
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be [H, W, C] or [B, H, W, C], got {tuple(images.shape)}")
    h, w = images.shape[1:3]
    if h % PX or w % PX:
        if not pad:
            raise ValueError(
                f"image is {h}x{w} px; both sides must be multiples of {PX} "
                f"(crop it, or pass pad=True to edge-pad to {-(-h // PX) * PX}x{-(-w // PX) * PX})"
            )
        x = images.permute(0, 3, 1, 2).float()
        x = F.pad(x, (0, -w % PX, 0, -h % PX), mode="replicate")
        images = x.to(torch.uint8).permute(0, 2, 3, 1)
    return images


def spans(length: int, step: int) -> list[tuple[int, int]]:
    """[0, length) cut into consecutive [start, end) spans of ``step`` (the last may be short)."""
    return [(s, min(s + step, length)) for s in range(0, length, step)]


# ---- encode -----------------------------------------------------------------------------------
def encode_tiled(
    quantize: Callable,
    images: np.ndarray | torch.Tensor,
    tile: int,
    *,
    pad: bool = False,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    max_tiles: int = 16,
) -> torch.Tensor:
    """uint8 [H, W, C] / [B, H, W, C] -> int64 tokens [H/16, W/16] / [B, H/16, W/16].

    ``quantize`` maps float pixels [N, C, th, tw] to an object with ``indices`` [N, th/16, tw/16].
    Tiles of equal shape are batched, at most ``max_tiles`` per call.
    """
    single = np.asarray(images).ndim == 3 if isinstance(images, np.ndarray) else images.ndim == 3
    batch = as_uint8_batch(images, pad=pad)
    b, h, w, _ = batch.shape
    tokens = torch.empty(b, h // PX, w // PX, dtype=torch.long)
    by_shape: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for y0, y1 in spans(h, tile):
        for x0, x1 in spans(w, tile):
            by_shape.setdefault((y1 - y0, x1 - x0), []).append((y0, x0))
    for (th, tw), corners in by_shape.items():
        crops = [(i, y0, x0) for y0, x0 in corners for i in range(b)]
        for start in range(0, len(crops), max_tiles):
            chunk = crops[start : start + max_tiles]
            pixels = torch.stack([batch[i, y0 : y0 + th, x0 : x0 + tw] for i, y0, x0 in chunk])
            ids = quantize(to_float(pixels.to(device), dtype)).indices.cpu()
            for (i, y0, x0), t in zip(chunk, ids, strict=True):
                tokens[i, y0 // PX : (y0 + th) // PX, x0 // PX : (x0 + tw) // PX] = t
    return tokens[0] if single else tokens


# ---- decode -----------------------------------------------------------------------------------
WindowDecoder = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def decode_one_patch(
    decode_window: WindowDecoder,
    tokens: torch.Tensor,
    row: int,
    col: int,
    geom: Geometry,
    guide: torch.Tensor | None = None,
) -> torch.Tensor:
    """Patch (row, col) of tokens [h, w] / [B, h, w] -> uint8 [P*16, P*16, C] / [B, ...].

    ``decode_window(tokens [B, wh, ww], guide uint8 [B, 16wh, 16ww, C] | None)`` returns float
    pixels [B, C, 16wh, 16ww]; ``guide`` (PG-VQGAN) is a uint8 canvas [B, 16h, 16w, C] whose
    window is cut to match the tokens (the decoder converts it to its own device and dtype).
    """
    single = tokens.ndim == 2
    tokens = tokens[None] if single else tokens
    h, w = tokens.shape[-2:]
    y0, y1 = row * geom.patch, min((row + 1) * geom.patch, h)
    x0, x1 = col * geom.patch, min((col + 1) * geom.patch, w)
    if not (0 <= y0 < h and 0 <= x0 < w):
        raise IndexError(f"patch ({row}, {col}) is outside a {h}x{w}-token canvas")
    wy0, wy1 = max(0, y0 - geom.margin), min(h, y1 + geom.margin)
    wx0, wx1 = max(0, x0 - geom.margin), min(w, x1 + geom.margin)
    guide_window = None
    if guide is not None:
        guide = guide[None] if guide.ndim == 3 else guide
        guide_window = guide[:, wy0 * PX : wy1 * PX, wx0 * PX : wx1 * PX]
    pixels = decode_window(tokens[:, wy0:wy1, wx0:wx1], guide_window)
    oy, ox = (y0 - wy0) * PX, (x0 - wx0) * PX
    patch = to_uint8(pixels[:, :, oy : oy + (y1 - y0) * PX, ox : ox + (x1 - x0) * PX])
    return patch[0] if single else patch


def decode_tiled(
    decode_window: WindowDecoder,
    tokens: torch.Tensor,
    geom: Geometry,
    guide: torch.Tensor | None = None,
) -> torch.Tensor:
    """Tokens [h, w] / [B, h, w] -> uint8 [16h, 16w, C] / [B, ...], one patch at a time."""
    single = tokens.ndim == 2
    tokens = tokens[None] if single else tokens
    b, h, w = tokens.shape
    out: torch.Tensor | None = None
    for r, (y0, y1) in enumerate(spans(h, geom.patch)):
        for c, (x0, x1) in enumerate(spans(w, geom.patch)):
            patch = decode_one_patch(decode_window, tokens, r, c, geom, guide)
            if out is None:
                out = torch.empty(b, h * PX, w * PX, patch.shape[-1], dtype=torch.uint8)
            out[:, y0 * PX : y1 * PX, x0 * PX : x1 * PX] = patch
    assert out is not None
    return out[0] if single else out
