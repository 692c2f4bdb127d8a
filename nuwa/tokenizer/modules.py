"""Taming-style convolutional encoder and decoder (Esser et al. 2021), factor 2**(levels-1).

Differences from taming's ``diffusionmodules/model.py``: attention levels are named by the
resolution they have inside one tile (the tokenizer always runs on fixed tiles, see tiling.py),
and the decoder accepts per-stage *guides* (PG-VQGAN, paper §2.1) that are added element-wise to
the output of its middle block and of every up-sampling level.

The decoder is *local* by default: each feature is normalised over its own channels
(:class:`PixelNorm`) instead of GroupNorm's statistics over the whole window, and it has no
attention. A pixel then depends only on the tokens within the convolutions' reach, never on how
much canvas is decoded with it. With taming's GroupNorm + attention (``local=False``) the same
tokens decoded inside a larger canvas came out up to 26.6/255 MAE different (the given region
of an outpainting lost its colours), and tiles decoded one by one met at visible seams.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def norm(channels: int) -> nn.GroupNorm:
    """GroupNorm(32) as in taming for widths >= 128; narrower widths keep >= 4 channels a group."""
    groups = math.gcd(32, max(channels // 4, 1))
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6)


class PixelNorm(nn.Module):
    """LayerNorm over the channels of each position of [B, C, H, W] (no spatial statistics)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.movedim(1, -1), x.shape[1:2], self.weight, self.bias, self.eps)
        # contiguous: a channels-last output would switch the next convolution to another
        # kernel, whose last bits then depend on the layout of whatever is added downstream
        return x.movedim(-1, 1).contiguous()


Norm = Callable[[int], nn.Module]


class ResnetBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, norm: Norm = norm):
        super().__init__()
        self.norm1, self.conv1 = norm(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2, self.conv2 = norm(out_ch), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions of the feature map."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm = norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # taming's asymmetric pad keeps sizes exact


class Upsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def level_blocks(
    in_ch: int, out_ch: int, n_blocks: int, attn: bool, norm: Norm = norm
) -> nn.Sequential:
    """``n_blocks`` residual blocks ``in_ch -> out_ch``, each followed by attention if ``attn``."""
    layers: list[nn.Module] = []
    for i in range(n_blocks):
        layers.append(ResnetBlock(in_ch if i == 0 else out_ch, out_ch, norm))
        if attn:
            layers.append(AttnBlock(out_ch))
    return nn.Sequential(*layers)


def mid_block(ch: int, attn: bool = True, norm: Norm = norm) -> nn.Sequential:
    middle = AttnBlock(ch) if attn else nn.Identity()  # keeps taming's parameter names
    return nn.Sequential(ResnetBlock(ch, ch, norm), middle, ResnetBlock(ch, ch, norm))


class Encoder(nn.Module):
    """[B, C, H, W] pixels in [-1, 1] -> [B, z_channels, H/f, W/f] with f = 2**(len(ch_mult)-1)."""

    def __init__(
        self,
        *,
        in_channels: int,
        ch: int,
        ch_mult: list[int],
        num_res_blocks: int,
        attn_resolutions: list[int],
        tile: int,
        z_channels: int,
        colour_skip: bool = False,
    ):
        super().__init__()
        widths = [ch * m for m in ch_mult]
        self.factor = 2 ** (len(ch_mult) - 1)
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        levels: list[nn.Module] = []
        prev = ch
        for i, width in enumerate(widths):
            attn = tile // 2**i in attn_resolutions
            levels.append(level_blocks(prev, width, num_res_blocks, attn))
            if i < len(widths) - 1:
                levels.append(Downsample(width))
            prev = width
        self.down = nn.Sequential(*levels)
        self.mid = mid_block(prev)
        self.norm_out = norm(prev)
        self.conv_out = nn.Conv2d(prev, z_channels, 3, padding=1)
        self.from_colour = nn.Conv2d(in_channels, z_channels, 1) if colour_skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.down(self.conv_in(x)))
        z = self.conv_out(F.silu(self.norm_out(h)))
        if self.from_colour is not None:  # the block's mean colour, linearly (see Decoder)
            z = z + self.from_colour(F.avg_pool2d(x, self.factor))
        return z


