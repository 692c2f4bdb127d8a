"""ADC.Split plans and canvas geometry: orders, contexts, bad input (pool lifetimes: schedules)."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nuwa.adc import ORDERS, Extent, ExtentWarning, make_plan, order_patches
from nuwa.layout import Layout, PatchGrid
from nuwa.schedule import sequential

ALL_ORDERS = (*ORDERS, "spiral")


def quiet_plan(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtentWarning)
        return make_plan(*args, **kwargs)


grids = st.builds(PatchGrid, st.integers(1, 5), st.integers(1, 7), st.integers(1, 3))
extents = st.builds(Extent, st.integers(0, 3), st.integers(0, 3), st.integers(0, 2))


@settings(max_examples=60, deadline=None)
@given(grid=grids, extent=extents, order=st.sampled_from(ALL_ORDERS), data=st.data())
def test_plan_invariants(grid, extent, order, data):
    given_ids = data.draw(st.sets(st.integers(0, grid.num_patches - 1), max_size=grid.num_patches))
    plan = quiet_plan(grid, extent, order, given=given_ids)
    # every order is a permutation of the grid, with the given patches first
    assert sorted(plan.order) == list(range(grid.num_patches))
    assert set(plan.order[: plan.num_given]) == given_ids
    for step, patch in enumerate(plan.order):
        f, r, c = grid.coords(patch)
        for q, (df, dr, dc) in zip(plan.context[step], plan.deltas[step], strict=True):
            # every context patch was processed earlier (given or generated)
            assert plan.step_of[q] < step
            qf, qr, qc = grid.coords(q)
            assert (df, dr, dc) == (f - qf, qr - r, qc - c)
            assert 0 <= df <= extent.f and abs(dr) <= extent.h and abs(dc) <= extent.w
        # the context is *every* earlier patch inside the extent, nothing less
        inside = {
            q
            for q in plan.order[:step]
            if 0 <= f - grid.coords(q)[0] <= extent.f
            and abs(grid.coords(q)[1] - r) <= extent.h
            and abs(grid.coords(q)[2] - c) <= extent.w
        }
        assert set(plan.context[step]) == inside


def test_basic_orders_on_a_video():
    grid = PatchGrid(rows=2, cols=3, frames=2)
    assert order_patches(grid, "omega")[:6] == [0, 3, 1, 4, 2, 5]
    assert order_patches(grid, "omega_star")[:6] == [2, 5, 1, 4, 0, 3]
    assert order_patches(grid, "zeta")[:6] == [0, 1, 2, 3, 4, 5]
    assert order_patches(grid, "zeta_star")[:6] == [3, 4, 5, 0, 1, 2]
    for order in ORDERS:  # frames outermost
        assert sorted(order_patches(grid, order)[6:]) == list(range(6, 12))


def test_paper_fig6_context_example():
    """Paper Fig. 6: 3x3x3 grid, omega, extent (1,1,1): patch 14 (frame 2 centre) sees 1-13."""
    grid = PatchGrid(3, 3, 3)
    plan = make_plan(grid, Extent(1, 1, 1), "omega")
    step = 13  # the 14th patch in omega order is frame 1's centre
    assert grid.coords(plan.order[step]) == (1, 1, 1)
    assert sorted(plan.step_of[q] for q in plan.context[step]) == list(range(13))


def test_spiral_grows_rings_around_the_given_region():
    grid = PatchGrid(5, 5)
    centre = grid.patch_id(0, 2, 2)
    plan = make_plan(grid, Extent(1, 1, 0), "spiral", given=[centre])
    rings = [max(abs(grid.coords(p)[1] - 2), abs(grid.coords(p)[2] - 2)) for p in plan.order]
    assert rings == sorted(rings) and plan.order[0] == centre
    assert grid.coords(plan.order[1]) == (0, 1, 2)  # starts straight above
    assert all(plan.context[s] for s in range(1, plan.num_steps))  # every new patch has a neighbour


def test_outpainting_order_and_capacity_do_not_grow_with_width():
    narrow = make_plan(
        PatchGrid(3, 4), Extent(2, 2, 0), "omega", given=PatchGrid(3, 4).region(cols=slice(0, 2))
    )
    wide = make_plan(PatchGrid(3, 64), Extent(2, 2, 0), "omega")
    assert narrow.num_given == 6 and narrow.order[:6] == (0, 4, 8, 1, 5, 9)
    assert sequential(wide).capacity == sequential(narrow).capacity == 2 * 3 + 2 + 1
    raster = make_plan(PatchGrid(3, 64), Extent(2, 2, 0), "zeta")
    assert sequential(raster).capacity > 64  # raster keeps two full rows: the order sets memory


def test_bad_inputs():
    layout = Layout(patch_size=16, downsample=16)
    assert layout.grid_for_pixels(1024, 4096) == PatchGrid(4, 16)
    with pytest.raises(ValueError, match="not a positive multiple of the patch size 256 px"):
        layout.grid_for_pixels(1000, 1024)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        layout.grid_for_tokens(64, 60)
    with pytest.warns(ExtentWarning, match="reaches past"):
        make_plan(PatchGrid(2, 2), Extent(2, 2, 0))
    with pytest.raises(ValueError, match=">= 0"):
        Extent(-1, 1, 0)
    with pytest.raises(ValueError, match="unknown order"):
        make_plan(PatchGrid(2, 2), Extent(1, 1, 0), "snake")
    with pytest.raises(ValueError, match="given patches first"):
        make_plan(PatchGrid(1, 3), Extent(1, 1, 0), [0, 1, 2], given=[2])
    with pytest.raises(ValueError, match="permutation"):
        make_plan(PatchGrid(1, 3), Extent(1, 1, 0), [0, 1, 1])


def test_patchify_roundtrip_and_patch_access():
    layout = Layout(patch_size=4)
    grid = PatchGrid(2, 3, 2)
    tokens = torch.arange(2 * 2 * 8 * 12).view(2, 2, 8, 12)
    patches = layout.patchify(tokens)
    assert patches.shape == (2, 12, 16)
    assert torch.equal(layout.unpatchify(patches, grid), tokens)
    pid = grid.patch_id(1, 1, 2)
    assert torch.equal(layout.patch_tokens(tokens, grid, pid), patches[:, pid])
    canvas = torch.zeros_like(tokens)
    layout.write_patch(canvas, grid, pid, patches[:, pid])
    assert torch.equal(layout.patchify(canvas)[:, pid], patches[:, pid])
    assert layout.pixel_box(grid, pid) == (1, 64, 128, 128, 192)


def test_adc_emb_rows_follow_paper_fig5_and_the_plan_deltas_point_from_patch_to_context():
    """Pins the offset -> ADC.Emb row mapping a checkpoint's tables were trained with: rows run
    frame-major (0 = this frame), then drow = -h..h, then dcol = -w..w (Fig. 5's a..r)."""
    extent = Extent(1, 1, 1)
    rows = [
        (df, dr, dc) for df in range(2) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
    ]  # a, b, ..., r
    assert [extent.offset_index(*offset) for offset in rows] == list(range(18))
    assert extent.centre == 4 and extent.offset_index(0, 0, -1) == 3  # left neighbour: row d
    grid = PatchGrid(rows=2, cols=2, frames=1)
    plan = make_plan(grid, Extent(1, 1, 0), "zeta")  # row by row: (0,0), (0,1), (1,0), (1,1)
    last = plan.order.index(grid.patch_id(0, 1, 1))
    by_context = dict(zip(plan.context[last], plan.deltas[last], strict=True))
    assert by_context[grid.patch_id(0, 1, 0)] == (0, 0, -1)  # to its left: dcol = -1
    assert by_context[grid.patch_id(0, 0, 1)] == (0, -1, 0)  # above it: drow = -1
    assert by_context[grid.patch_id(0, 0, 0)] == (0, -1, -1)
