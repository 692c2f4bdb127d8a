"""VQGAN canvas API: shapes at many sizes, tile independence, tiled vs whole decode, bad input."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nuwa.tokenizer import VQGAN, build_vqgan, load_preset
from nuwa.tokenizer.tiling import to_uint8


@pytest.fixture(scope="module")
def vqgan():
    torch.manual_seed(0)
    return build_vqgan("tiny").eval()  # tile 64 px = 4x4 tokens, decode margin 1 token


@pytest.fixture(scope="module")
def colour_vqgan():
    torch.manual_seed(0)
    return VQGAN(replace(load_preset("tiny").model, colour_skip=True)).eval()


def image(h: int, w: int, seed: int = 0, batch: int | None = None) -> np.ndarray:
    shape = (h, w, 3) if batch is None else (batch, h, w, 3)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("h,w", [(16, 16), (32, 48), (64, 64), (64, 192), (80, 112)])
def test_encode_decode_shapes(vqgan, h, w):
    tokens = vqgan.encode(image(h, w))
    assert tokens.shape == (h // 16, w // 16) and tokens.dtype == torch.int64
    assert tokens.min() >= 0 and tokens.max() < vqgan.config.codebook_size
    pixels = vqgan.decode(tokens)
    assert pixels.shape == (h, w, 3) and pixels.dtype == torch.uint8
    batch = vqgan.encode(image(h, w, batch=2))
    assert batch.shape == (2, h // 16, w // 16)
    assert vqgan.decode(batch).shape == (2, h, w, 3)


def test_wide_canvas_256x4096_gives_16x256_tokens(vqgan):
    tokens = vqgan.encode(image(256, 4096))
    assert tokens.shape == (16, 256)
    assert vqgan.decode(tokens[:, :32]).shape == (256, 512, 3)


def test_a_token_never_depends_on_canvas_size(vqgan):
    canvas = image(128, 320, seed=1)
    tokens = vqgan.encode(canvas)
    assert torch.equal(tokens[:4, :4], vqgan.encode(canvas[:64, :64]))  # first tile alone
    assert torch.equal(tokens[4:, 8:12], vqgan.encode(canvas[64:, 128:192]))  # an inner tile
    assert torch.equal(tokens[:, :12], vqgan.encode(canvas[:, :192]))  # a narrower canvas


def test_tiled_decode_equals_whole_decode_within_one_window(vqgan):
    tokens = vqgan.encode(image(64, 64, seed=2))  # one patch: its window is the whole canvas
    whole = to_uint8(vqgan.decode_codes(tokens[None]))[0]
    assert torch.equal(vqgan.decode(tokens), whole)


def test_tiled_decode_equals_patch_by_patch_decode(vqgan):
    tokens = vqgan.encode(image(96, 160, seed=3))  # 6x10 tokens: 2x3 patches, ragged edges
    canvas = vqgan.decode(tokens)
    for r, (y0, y1) in enumerate([(0, 64), (64, 96)]):
        for c, (x0, x1) in enumerate([(0, 64), (64, 128), (128, 160)]):
            assert torch.equal(vqgan.decode_patch(tokens, r, c), canvas[y0:y1, x0:x1])


def test_patch_decode_reads_only_the_patch_and_its_margin(vqgan):
    tokens = vqgan.encode(image(64, 192, seed=4))  # patches 0 | 1 | 2, 4 tokens wide each
    margin = vqgan.config.decode_margin
    changed = tokens.clone()
    changed[:, 8 + margin :] = (changed[:, 8 + margin :] + 1) % vqgan.config.codebook_size
    assert torch.equal(vqgan.decode_patch(tokens, 0, 0), vqgan.decode_patch(changed, 0, 0))
    changed[:, 8 + margin - 1] = (changed[:, 8 + margin - 1] + 1) % vqgan.config.codebook_size
    assert not torch.equal(vqgan.decode_patch(tokens, 0, 1), vqgan.decode_patch(changed, 0, 1))


@pytest.mark.parametrize("model", ["vqgan", "colour_vqgan"])
def test_streamed_decode_equals_whole_decode_with_a_halo_of_the_decoders_reach(model, request):
    """The local decoder has no spatial statistics: with a halo as wide as its receptive field
    (the colour path's bicubic taps included), decoding tile by tile is the one-pass decode of
    the whole canvas."""
    vqgan = request.getfixturevalue(model)
    tokens = vqgan.encode(image(128, 384, seed=6))  # 2 x 6 tiles
    whole = to_uint8(vqgan.decode_codes(tokens[None]))[0]
    vqgan.config.decode_margin = math.ceil(vqgan.decoder.reach_px() / 16)
    try:
        streamed = vqgan.decode(tokens)
    finally:
        vqgan.config.decode_margin = load_preset("tiny").model.decode_margin
    assert torch.equal(streamed, whole)


def test_same_tokens_decode_the_same_inside_any_canvas(vqgan):
    """What the outpainting bug was: taming's decoder (GroupNorm and attention over the whole
    window) decodes tokens differently once other tokens surround them; the local one does not,
    beyond its reach."""
    tokens = vqgan.encode(image(64, 640, seed=7))  # 4 x 40 tokens
    other = tokens.clone()
    other[:, 20:] = (other[:, 20:] + 7) % vqgan.config.codebook_size  # new neighbours
    safe = (20 - math.ceil(vqgan.decoder.reach_px() / 16)) * 16  # px the change cannot reach
    alone = to_uint8(vqgan.decode_codes(tokens[None, :, :20]))[..., :safe, :]
    inside = to_uint8(vqgan.decode_codes(other[None]))[..., :safe, :]
    assert (alone.int() - inside.int()).abs().max() <= 1  # float rounding of other conv sizes
    torch.manual_seed(0)
    taming = VQGAN(replace(load_preset("tiny").model, local_decoder=False)).eval()
    alone = to_uint8(taming.decode_codes(tokens[None, :, :20]))[..., :safe, :]
    inside = to_uint8(taming.decode_codes(other[None]))[..., :safe, :]
    assert (alone.int() - inside.int()).abs().max() > 8


def test_the_halo_keeps_decoding_memory_flat_in_the_number_of_patches(vqgan, monkeypatch):
    """Counted, not timed: the largest window the decoder ever runs on is the same for a canvas
    of 8 and of 64 patches (one tile plus its halo)."""
    windows: list[tuple[int, ...]] = []
    decode_window = vqgan._decode_window

    def counting(tokens, guide):
        windows.append(tuple(tokens.shape))
        return decode_window(tokens, guide)

    monkeypatch.setattr(vqgan, "_decode_window", counting)
    largest = {}
    for patches in (8, 64):
        windows.clear()
        vqgan.decode(torch.zeros(4, 4 * patches, dtype=torch.long))
        largest[patches] = max(h * w for _, h, w in windows)
        assert len(windows) == patches
    margin = vqgan.config.decode_margin
    assert largest[8] == largest[64] == 4 * (4 + 2 * margin)


def test_zero_margin_decodes_each_patch_from_its_own_tokens(vqgan):
    tokens = vqgan.encode(image(64, 128, seed=5))
    vqgan.config.decode_margin = 0
    try:
        canvas = vqgan.decode(tokens)
        right = to_uint8(vqgan.decode_codes(tokens[None, :, 4:]))[0]
    finally:
        vqgan.config.decode_margin = load_preset("tiny").model.decode_margin
    assert torch.equal(canvas[:, 64:], right)


def test_bad_sizes_are_refused_or_padded_never_cropped(vqgan):
    with pytest.raises(ValueError, match="multiples of 16.*pad=True"):
        vqgan.encode(image(50, 64))
    assert vqgan.encode(image(50, 70), pad=True).shape == (4, 5)
    with pytest.raises(ValueError, match="uint8"):
        vqgan.encode(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[H, W, C\]"):
        vqgan.encode(np.zeros((64, 64, 5), np.uint8))
    with pytest.raises(IndexError, match="outside"):
        vqgan.decode_patch(torch.zeros(4, 4, dtype=torch.long), 1, 0)


def test_encoding_does_not_update_the_codebook(vqgan):
    vqgan.train()
    before = {k: v.clone() for k, v in vqgan.quantizer.state_dict().items()}
    vqgan.encode(image(64, 64, seed=6))
    assert vqgan.training  # mode restored
    vqgan.eval()
    for k, v in vqgan.quantizer.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_presets_build_and_paper_preset_matches_table_1():
    paper = load_preset("paper").model
    assert (paper.codebook_size, paper.codebook_dim, paper.z_channels) == (16384, 256, 256)
    assert paper.ch_mult == [1, 1, 2, 2, 4] and paper.attn_resolutions == [16]
    small = load_preset("small").model
    assert 512 <= small.codebook_size <= 1024 and small.tile == 256
    with pytest.raises(ValueError, match="unknown tokenizer preset"):
        load_preset("huge")


@contextmanager
def silenced(conv: torch.nn.Conv2d) -> Iterator[None]:
    """Zero a convolution's weights (no grad) for the block, then restore them."""
    saved = [p.detach().clone() for p in conv.parameters()]
    with torch.no_grad():
        for p in conv.parameters():
            p.zero_()
        try:
            yield
        finally:
            for p, value in zip(conv.parameters(), saved, strict=True):
                p.copy_(value)


