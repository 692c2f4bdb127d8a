"""PG-VQGAN: guide shapes, zero-initialised start, guidance actually used, video decoding order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nuwa.tokenizer import PGVQGAN, build_vqgan
from nuwa.train.pg_tokenizer import temporal_flicker


@pytest.fixture
def pg():
    torch.manual_seed(0)
    return PGVQGAN(build_vqgan("tiny")).eval()


def frames(n: int, h: int = 64, w: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def perturb(pg: PGVQGAN) -> None:
    with torch.no_grad():
        for p in pg.guide.parameters():
            p.add_(torch.randn_like(p) * 0.1)


def test_guides_match_every_decoder_stage(pg):
    for h, w in [(4, 4), (2, 6)]:
        guides = pg.guide(torch.zeros(1, 3, 16 * h, 16 * w))
        expected = pg.vqgan.decoder.stage_shapes(h, w)
        assert [tuple(g.shape[1:]) for g in guides] == expected


def test_untrained_guide_decodes_exactly_like_the_vqgan(pg):
    video = frames(2)
    tokens = pg.vqgan.encode(video)
    assert torch.equal(pg.decode_frame(tokens[1], video[0]), pg.vqgan.decode(tokens[1]))


def test_guidance_changes_the_decode_and_depends_on_the_previous_frame(pg):
    perturb(pg)
    video = frames(3)
    tokens = pg.vqgan.encode(video)
    plain = pg.vqgan.decode(tokens[1])
    guided = pg.decode_frame(tokens[1], video[0])
    assert not torch.equal(guided, plain)
    assert not torch.equal(guided, pg.decode_frame(tokens[1], video[2]))
    assert torch.equal(pg.decode_frame(tokens[1], None), plain)


def test_video_decoding_first_frame_plain_or_guided_then_chained(pg):
    perturb(pg)
    video = frames(3)
    tokens = pg.vqgan.encode(video)
    t2v = pg.decode_video(tokens)
    assert t2v.shape == video.shape and t2v.dtype == torch.uint8
    assert torch.equal(t2v[0], pg.vqgan.decode(tokens[0]))  # text-to-video: frame 0 plain
    assert torch.equal(t2v[1], pg.decode_frame(tokens[1], t2v[0]))  # then guided by decoded
    animated = pg.decode_video(tokens, first_guide=video[0])  # animation: the given image
    assert torch.equal(animated[0], pg.decode_frame(tokens[0], video[0]))


def test_guided_tiled_decode_equals_patch_by_patch(pg):
    perturb(pg)
    video = frames(2, h=64, w=160)
    tokens = pg.vqgan.encode(video)
    canvas = pg.decode_frame(tokens[1], video[0])
    guide = torch.from_numpy(video[0])
    for c, (x0, x1) in enumerate([(0, 64), (64, 128), (128, 160)]):
        assert torch.equal(pg.decode_patch(tokens[1], 0, c, guide), canvas[:, x0:x1])


def test_guide_of_the_wrong_size_is_refused(pg):
    tokens = torch.zeros(4, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="guide frame is"):
        pg.decode_frame(tokens, frames(1, 64, 64)[0])


def test_flicker_metric():
    video = frames(4)
    assert temporal_flicker(torch.from_numpy(video), video) == 0.0
    static = np.repeat(video[:1], 4, axis=0)  # a frozen decode of a moving video
    expected = np.abs(np.diff(video.astype(np.float64), axis=0)).mean()
    assert abs(temporal_flicker(torch.from_numpy(static), video) - expected) < 1e-3
