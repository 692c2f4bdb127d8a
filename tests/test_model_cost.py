"""Constant cost per patch: keys per query and pool occupancy do not grow with canvas width."""

from __future__ import annotations

import pytest
from test_model_exactness import one_thread  # noqa: F401 (autouse fixture)

from nuwa.adc import make_plan
from nuwa.layout import PatchGrid
from nuwa.model import Nuwa, preset
from nuwa.model.blocks import attention_probe
from nuwa.sampling import Sampled, SamplerOptions, sample


def sampling_cost(model: Nuwa, cols: int, wavefront: bool) -> tuple[int, Sampled]:
    """Most keys any query attended to, and the sampling's cost, for a 3 x ``cols`` omega
    canvas."""
    plan = make_plan(PatchGrid(3, cols), model.extent, "omega")
    with attention_probe() as calls:
        greedy = SamplerOptions(temperature=0, wavefront=wavefront, progress=False)
        sampled = sample(model, plan, options=greedy)
    assert all(queries == 1 for queries, _ in calls)  # one query per call: keys == keys attended
    return max(keys for _, keys in calls), sampled


@pytest.mark.parametrize("wavefront", [False, True], ids=["sequential", "wavefront"])
@pytest.mark.parametrize("extent", [(1, 1, 0), (2, 2, 0)], ids=str)
def test_keys_per_query_and_pool_occupancy_do_not_grow_with_width(extent, wavefront):
    model = Nuwa(preset("tiny", extent=extent)).eval()
    t = model.tokens_per_patch
    narrow_keys, narrow = sampling_cost(model, 4, wavefront)
    wide_keys, wide = sampling_cost(model, 64, wavefront)
    e_h, e_w, _ = extent
    interior_context = e_w * 3 + min(e_h, 2)  # omega, 3 rows: e_w full columns + the ones above
    assert narrow_keys == wide_keys == interior_context * t + t + 1  # context + BOS + own tokens
    assert narrow.peak_occupancy == wide.peak_occupancy == narrow.capacity == wide.capacity
    # patch (r, c) runs in wave r + (e_h + 1) c: two rows of three at once at e_h = 1, one at 2
    assert narrow.max_wave == wide.max_wave == (2 if wavefront and e_h == 1 else 1)
    # counted in patches: the live context of one interior patch, plus the patches in flight
    assert wide.capacity <= e_w * 3 + min(e_h, 2) + wide.max_wave
    assert narrow.cache_bytes == wide.cache_bytes
