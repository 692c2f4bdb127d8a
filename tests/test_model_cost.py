"""Constant cost per patch: keys per query and pool occupancy do not grow with canvas width."""

from __future__ import annotations

import pytest
from test_model_exactness import one_thread  # noqa: F401 (autouse fixture)

from nuwa.adc import make_plan
from nuwa.layout import PatchGrid
from nuwa.model import Nuwa, preset
from nuwa.model.blocks import attention_probe
from nuwa.sampling import sample


def sampling_cost(model: Nuwa, cols: int) -> tuple[int, dict]:
    """Most keys any query attended to, and the pool stats, for a 3 x ``cols`` omega canvas."""
    plan = make_plan(PatchGrid(3, cols), model.extent, "omega")
    stats: dict = {}
    with attention_probe() as calls:
        sample(model, plan, temperature=0, progress=False, stats=stats)
    assert all(queries == 1 for queries, _ in calls)  # one query per call: keys == keys attended
    return max(keys for _, keys in calls), stats


@pytest.mark.parametrize("extent", [(1, 1, 0), (2, 2, 0)], ids=str)
def test_keys_per_query_and_pool_occupancy_do_not_grow_with_width(extent):
    model = Nuwa(preset("tiny", extent=extent)).eval()
    t = model.tokens_per_patch
    narrow_keys, narrow = sampling_cost(model, 4)
    wide_keys, wide = sampling_cost(model, 64)
    e_h, e_w, _ = extent
    interior_context = e_w * 3 + min(e_h, 2)  # omega, 3 rows: e_w full columns + the ones above
    assert narrow_keys == wide_keys == interior_context * t + t + 1  # context + BOS + own tokens
    assert (
        narrow["peak_occupancy"] == wide["peak_occupancy"] == narrow["capacity"] == wide["capacity"]
    )
    assert wide["capacity"] == e_w * 3 + min(e_h, 2) + 1
    assert narrow["cache_bytes"] == wide["cache_bytes"]
