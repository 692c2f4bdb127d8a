"""VQGAN visual tokenizer (paper §2.1): f=16 conv encoder/decoder around an EMA vector quantizer.

Read top to bottom: config, model (tile-level float API), then the canvas-level API that works
on uint8 images of any size through fixed tiles (tiling.py), and checkpoint loading.
Presets (``paper``, ``small``, ``tiny``) live as YAML in nuwa/conf/tokenizer/ (see presets.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from nuwa.layout import DOWNSAMPLE
from nuwa.tokenizer import tiling
from nuwa.tokenizer.modules import Decoder, Encoder
from nuwa.tokenizer.quantize import Quantized, VectorQuantizer


@dataclass
class VQGANConfig:
    tile: int = 256  # px; encode/decode run on tiles of this size so tokens ignore canvas size
    in_channels: int = 3
    ch: int = 128
    ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    num_res_blocks: int = 2
    attn_resolutions: list[int] = field(default_factory=lambda: [16])  # px inside one tile
    z_channels: int = 256
    codebook_size: int = 16384
    codebook_dim: int = 256  # < z_channels: low-dimensional code lookup (Improved VQGAN)
    use_cosine: bool = False  # l2-normalised codes and latents
    ema_decay: float = 0.99
    beta: float = 0.25  # commitment weight on ||z - sg(e)||^2
    dead_code_threshold: float = 0.1  # restart codes whose EMA uses/step fall below this
    decode_margin: int = 2  # tokens of neighbour context (halo) around each decoded patch
    local_decoder: bool = True  # PixelNorm, no attention: decoding ignores the canvas around
    # a linear colour path around the convolutions: the encoder adds each 16x16 block's mean
    # colour to its latent, the decoder each token's colour up-sampled bicubically (colour_field)
    colour_skip: bool = False

    def __post_init__(self) -> None:
        if 2 ** (len(self.ch_mult) - 1) != DOWNSAMPLE:
            raise ValueError(f"ch_mult must have 5 levels for f={DOWNSAMPLE}, got {self.ch_mult}")
        if self.tile % DOWNSAMPLE:
            raise ValueError(f"tile={self.tile} must be a multiple of {DOWNSAMPLE}")

    @property
    def tile_tokens(self) -> int:
        """Tokens per tile side (16 for 256-px tiles: one transformer patch)."""
        return self.tile // DOWNSAMPLE


class VQGAN(nn.Module):
    def __init__(self, config: VQGANConfig):
        super().__init__()
        self.config = config
        arch = dict(
            ch=config.ch,
            ch_mult=list(config.ch_mult),
            num_res_blocks=config.num_res_blocks,
            attn_resolutions=list(config.attn_resolutions),
            tile=config.tile,
            z_channels=config.z_channels,
        )
        self.encoder = Encoder(
            in_channels=config.in_channels, colour_skip=config.colour_skip, **arch
        )
        self.decoder = Decoder(
            out_channels=config.in_channels,
            local=config.local_decoder,
            colour_skip=config.colour_skip,
            **arch,
        )
        self.quantizer = VectorQuantizer(
            dim=config.z_channels,
            codebook_size=config.codebook_size,
            codebook_dim=config.codebook_dim,
            use_cosine=config.use_cosine,
            ema_decay=config.ema_decay,
            beta=config.beta,
            dead_code_threshold=config.dead_code_threshold,
        )

    # ---- tile-level float API: pixels in [-1, 1], [B, C, H, W] --------------------------------
    def quantize(self, x: torch.Tensor) -> Quantized:
        """Pixels [B, C, H, W] in [-1, 1] -> quantised latents and code ids [B, H/16, W/16]."""
        return self.quantizer(self.encoder(x))

    def decode_codes(self, indices: torch.Tensor, guides: list[torch.Tensor] | None = None):
        """Code ids [B, h, w] -> pixels [B, C, 16h, 16w] in about [-1, 1]."""
        return self.decoder(self.quantizer.lookup(indices), guides)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        """Training pass: reconstruction [B, C, H, W] and the quantizer output."""
        q = self.quantize(x)
        return self.decoder(q.z_q), q

    # ---- canvas-level API: uint8 images of any size (multiples of 16) --------------------------
    @torch.no_grad()
    def encode(self, images: np.ndarray | torch.Tensor, *, pad: bool = False) -> torch.Tensor:
        """uint8 [H, W, 3] or [B, H, W, 3] -> int64 tokens [H/16, W/16] or [B, H/16, W/16].

        Tokens are computed tile by tile (``config.tile`` px), so a token depends only on the
        pixels of its own tile. Sides that are not multiples of 16 raise ValueError, or with
        ``pad=True`` are edge-padded up to the next multiple (the tokens then cover the padding).
        """
        with eval_mode(self):
            return tiling.encode_tiled(
                self.quantize,
                images,
                self.config.tile,
                pad=pad,
                device=self.device,
                dtype=self.dtype,
            )

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """int64 tokens [h, w] or [B, h, w] -> uint8 pixels [16h, 16w, 3] or [B, 16h, 16w, 3].

        Equal, pixel for pixel, to stitching ``decode_patch`` over every patch.
        """
        with eval_mode(self):
            return tiling.decode_tiled(self._decode_window, tokens, self.geometry)

    @torch.no_grad()
    def decode_patch(self, tokens: torch.Tensor, row: int, col: int) -> torch.Tensor:
        """Decode patch (row, col) of a token canvas [h, w] or [B, h, w] -> uint8 [256, 256, 3].

        Reads only the tokens of that patch plus ``config.decode_margin`` tokens around it, so a
        sampler can decode each patch once its neighbours within the margin exist, and never
        holds the canvas in float32. Edge patches of canvases that are not multiples of the
        patch size come out smaller.
        """
        with eval_mode(self):
            return tiling.decode_one_patch(self._decode_window, tokens, row, col, self.geometry)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The weights' float type: pixels are converted to it before encoding."""
        return next(self.parameters()).dtype

    @property
    def geometry(self) -> tiling.Geometry:
        return tiling.Geometry(patch=self.config.tile_tokens, margin=self.config.decode_margin)

    def _decode_window(self, tokens: torch.Tensor, guide: torch.Tensor | None) -> torch.Tensor:
        return self.decode_codes(tokens.to(self.device))


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run in eval mode (no EMA codebook updates, BatchNorm frozen), then restore the mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
