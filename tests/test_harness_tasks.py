"""Task definitions: the registry, pinned definitions per version, outpainting regions per
direction (against the real pipeline's generated mask), config resolution and the data rule."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.harness.config import (
    generated_px,
    outpaint_regions,
    resolve_config,
    run_setting,
)
from benchmarks.harness.data import choose_data
from benchmarks.harness.metrics import check_metrics
from benchmarks.tasks import DIRECTIONS, TaskError, get_task, list_tasks

# A changed definition needs a version bump and a changelog line; then update its hash here.
PINNED = {
    "landscape_t2v@4": "d3f75a3185151a2366d36c46ad984445ca7999468193e651133423c752db93ee",
    "lhqc_outpaint_down@3": "8ef6a38c88f9bed6d16bcd0bb15e73b876e3ed74e4732048a525bdea95c22c7f",
    "lhqc_outpaint_left@3": "87c268ecda43f6effa0890a05633f11c94a4e6ad6083c076313bd749f0f13ef7",
    "lhqc_outpaint_right@3": "62386b691dd04fc670846e7a2e6941ec6caa86ee04057420a7d89eb61db71ebe",
    "lhqc_outpaint_up@3": "0ab4a201849f96d89321f39908ad47820818c56f74a893f907f54f80523e9b19",
    "lhqc_t2i@5": "b6eab4e32674cc62d8469a213258f1640f1d1cf9e3ce469d2d7709e2b69b213b",
    "lhqv_animate@4": "7932d74219c1e72453fd45028bac49b6a216afc5d5c12cbf36b51dcab373feb5",
}


def test_every_task_is_pinned_at_its_version():
    digests = {spec.label: spec.digest() for spec in list_tasks()}
    assert digests == PINNED, "a task definition changed: bump its version, add a changelog line"


def test_paper_tasks_use_the_paper_geometry_on_real_data():
    for direction in DIRECTIONS:
        spec = get_task(f"lhqc_outpaint_{direction}@3")
        assert spec.paper_table == "table3" and spec.real.canvas == [1024, 1024]
        assert spec.real.n == 5000 and spec.metrics[0] == "block_fid"
    t2i = get_task("lhqc_t2i")
    assert t2i.x4_metrics == ["block_fid_x4"] and {"is", "clip_sim"} <= set(t2i.metrics)
    assert get_task("lhqv_animate").metrics == ["fvd"]


def test_sampler_and_given_region_defaults_are_the_papers_since_the_version_bumps():
    """v2/v3: top-k at the paper's fraction of the codebook (48 of 1024) everywhere, and
    outpainting measures outputs that keep the input's pixels; v3/v4: per-patch streams."""
    for spec in list_tasks():
        assert spec.sampler.top_k is None and spec.sampler.top_k_fraction == 768 / 16384
        assert spec.version == {"outpaint": 3, "t2i": 5}.get(spec.kind, 4)  # t2i v5: layout
        streams = spec.version if spec.kind != "t2i" else 4  # the version that brought them
        assert "top-k at its fraction" in spec.changelog[streams - 2]
        assert "per-patch random streams" in spec.changelog[streams - 1]
        assert spec.kind != "outpaint" or spec.keep_input


def test_unknown_task_and_version_are_one_line_errors():
    with pytest.raises(TaskError, match="unknown task 'lhqc_nope'"):
        get_task("lhqc_nope")
    with pytest.raises(TaskError, match="defines lhqc_t2i@5"):
        get_task("lhqc_t2i@4")


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_given_and_generated_halves_partition_the_canvas(direction):
    height, width = 512, 768
    given, generated = outpaint_regions(direction, height, width)
    given_mask, generated_mask = (
        given.mask(height, width),
        generated.mask(height, width),
    )
    assert not (given_mask & generated_mask).any() and (given_mask | generated_mask).all()
    assert given_mask.sum() == generated_mask.sum() == height * width // 2
    amount = generated_px(direction, height, width)
    assert amount == (generated.height if direction in ("up", "down") else generated.width)
    # The paper's names: "up" generates the upper half from the lower one, and so on.
    side = {"up": (0, 0), "down": (height // 2, 0), "left": (0, 0), "right": (0, width // 2)}
    assert (generated.top, generated.left) == side[direction]


@pytest.fixture(scope="module")
def tiny_pipeline():
    from nuwa.model import Nuwa, preset
    from nuwa.pipeline import Pipeline
    from nuwa.tokenizer import build_vqgan

    return Pipeline(Nuwa(preset("tiny")).eval(), build_vqgan("tiny").eval())


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_real_pipeline_generates_exactly_the_task_region(tiny_pipeline, direction):
    """Outpainting the task's given half gives the task's canvas, and the pipeline's own
    generated mask is the task's generated half."""
    import nuwa.pipeline

    side = 2 * tiny_pipeline.patch_px  # a 2x2-patch canvas
    given, generated = outpaint_regions(direction, side, side)
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    half = np.ascontiguousarray(
        image[given.top : given.top + given.height, given.left : given.left + given.width]
    )
    amount = generated_px(direction, side, side)
    result = tiny_pipeline.outpaint(
        [half], direction=direction, amount_px=amount, seed=0, progress=False
    )
    assert result[0].shape == (side, side, 3)
    np.testing.assert_array_equal(result.generated_mask, generated.mask(side, side))
    assert result.given_region == tuple(given.as_list())
    box = nuwa.pipeline.generated_region(direction, given.height, given.width, amount)
    assert box == tuple(generated.as_list())


def test_config_profiles_overrides_and_setting():
    spec = get_task("lhqc_outpaint_up")
    procedural = resolve_config(spec, data="procedural")
    assert procedural.canvas == [512, 512] and procedural.profile == "procedural"
    real = resolve_config(spec, data="/data/lhq_1024", n=100, text=True)
    assert real.canvas == [1024, 1024] and real.n == 100 and run_setting(real) == "with text"
    tuned = resolve_config(spec, data="procedural", overrides=["sampler.top_k=48", "batch_size=2"])
    assert tuned.sampler.top_k == 48 and tuned.batch_size == 2
    assert run_setting(tuned) == "without text; sampler.top_k=48"  # batch size changes nothing
    for bad in ("sampler.top_k=many", "version=2", "nonsense=1", "no-equals-sign"):
        with pytest.raises(TaskError):
            resolve_config(spec, data="procedural", overrides=[bad])
    with pytest.raises(TaskError, match="is needs n >= 10"):
        check_metrics(resolve_config(get_task("lhqc_t2i"), data="procedural", n=4))
    exact = resolve_config(spec, data="procedural", overrides=["dtype=float64"])
    assert exact.dtype == "float64" and run_setting(exact) == "without text"
    with pytest.raises(TaskError, match="dtype must be one of"):
        resolve_config(spec, data="procedural", overrides=["dtype=float16"])


def test_lhqc_tasks_stop_without_data_and_say_how_to_use_the_embedded_set(tmp_path, monkeypatch):
    monkeypatch.setenv("NUWA_DATA_DIR", str(tmp_path))
    spec = get_task("lhqc_outpaint_up")
    with pytest.raises(TaskError) as error:
        choose_data(spec, None)
    message = str(error.value)
    assert "\n" not in message and str(tmp_path / "lhq_1024") in message
    assert "--data procedural" in message
    (tmp_path / "lhq_1024").mkdir()
    assert choose_data(spec, None) == str(tmp_path / "lhq_1024")
    assert choose_data(spec, "procedural") == "procedural"
