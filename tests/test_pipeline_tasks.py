"""Pipeline tasks on tiny random-init checkpoints: shapes, given regions kept, determinism, CFG,
streamed decoding equal to decoding the final token grid, and video decoding with the PG-VQGAN.

The fixtures here (``files``, ``pipes``) are shared with the other pipeline and CLI tests.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from nuwa.adc import ExtentWarning, make_plan
from nuwa.canvas import StreamingCanvas
from nuwa.device import cpu_threads
from nuwa.model import Nuwa, preset
from nuwa.model.checkpoint import save_model
from nuwa.outpainting import BLEND_PX, paste_input
from nuwa.pipeline import Pipeline, canvas_size, generated_mask, generated_region
from nuwa.sampling import PAPER_TOP_K_FRACTION, SamplerOptions, sample
from nuwa.tokenizer import PGVQGAN, build_vqgan, save_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore::nuwa.adc.ExtentWarning")  # toy grids


@pytest.fixture(autouse=True)
def one_thread():
    """Thousands of tiny kernels: one thread avoids thread-pool overhead on a shared 2-core box."""
    with cpu_threads(1):
        yield


TOKENIZER_CODES = 64  # the "tiny" tokenizer preset's codebook; models must predict as many
MODELS = {  # name -> preset("tiny") overrides; tiny patches are 4x4 tokens = 64 px
    "plain": {},
    "text": {"text": "clip-tiny"},
    "video": {"extent": (1, 1, 1)},
    "video_text": {"extent": (1, 1, 1), "text": "clip-tiny"},
    "half_patch": {"patch_size": 2},  # 32-px patches: a 64-px tokenizer tile spans four
    "wrong_codebook": {"codebook_size": 32},
}


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> dict[str, Path]:
    """Tiny random-init checkpoints: a VQGAN, a PG-VQGAN on it, another VQGAN, and MODELS."""
    root = tmp_path_factory.mktemp("pipeline_ckpt")
    torch.manual_seed(0)
    vqgan = build_vqgan("tiny")
    assert vqgan.config.codebook_size == TOKENIZER_CODES
    out = {"tokenizer": root / "tokenizer.safetensors", "pg": root / "pg.safetensors"}
    save_tokenizer(out["tokenizer"], vqgan, preset="tiny", step=0)
    pg = PGVQGAN(vqgan)
    for p in pg.guide.parameters():  # its zero-initialised outputs would make guiding a no-op
        torch.nn.init.normal_(p, std=0.1)
    save_tokenizer(out["pg"], pg, preset="tiny", step=0)
    out["other_pg"] = root / "other_pg.safetensors"
    save_tokenizer(out["other_pg"], PGVQGAN(build_vqgan("tiny")), preset="tiny", step=0)
    for name, overrides in MODELS.items():
        out[name] = root / f"model_{name}.safetensors"
        save_model(Nuwa(preset("tiny", **overrides)), out[name], {"preset": "tiny"})
    return out


@pytest.fixture(scope="session")
def pipes(files) -> dict[str, Pipeline]:
    """One pipeline per model in MODELS that fits the tokenizer (video ones with the PG-VQGAN)."""
    return {
        name: Pipeline.from_checkpoint(
            files[name], files["tokenizer"], files["pg"] if "video" in name else None
        )
        for name in MODELS
        if name != "wrong_codebook"
    }


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def decode_grid(pipe: Pipeline, tokens: torch.Tensor) -> np.ndarray:
    """Reference: decode the final token grid ``[B, 1, H, W]`` at once -> ``[B, H, W, 3]``."""
    return pipe.tokenizer.decode(tokens[:, 0]).numpy()


# ---------------------------------------------------------------- unconditional / text-to-image


def test_unconditional_any_size_is_seed_deterministic(pipes):
    pipe = pipes["plain"]
    first = pipe.unconditional(2, 192, 64, seed=5, progress=False)
    assert [a.shape for a in first] == [(64, 192, 3)] * 2 and first[0].dtype == np.uint8
    assert first.plan.name == "omega" and first.stats["tokens"] == 2 * 3 * 16
    assert first.tokens.shape == (2, 1, 4, 12) and first.stats["waves"] == 3
    again = pipe.unconditional(2, 192, 64, seed=5, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other = pipe.unconditional(2, 192, 64, seed=6, progress=False)
    assert not np.array_equal(first[0], other[0])
    tall = pipe.unconditional(1, 64, 128, progress=False)
    assert tall[0].shape == (128, 64, 3) and tall.plan.name == "zeta"  # scan the short side


def test_text_to_image_streams_the_same_pixels_as_decoding_the_final_grid(pipes):
    pipe = pipes["text"]
    images = pipe.text_to_image(["a red sky", "green hills"], 192, 128, seed=1, progress=False)
    assert [a.shape for a in images] == [(128, 192, 3)] * 2
    np.testing.assert_array_equal(np.stack(images), decode_grid(pipe, images.tokens))


def test_cfg_scale_one_is_plain_conditional_sampling(pipes):
    pipe, texts = pipes["text"], ["a lake", "snowy peaks"]
    images = pipe.text_to_image(texts, 128, 64, seed=3, cfg_scale=1.0, progress=False)
    plan = make_plan(pipe.grid(128, 64), pipe.model.extent, "omega")
    top_k = round(PAPER_TOP_K_FRACTION * TOKENIZER_CODES)  # the pipeline's default filter
    options = SamplerOptions(seed=3, top_k=top_k, progress=False)
    tokens = sample(pipe.model, plan, text=texts, options=options).tokens
    assert torch.equal(images.tokens, tokens)
    np.testing.assert_array_equal(np.stack(images), decode_grid(pipe, tokens))
    # random init: the text barely moves the logits, so amplify it to see guidance act
    guided = pipe.text_to_image(texts, 128, 64, seed=3, cfg_scale=100.0, progress=False)
    assert not torch.equal(guided.tokens, tokens)


def test_sampler_options_reach_the_sampler(pipes):
    pipe = pipes["plain"]
    greedy = pipe.unconditional(1, 128, 64, temperature=0, progress=False).tokens
    again = pipe.unconditional(1, 128, 64, temperature=0, seed=9, progress=False).tokens
    assert torch.equal(again, greedy)  # greedy ignores the seed
    top_1 = pipe.unconditional(1, 128, 64, top_k=1, seed=9, progress=False).tokens
    assert torch.equal(top_1, greedy)  # top-1 is greedy
    with pytest.raises(TypeError):
        pipe.unconditional(1, 128, 64, topk=5)
    with pytest.raises(ValueError, match="top_p must be in"):
        pipe.unconditional(1, 128, 64, top_p=1.5)


def test_streaming_waits_for_neighbours_when_a_tile_spans_patches(pipes):
    """32-px model patches under 64-px tokenizer tiles (+1 token margin): each tile is decoded
    once, after the patches its window reads, and the canvas equals the one-shot decode."""
    pipe = pipes["half_patch"]
    calls = []
    decode_patch = pipe.tokenizer.decode_patch

    def counting(tokens, row, col):
        calls.append((row, col))
        return decode_patch(tokens, row, col)

    pipe.tokenizer.decode_patch = counting
    try:
        result = pipe.unconditional(1, 192, 128, seed=2, progress=False)
    finally:
        del pipe.tokenizer.decode_patch
    assert sorted(calls) == [(r, c) for r in range(2) for c in range(3)]  # each tile once
    np.testing.assert_array_equal(result[0][None], decode_grid(pipe, result.tokens))


def test_large_canvases_go_to_an_unlinked_memmap(pipes, monkeypatch):
    pipe = pipes["plain"]
    [in_ram] = pipe.unconditional(1, 128, 64, seed=4, progress=False)
    monkeypatch.setattr(pipe, "memmap_over_bytes", 0)
    [on_disk] = pipe.unconditional(1, 128, 64, seed=4, progress=False)
    assert isinstance(on_disk.base, np.memmap) or isinstance(on_disk, np.memmap)
    np.testing.assert_array_equal(on_disk, in_ram)


# ---------------------------------------------------------------- outpainting


@pytest.mark.parametrize("direction", ["right", "left", "down", "up", "all"])
def test_outpainting_keeps_the_given_tokens_and_generates_only_the_rest(pipes, direction):
    pipe = pipes["plain"]
    source = image(128, 64, seed=1)  # 2 x 1 patches
    result = pipe.outpaint(
        [source], direction=direction, amount_px=64, keep_input=False, seed=0, progress=False
    )
    [out] = result
    assert out.shape == (*canvas_size(direction, 128, 64, 64), 3)
    top, left, h, w = result.given_region
    given = result.tokens[0, 0, top // 16 : (top + h) // 16, left // 16 : (left + w) // 16]
    assert torch.equal(given, pipe.tokenizer.encode(source))
    plan = result.plan  # Algorithm 2: the given patches are pre-cached first
    assert plan.num_given == 2 and result.stats["patches"] == plan.grid.num_patches - 2
    rows, cols = slice(top // 64, (top + h) // 64), slice(left // 64, (left + w) // 64)
    assert set(plan.order[:2]) == set(plan.grid.region(rows=rows, cols=cols))
    assert plan.name == {"all": "spiral"}.get(direction, plan.name)
    mask = result.generated_mask
    assert mask.shape == out.shape[:2] and mask.sum() == out.shape[0] * out.shape[1] - 128 * 64
    if direction != "all":
        t, lft, gh, gw = generated_region(direction, 128, 64, 64)
        assert mask[t : t + gh, lft : lft + gw].all()
    np.testing.assert_array_equal(out[None], decode_grid(pipe, result.tokens))


@pytest.mark.parametrize("direction", ["right", "left", "down", "up", "all"])
def test_outpainting_returns_the_users_pixels_in_the_given_region(pipes, direction):
    """By default the given region is the input itself, faded into the decode only within
    BLEND_PX of a generated side; the generated part is the raw decode, untouched."""
    pipe = pipes["plain"]
    source = image(128, 128, seed=2)
    kwargs = dict(direction=direction, amount_px=64, seed=0, progress=False)
    [raw] = pipe.outpaint([source], keep_input=False, **kwargs)
    result = pipe.outpaint([source], **kwargs)
    [out] = result
    top, left, h, w = result.given_region
    given = out[top : top + h, left : left + w].astype(int)
    band = BLEND_PX
    inner = {
        "right": (slice(None), slice(None, w - band)),
        "left": (slice(None), slice(band, None)),
        "down": (slice(None, h - band), slice(None)),
        "up": (slice(band, None), slice(None)),
        "all": (slice(band, h - band), slice(band, w - band)),
    }[direction]
    np.testing.assert_array_equal(given[inner], source[inner])
    decoded = raw[top : top + h, left : left + w].astype(int)
    low, high = np.minimum(source, decoded), np.maximum(source, decoded)
    assert ((given >= low) & (given <= high)).all()  # the band lies between the two
    mask = result.generated_mask
    np.testing.assert_array_equal(out[mask], raw[mask])
    assert np.abs(given - source).mean() < np.abs(decoded - source).mean()


def test_paste_input_fades_linearly_across_the_band():
    canvas = np.zeros((64, 96, 3), dtype=np.uint8)  # decode: black; input: white, 64 px wide
    out = paste_input(canvas, np.full((64, 64, 3), 255, np.uint8), "right", 32, blend_px=16)
    row = out[0, :, 0].astype(int)
    assert (row[:48] == 255).all() and (row[64:] == 0).all()
    assert (np.diff(row[48:64]) < 0).all() and row[63] == round(255 * 0.5 / 16)


def test_outpainting_with_text_and_a_batch(pipes):
    pipe = pipes["text"]
    images = [image(64, 64, seed=s) for s in range(2)]
    out = pipe.outpaint(
        images, direction="up", amount_px=128, texts=["sky", "clouds"], progress=False
    )
    assert [a.shape for a in out] == [(192, 64, 3)] * 2
    assert torch.equal(out.tokens[:, 0, 8:], pipe.tokenizer.encode(np.stack(images)))
    # without text, a text model conditions on the empty text
    [alone] = pipe.outpaint(images[:1], direction="right", amount_px=64, progress=False)
    assert alone.shape == (64, 128, 3)


def test_outpainting_geometry_helpers():
    assert generated_region("right", 512, 256, 256) == (0, 256, 512, 256)
    assert generated_region("left", 512, 256, 256) == (0, 0, 512, 256)
    assert generated_region("down", 256, 512, 256) == (256, 0, 256, 512)
    assert generated_region("up", 256, 512, 256) == (0, 0, 256, 512)
    ring = generated_mask("all", 256, 256, 128)
    assert (
        ring.shape == (512, 512) and not ring[128:384, 128:384].any() and ring.sum() == 3 * 256**2
    )
    with pytest.raises(ValueError, match="ring, not a rectangle"):
        generated_region("all", 256, 256, 128)


# ---------------------------------------------------------------- videos


def reference_video(pipe: Pipeline, tokens: torch.Tensor, first_guide) -> np.ndarray:
    """``PGVQGAN.decode_video`` over a batch: frame 0 guided by ``first_guide`` (or plain), each
    later frame by the frame decoded before it -> ``[B, F, H, W, 3]``."""
    prev, frames = first_guide, []
    for f in range(tokens.shape[1]):
        prev = pipe.pg_tokenizer.decode_frame(tokens[:, f], prev)
        frames.append(prev)
    return torch.stack(frames, 1).numpy()


def test_animation_continues_the_first_frame_decoded_with_the_pg_vqgan(pipes):
    pipe = pipes["video"]
    first = image(64, 128, seed=3)
    result = pipe.animate([first], frames=4, seed=0, progress=False)
    [video] = result
    assert video.shape == (4, 64, 128, 3) and video.dtype == np.uint8
    assert torch.equal(result.tokens[0, 0], pipe.tokenizer.encode(first))
    plan = result.plan
    assert plan.num_given == 2 and result.stats["patches"] == 6
    # 4 frames, temporal extent 1: the pool slides in time, context never reaches 2 frames back
    assert max(d[0] for deltas in plan.deltas for d in deltas) == 1
    np.testing.assert_array_equal(
        video[None], reference_video(pipe, result.tokens, torch.from_numpy(first)[None])
    )
    plain = pipe.tokenizer.decode(result.tokens[0]).numpy()
    assert not np.array_equal(video[1:], plain[1:])  # the PG-VQGAN did guide the later frames


def test_text_to_video_first_frame_plain_later_frames_guided(pipes):
    pipe = pipes["video_text"]
    videos = pipe.text_to_video(
        ["a river", "a forest"], frames=3, width=64, height=64, seed=1, progress=False
    )
    assert [v.shape for v in videos] == [(3, 64, 64, 3)] * 2
    tokens = videos.tokens
    np.testing.assert_array_equal(np.stack(videos), reference_video(pipe, tokens, None))
    # frame 0 is decoded plainly (the same batch: convolution's last bits depend on batch size)
    np.testing.assert_array_equal(videos[0][0], pipe.tokenizer.decode(tokens[:, 0])[0].numpy())


def test_video_without_a_pg_vqgan_decodes_frames_independently(files):
    pipe = Pipeline.from_checkpoint(files["video"], files["tokenizer"])
    result = pipe.animate([image(64, 64)], frames=2, progress=False)
    [video] = result
    # one decode per frame: a two-frame batch may round one pixel differently (oneDNN blocking)
    frames = [pipe.tokenizer.decode(frame).numpy() for frame in result.tokens[0]]
    np.testing.assert_array_equal(video, np.stack(frames))


def test_streaming_canvas_decodes_a_tile_as_soon_as_its_window_is_complete(pipes):
    pipe = pipes["plain"]  # 64-px patches = tokenizer tiles, decoded with a 1-token margin
    grid = pipe.grid(192, 64)
    tokens = torch.randint(0, TOKENIZER_CODES, (1, 1, 4, 12))
    canvas = StreamingCanvas(pipe.tokenizer, tokens, pipe.layout, grid, known=[0])
    assert set(canvas.pending) == {(0, 0, 0), (0, 0, 1), (0, 0, 2)}
    canvas.add(1, pipe.layout.patch_tokens(tokens, grid, 1))
    assert set(canvas.pending) == {(0, 0, 1), (0, 0, 2)}  # tile 0 read patches 0 and 1 only
    canvas.add(2, pipe.layout.patch_tokens(tokens, grid, 2))
    np.testing.assert_array_equal(canvas.result(), decode_grid(pipe, tokens)[:, None])


def test_streaming_canvas_decodes_a_guided_frame_only_after_the_previous_frame(pipes):
    pipe = pipes["video"]
    grid = pipe.grid(128, 64, frames=2)
    tokens = torch.randint(0, TOKENIZER_CODES, (1, 2, 4, 8))
    canvas = StreamingCanvas(pipe.tokenizer, tokens, pipe.layout, grid, pg=pipe.pg_tokenizer)
    layout = pipe.layout
    for patch in (2, 3, 1):  # all of frame 1 but for frame 0's patch 0
        canvas.add(patch, layout.patch_tokens(tokens, grid, patch))
    assert {tile[0] for tile in canvas.pending} == {0, 1}  # frame 1 waits for frame 0
    canvas.add(0, layout.patch_tokens(tokens, grid, 0))
    np.testing.assert_array_equal(canvas.result(), reference_video(pipe, tokens, None))


# ---------------------------------------------------------------- warnings on odd requests


def test_image_models_on_video_warn_and_a_canvas_smaller_than_the_extent_does_not(pipes):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtentWarning)  # the context is the whole 1x1 canvas
        pipes["plain"].unconditional(1, 64, 64, progress=False)
    with pytest.warns(UserWarning, match="temporal extent 0"):
        pipes["plain"].animate([image(64, 64)], frames=2, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipes["plain"].unconditional(1, 192, 192, progress=False)  # 3x3 covers extent (1, 1)


def test_a_float64_pipeline_runs_every_stage_in_float64(files):
    """Encoding, sampling and (guided) decoding all follow ``Pipeline.to``; the given frame's
    tokens match the float32 encoding of the same image."""
    pipe = Pipeline.from_checkpoint(files["video"], files["tokenizer"], files["pg"])
    first = image(64, 128, seed=3)
    plain_tokens = pipe.tokenizer.encode(first)
    assert pipe.to(torch.float64) is pipe and pipe.dtype == torch.float64
    modules = (pipe.model, pipe.tokenizer, pipe.pg_tokenizer)
    assert {p.dtype for m in modules for p in m.parameters()} == {torch.float64}
    result = pipe.animate([first], frames=3, seed=0, progress=False)
    [video] = result
    assert video.shape == (3, 64, 128, 3) and video.dtype == np.uint8
    assert torch.equal(result.tokens[0, 0], plain_tokens)
    np.testing.assert_array_equal(
        video[None], reference_video(pipe, result.tokens, torch.from_numpy(first)[None])
    )
    with pytest.raises(ValueError, match="float32 or float64"):
        pipe.to(torch.bfloat16)
