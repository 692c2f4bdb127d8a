"""Trivial baseline tokenizer with the VQGAN's bit budget: down-sample, palette, up-sample.

Each 16x16-pixel block becomes its mean colour snapped to the nearest of K palette colours, so a
block costs log2(K) bits, exactly one VQGAN token of a K-code codebook. The palette is k-means
on block colours of training images (scipy's kmeans2); decoding up-samples the palette colours
bicubically. A learned tokenizer must beat this at equal bits to be worth its compute.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.cluster.vq import kmeans2

PX = 16


def block_colours(images: np.ndarray) -> np.ndarray:
    """uint8 [B, H, W, 3] (sides multiple of 16) -> float32 block means [B, H/16, W/16, 3]."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return F.avg_pool2d(x, PX).permute(0, 2, 3, 1).numpy()


class PaletteBaseline:
    def __init__(self, palette: np.ndarray):
        self.palette = palette.astype(np.float32)  # [K, 3] colours in 0..255

    @classmethod
    def fit(cls, images: np.ndarray, codebook_size: int, seed: int = 0) -> PaletteBaseline:
        """k-means palette of ``codebook_size`` colours on the block means of ``images``."""
        colours = block_colours(images).reshape(-1, 3).astype(np.float64)
        k = min(codebook_size, len(colours))
        # random-point init: scipy's k-means++ init is O(k^2 n) and took minutes at k=1024
        palette, _ = kmeans2(colours, k, iter=20, minit="points", seed=seed)
        return cls(palette)

    def encode(self, images: np.ndarray) -> np.ndarray:
        """uint8 [B, H, W, 3] -> int64 palette ids [B, H/16, W/16]."""
        colours = torch.from_numpy(block_colours(images))
        return (
            torch.cdist(colours.flatten(0, 2), torch.from_numpy(self.palette))
            .argmin(-1)
            .view(colours.shape[:3])
            .numpy()
        )

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """int64 ids [B, h, w] -> uint8 [B, 16h, 16w, 3] (bicubic up-sampling)."""
        small = torch.from_numpy(self.palette[ids]).permute(0, 3, 1, 2)
        big = F.interpolate(small, scale_factor=PX, mode="bicubic", align_corners=False)
        return big.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
