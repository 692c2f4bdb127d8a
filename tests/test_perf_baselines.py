"""The perf baselines are what they claim to be: counted work, never wall-clock times."""

from __future__ import annotations

import torch
from test_model_exactness import one_thread, sharp_model  # noqa: F401 (autouse fixture)

from benchmarks.perf.canvas_scaling import measure
from benchmarks.perf.sampling_throughput import step_weights
from benchmarks.perf.sliding_window import sliding_window_sample, window_origin
from nuwa.adc import make_plan
from nuwa.layout import PatchGrid
from nuwa.model import Nuwa, preset
from nuwa.model.blocks import attention_probe
from nuwa.sampling import SamplerOptions, sample


def test_window_is_centred_and_clamped_to_the_canvas():
    assert [window_origin(p, 8, 32) for p in (0, 4, 10, 27, 31)] == [0, 0, 6, 23, 24]
    assert window_origin(5, 8, 8) == 0  # a canvas one window wide


def test_sliding_window_on_a_one_patch_canvas_is_the_ncp_sampler():
    """With the canvas exactly one window, every window pass sees what the cached decoder sees."""
    model = sharp_model()
    side = model.cfg.patch_size
    canvas = torch.zeros(2, side, side, dtype=torch.long)
    window = sliding_window_sample(model, canvas, side * side, top_k=None, temperature=0)
    plan = make_plan(PatchGrid(1, 1), (0, 0, 0))
    greedy = SamplerOptions(temperature=0, progress=False)
    ncp = sample(model, plan, batch_size=2, options=greedy).tokens
    assert torch.equal(window, ncp[:, 0])


def test_sliding_window_runs_a_full_window_for_every_token():
    model = Nuwa(preset("tiny")).eval()
    t, side = model.tokens_per_patch, model.cfg.patch_size
    canvas = torch.zeros(1, side, 3 * side, dtype=torch.long)
    with attention_probe() as calls:
        sliding_window_sample(model, canvas, 20)
    assert len(calls) == 20 * model.cfg.n_layer
    assert set(calls) == {(t + 1, t + 1)}  # BOS + the window, no cache, no context


def test_ncp_counts_stay_flat_with_width_and_full_context_counts_grow():
    t = Nuwa(preset("tiny")).tokens_per_patch
    runs = {
        (method, cols): measure("tiny", method, rows=1, cols=cols, min_patches=1)
        for method in ("ncp", "full_context")
        for cols in (2, 8)
    }
    narrow, wide = runs["ncp", 2], runs["ncp", 8]
    for key in ("keys_per_query_max", "pool_capacity", "pool_peak_occupancy", "cache_mb"):
        assert narrow[key] == wide[key], key
    assert wide["keys_per_query_max"] == t + t + 1  # tiny: e_w = 1 on a one-row canvas
    for cols in (2, 8):
        full = runs["full_context", cols]
        assert full["keys_per_query_max"] == (cols - 1) * t + t + 1
        assert full["pool_capacity"] == full["pool_peak_occupancy"] == cols


def test_roofline_multiplies_every_per_token_weight_once():
    for text, per_block in ((None, 4), ("clip-tiny", 6)):
        model = Nuwa(preset("tiny", text=text))
        weights = step_weights(model)
        assert len(weights) == model.cfg.n_layer * per_block + 1  # + the output head
        d, v = model.cfg.d_model, model.codebook_size
        assert weights[-1].shape == (v, d)
        assert all(w.shape[1] in (d, model.cfg.ff_mult * d) for w in weights)