def test_colour_skip_adds_each_tokens_colour_up_sampled_bicubically(colour_vqgan):
    """With the convolutions silenced, a decode is the colour field alone: each token's colour
    far from other tokens, and a smooth ramp across a border instead of a 16-px step."""
    decoder = colour_vqgan.decoder
    tokens = torch.zeros(1, 4, 8, dtype=torch.int64)
    tokens[..., 4:] = 5  # two colours side by side
    latents = colour_vqgan.quantizer.lookup(tokens)
    colours = decoder.to_colour(latents)[0, :, 0]  # [C, 8]
    with silenced(decoder.conv_out):
        row = colour_vqgan.decode_codes(tokens)[0, :, 32]  # [C, 128] pixels of one row
    torch.testing.assert_close(row[:, :16], colours[:, :1].expand(-1, 16))
    torch.testing.assert_close(row[:, -16:], colours[:, -1:].expand(-1, 16))
    step = (colours[:, 4] - colours[:, 3]).abs()
    assert ((row[:, 63] - row[:, 64]).abs() < step / 4).all()  # no step at the token border
    torch.testing.assert_close((row[:, 63] + row[:, 64]) / 2, (colours[:, 3] + colours[:, 4]) / 2)


def test_colour_skip_gives_the_encoder_each_blocks_mean_colour(colour_vqgan):
    """The encoder's linear path sees a 16x16 block only through its mean colour: with the
    convolutions silenced, two textures of equal block means get the same latents."""
    encoder = colour_vqgan.encoder
    noise = torch.rand(1, 3, 64, 64) * 2 - 1
    flat = F.interpolate(F.avg_pool2d(noise, 16), scale_factor=16, mode="nearest")
    with silenced(encoder.conv_out):
        torch.testing.assert_close(encoder(noise), encoder(flat))
    with torch.no_grad():
        assert not torch.allclose(encoder(noise), encoder(flat))  # the convolutions see texture
