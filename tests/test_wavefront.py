"""Wavefront decoding: waves respect every plan dependency, the pool stays bounded in patches,
and the canvas equals step-by-step decoding byte for byte in float64.

The logits of wave decoding are checked against the training-mask oracle in
``test_model_exactness``; here the schedules themselves and the sampler end to end.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_model_plan import ALL_ORDERS, extents, grids, quiet_plan

from nuwa.adc import make_plan
from nuwa.layout import Layout, PatchGrid
from nuwa.model import Nuwa, preset
from nuwa.sampling import SamplerOptions, patch_uniforms, sample
from nuwa.schedule import MAX_WAVE, Schedule, sequential, wavefront


def check_schedule(schedule: Schedule) -> None:
    """Waves partition the steps, run after their context, and the pool (simulated in patches)
    never holds more than the capacity, holds every context patch while needed, ends empty."""
    plan = schedule.plan
    assert sorted(s for wave in schedule.waves for s in wave) == list(range(plan.num_steps))
    assert schedule.waves[: plan.num_given] == tuple((s,) for s in range(plan.num_given))
    live: set[int] = set()
    for wave, steps in enumerate(schedule.waves):
        for step in steps:
            for patch in plan.context[step]:
                assert schedule.wave_of[plan.step_of[patch]] < wave  # done in an earlier wave
                assert patch in live  # and still pooled
        live |= {plan.order[s] for s in steps}
        assert len(live) <= schedule.capacity
        live -= set(schedule.released[wave])
    assert not live


@settings(max_examples=80, deadline=None)
@given(grid=grids, extent=extents, order=st.sampled_from(ALL_ORDERS), data=st.data())
def test_waves_respect_every_plan_dependency_for_every_order_and_video(grid, extent, order, data):
    given_ids = data.draw(st.sets(st.integers(0, grid.num_patches - 1), max_size=grid.num_patches))
    plan = quiet_plan(grid, extent, order, given=given_ids)
    steps, fronts = sequential(plan), wavefront(plan)
    check_schedule(steps)
    check_schedule(fronts)
    assert steps.num_waves == plan.num_steps and steps.max_wave == 1
    # every generated step runs at the earliest depth its context allows, in waves of at most
    # MAX_WAVE: one depth per wave, depths ascending, only a depth's last wave not full
    depth: dict[int, int] = {}
    for step in range(plan.num_given, plan.num_steps):
        context = [plan.step_of[p] for p in plan.context[step]]
        depth[step] = 1 + max((depth[s] for s in context if s >= plan.num_given), default=-1)
    generated = fronts.waves[plan.num_given :]
    assert all(len({depth[s] for s in wave}) == 1 for wave in generated)
    depths = [depth[wave[0]] for wave in generated]
    assert depths == sorted(depths)
    for d in set(depths):
        sizes = [len(wave) for wave in generated if depth[wave[0]] == d]
        assert max(sizes) <= MAX_WAVE and all(size == MAX_WAVE for size in sizes[:-1])


@pytest.mark.parametrize(
    "rows, cols, extent, waves",
    [(8, 152, 1, 310), (8, 152, 2, 461), (8, 32, 2, 101), (1, 16, 2, 16), (4, 16, 2, 49)],
)
def test_omega_wave_counts_on_the_benchmark_canvases(rows, cols, extent, waves):
    """Under omega, patch (r, c) runs in wave r + (e_h + 1) c when the canvas has more than e_h
    rows (the paper's 8 x 152 canvas: 310 waves at extent 1 instead of 1,216 steps)."""
    plan = quiet_plan(PatchGrid(rows, cols), (extent, extent, 0), "omega")
    schedule = wavefront(plan)
    assert schedule.num_waves == waves
    for step, patch in enumerate(plan.order):
        _, r, c = plan.grid.coords(patch)
        assert schedule.wave_of[step] == (r + (extent + 1) * c if rows > extent else c)


def test_pool_capacity_in_patches_does_not_grow_with_width():
    narrow = wavefront(quiet_plan(PatchGrid(8, 8), (2, 2, 0), "omega"))
    wide = wavefront(quiet_plan(PatchGrid(8, 152), (2, 2, 0), "omega"))
    assert narrow.capacity == wide.capacity
    assert narrow.max_wave == wide.max_wave == 3
    # a front runs along a diagonal, so the pool holds e_w + 1 columns, not e_w and a part
    assert sequential(wide.plan).capacity == 2 * 8 + 2 + 1
    assert wide.capacity == (2 + 1) * 8


def test_a_plan_without_contexts_runs_in_bounded_waves():
    """The no-cache ablation: every patch could run at once; the pool stays at MAX_WAVE."""
    plan = quiet_plan(PatchGrid(8, 152), (2, 2, 0), "omega").without_context()
    schedule = wavefront(plan)
    check_schedule(schedule)
    assert schedule.max_wave == schedule.capacity == MAX_WAVE
    assert schedule.num_waves == -(-plan.num_steps // MAX_WAVE)
    small = wavefront(plan, max_wave=3)
    check_schedule(small)
    assert small.max_wave == small.capacity == 3


def float64_model(**overrides) -> Nuwa:
    torch.manual_seed(0)
    return Nuwa(preset("tiny", **overrides)).double().eval()


CASES = {
    "pre": {},
    "no-cache": {"use_context": False},
    "post": {"pos_emb": "post"},
    "none": {"pos_emb": "none"},
    "text+cfg": {"text": "clip-tiny"},
    "video": {"extent": (1, 1, 1)},
    "extent2": {"extent": (2, 2, 0)},
}


@pytest.mark.parametrize("case", CASES, ids=CASES.keys())
def test_wavefront_sampling_equals_sequential_byte_for_byte_in_float64(case):
    model = float64_model(**CASES[case])
    frames = 2 if model.extent.f else 1
    grid = PatchGrid(4, 5, frames)
    layout = Layout(model.cfg.patch_size)
    given_tokens = torch.randint(0, model.codebook_size, (2, *layout.token_shape(grid)))
    text = ["a lake", "two hills"] if model.text is not None else None
    for order, given_ids in [
        ("omega", ()),
        ("zeta_star", ()),
        ("spiral", (grid.patch_id(0, 1, 2),)),
        ("omega", grid.region(cols=slice(0, 2))),
    ]:
        plan = quiet_plan(grid, model.extent, order, given=given_ids)
        runs, finished = [], []
        for waves in (False, True):
            done: list[int] = []
            runs.append(
                sample(
                    model,
                    plan,
                    text=text,
                    given_tokens=given_tokens if given_ids else None,
                    batch_size=2,
                    options=SamplerOptions(
                        top_k=20,
                        cfg_scale=2.5 if text else 1.0,
                        seed=3,
                        wavefront=waves,
                        progress=False,
                    ),
                    on_patch=lambda patch, tokens, done=done: done.append(patch),
                )
            )
            finished.append(done)
        assert torch.equal(runs[0].tokens, runs[1].tokens), (case, order)
        assert sorted(finished[0]) == sorted(finished[1]) == sorted(plan.order[plan.num_given :])
        assert runs[1].waves < runs[0].waves == plan.num_steps
        for run in runs:
            assert run.peak_occupancy <= run.capacity


def test_a_patch_draws_from_its_own_stream():
    a = patch_uniforms(0, 5, (2, 16), "cpu")
    assert torch.equal(a, patch_uniforms(0, 5, (2, 16), "cpu"))
    assert not torch.equal(a, patch_uniforms(0, 6, (2, 16), "cpu"))
    assert not torch.equal(a, patch_uniforms(1, 5, (2, 16), "cpu"))
    assert a.dtype == torch.float64 and a.min() >= 0 and a.max() < 1


def test_wavefront_is_for_the_ar_decoder_and_off_by_default_for_the_others():
    model = Nuwa(preset("tiny", local_decoder="pnar")).eval()
    plan = make_plan(PatchGrid(2, 3), model.extent, "omega")
    with pytest.raises(ValueError, match="wavefront decoding runs the AR local decoder"):
        sample(model, plan, options=SamplerOptions(wavefront=True, progress=False))
    sampled = sample(model, plan, options=SamplerOptions(pnar_steps=2, progress=False))
    assert sampled.waves == plan.num_steps
