"""PG-VQGAN (paper §2.1): decode video frame n guided by the pixels of frame n-1.

A guide encoder, with one stage per VQGAN decoder stage, encodes the previous frame; the output
of each stage is added element-wise to the output of the matching decoder stage. The paper
leaves open which VQGAN parts train; we freeze the whole image VQGAN (so video tokens are the
image tokens, and an unguided decode is exactly the VQGAN's) and train only the guide encoder,
whose 1x1 output convolutions start at zero, so training starts from plain VQGAN decoding.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nuwa.tokenizer import tiling
from nuwa.tokenizer.modules import Downsample, ResnetBlock, level_blocks, norm
from nuwa.tokenizer.vqgan import VQGAN, eval_mode


def zero_conv(ch: int) -> nn.Conv2d:
    conv = nn.Conv2d(ch, ch, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class GuideEncoder(nn.Module):
    """Previous frame [B, C, H, W] in [-1, 1] -> guides for ``Decoder.forward``.

    Returns [mid (H/16), level n-1 (H/16), ..., level 0 (H)], the decoder's stage order.
    """

    def __init__(self, vqgan: VQGAN):
        super().__init__()
        cfg = vqgan.config
        widths = [cfg.ch * m for m in cfg.ch_mult]
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1)
        self.levels = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        prev = cfg.ch
        for i, width in enumerate(widths):
            self.levels.append(level_blocks(prev, width, cfg.num_res_blocks, attn=False))
            self.downsamples.append(Downsample(width) if i < len(widths) - 1 else nn.Identity())
            prev = width
        self.mid = nn.Sequential(ResnetBlock(prev, prev), norm(prev), nn.SiLU())
        self.outs = nn.ModuleList(zero_conv(w) for w in widths)
        self.mid_out = zero_conv(prev)

    def forward(self, prev_frame: torch.Tensor) -> list[torch.Tensor]:
        h = self.conv_in(prev_frame)
        per_level = []
        for level, down, out in zip(self.levels, self.downsamples, self.outs, strict=True):
            h = level(h)
            per_level.append(out(h))
            h = down(h)
        return [self.mid_out(self.mid(h)), *reversed(per_level)]


class PGVQGAN(nn.Module):
    """A frozen VQGAN plus a guide encoder; encodes like the VQGAN, decodes frames guided."""

    def __init__(self, vqgan: VQGAN):
        super().__init__()
        self.vqgan = vqgan.requires_grad_(False)
        self.guide = GuideEncoder(vqgan)

    def train(self, mode: bool = True) -> PGVQGAN:
        super().train(mode)
        self.vqgan.eval()  # frozen: no EMA codebook updates, no BatchNorm statistics
        return self

    @property
    def config(self):
        return self.vqgan.config

    def decode_guided(self, indices: torch.Tensor, prev_frame: torch.Tensor) -> torch.Tensor:
        """Code ids [B, h, w] + previous frame [B, C, 16h, 16w] in [-1, 1] -> pixels, float."""
        return self.vqgan.decode_codes(indices, self.guide(prev_frame))

    @torch.no_grad()
    def decode_frame(self, tokens: torch.Tensor, guide: np.ndarray | torch.Tensor | None):
        """Tokens [h, w] / [B, h, w] + uint8 previous frame [16h, 16w, C] / [B, ...] or None.

        Returns uint8 [16h, 16w, C] / [B, ...]; ``guide=None`` decodes with the plain VQGAN.
        """
        if guide is None:
            return self.vqgan.decode(tokens)
        guide = tiling.as_uint8_batch(guide)
        if guide.shape[1:3] != (tokens.shape[-2] * 16, tokens.shape[-1] * 16):
            raise ValueError(
                f"guide frame is {tuple(guide.shape[1:3])} px but tokens {tuple(tokens.shape)} "
                "decode to a different size"
            )
        with eval_mode(self):
            return tiling.decode_tiled(self._decode_window, tokens, self.geometry, guide)

    @torch.no_grad()
    def decode_video(
        self, tokens: torch.Tensor, first_guide: np.ndarray | torch.Tensor | None = None
    ) -> torch.Tensor:
        """Tokens [F, h, w] -> uint8 frames [F, 16h, 16w, C].

        Frame 0 decodes plainly (text-to-video) or guided by ``first_guide`` (animation: the
        given image is frame -1's pixels); every later frame is guided by the frame decoded
        before it, so only one previous frame is held.
        """
        frames = []
        prev = None if first_guide is None else tiling.as_uint8_batch(first_guide)[0]
        for frame_tokens in tokens:
            prev = self.decode_frame(frame_tokens, prev)
            frames.append(prev)
        return torch.stack(frames)

    @torch.no_grad()
    def decode_patch(
        self, tokens: torch.Tensor, row: int, col: int, guide: torch.Tensor | None
    ) -> torch.Tensor:
        """Patch (row, col) of a frame's tokens [h, w], guided by the previous frame's uint8
        canvas [16h, 16w, C] (or unguided with None) -> uint8 [256, 256, C]."""
        if guide is None:
            return self.vqgan.decode_patch(tokens, row, col)
        with eval_mode(self):
            return tiling.decode_one_patch(
                self._decode_window, tokens, row, col, self.geometry, guide
            )

    @property
    def geometry(self) -> tiling.Geometry:
        return self.vqgan.geometry

    def _decode_window(self, tokens: torch.Tensor, guide: torch.Tensor | None) -> torch.Tensor:
        device = self.vqgan.device
        guide_pixels = tiling.to_float(guide.to(device), self.vqgan.dtype)
        return self.decode_guided(tokens.to(device), guide_pixels)