class Decoder(nn.Module):
    """[B, z_channels, h, w] -> [B, C, h*f, w*f]; optional guides are added stage by stage.

    ``stage_shapes(h, w)`` lists (channels, height, width) of the guides ``forward`` accepts:
    the middle block's output first, then each up-sampling level from coarse to fine.
    ``local``: :class:`PixelNorm` and no attention (see the module docstring).
    """

    def __init__(
        self,
        *,
        out_channels: int,
        ch: int,
        ch_mult: list[int],
        num_res_blocks: int,
        attn_resolutions: list[int],
        tile: int,
        z_channels: int,
        local: bool = True,
        colour_skip: bool = False,
    ):
        super().__init__()
        widths = [ch * m for m in ch_mult]
        self.factor = 2 ** (len(ch_mult) - 1)
        self.widths = widths
        make_norm = PixelNorm if local else norm
        self.conv_in = nn.Conv2d(z_channels, widths[-1], 3, padding=1)
        self.mid = mid_block(widths[-1], attn=not local, norm=make_norm)
        self.levels = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        prev = widths[-1]
        for i in reversed(range(len(widths))):
            attn = not local and tile // 2**i in attn_resolutions
            self.levels.append(level_blocks(prev, widths[i], num_res_blocks + 1, attn, make_norm))
            self.upsamples.append(Upsample(widths[i]) if i > 0 else nn.Identity())
            prev = widths[i]
        self.norm_out = make_norm(prev)
        self.conv_out = nn.Conv2d(prev, out_channels, 3, padding=1)
        self.to_colour = nn.Conv2d(z_channels, out_channels, 1) if colour_skip else None

    def stage_shapes(self, h: int, w: int) -> list[tuple[int, int, int]]:
        """Guide shapes for a latent of h x w: mid block, then levels coarse to fine."""
        n = len(self.widths)
        shapes = [(self.widths[-1], h, w)]
        for i in reversed(range(n)):
            s = 2 ** (n - 1 - i)
            shapes.append((self.widths[i], h * s, w * s))
        return shapes

    def reach_px(self) -> int:
        """Pixels an output pixel can see around its own (a local decoder's exact receptive
        radius): each 3x3 convolution adds one feature at its resolution, and each nearest
        up-sampling one more output pixel. A halo of ``ceil(reach / 16)`` tokens makes windowed
        decoding exact; a trained decoder's influence fades much sooner (``decode_margin``)."""
        px = self.factor  # pixels per latent feature

        def convs(module: nn.Module) -> int:
            return sum(m.kernel_size[0] // 2 for m in module.modules() if isinstance(m, nn.Conv2d))

        reach = px * (convs(self.conv_in) + convs(self.mid))
        for level, upsample in zip(self.levels, self.upsamples, strict=True):
            reach += px * convs(level)
            if isinstance(upsample, Upsample):
                px //= 2
                reach += px * convs(upsample) + px
        reach += px * convs(self.conv_out)
        if self.to_colour is not None:  # bicubic taps reach 2 tokens past the pixel's own token
            reach = max(reach, 2 * self.factor + self.factor // 2)
        return reach

    def forward(self, z: torch.Tensor, guides: list[torch.Tensor] | None = None) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        if guides is not None:
            h = h + guides[0]
        for i, (level, upsample) in enumerate(zip(self.levels, self.upsamples, strict=True)):
            h = level(h)
            if guides is not None:
                h = h + guides[i + 1]
            h = upsample(h)
        out = self.conv_out(F.silu(self.norm_out(h)))
        if self.to_colour is not None:
            out = out + self.colour_field(z)
        return out

    def colour_field(self, z: torch.Tensor) -> torch.Tensor:
        """[B, z_channels, h, w] -> [B, C, h*f, w*f]: one colour per token, up-sampled bicubically.

        The low-frequency path of ``colour_skip``: the convolutions above learn only the detail
        on top of this field. Smooth skies and slopes are most of a landscape's pixels, and an
        equal-bits palette of block colours up-sampled this way scores 28.3 dB on them
        (``nuwa.tokenizer.baseline``); with the field the decoder starts from that solution
        instead of learning a smooth interpolation through 15 convolutions. Bicubic reads 2
        tokens around each one (32 px), inside the convolutions' reach.
        """
        # On CPU in float64, then cast back: in float32 this path (1x1 convolution, bicubic) came
        # out up to 5e-7 apart on 1 and 2 threads, which flipped the rounding of 1-2 decoded
        # pixels per 512² canvas, so the same tokens gave other bytes on another thread count
        # (and each torchrun rank runs one thread). Every other layer agreed bit for bit. Other
        # devices keep their own dtype (MPS has no float64).
        exact = torch.float64 if z.device.type == "cpu" else z.dtype
        conv = self.to_colour
        colours = F.conv2d(z.to(exact), conv.weight.to(exact), conv.bias.to(exact))
        field = F.interpolate(
            colours, scale_factor=self.factor, mode="bicubic", align_corners=False
        )
        return field.to(z.dtype)
