"""The pixel-arithmetic output checks: seam ratio, given-region MAE, consecutive-frame MAE."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.diagnostics.output_checks import frame_mae, main, region_mae, seam_ratio


def ramp(h: int, w: int) -> np.ndarray:
    """A smooth horizontal ramp with some texture: no line is special."""
    rng = np.random.default_rng(0)
    base = np.linspace(0, 200, w)[None, :, None] + rng.normal(0, 4, (h, w, 3))
    return np.clip(base, 0, 255).astype(np.uint8)[None]


def test_seam_ratio_is_one_on_a_seamless_image_and_rises_with_steps_at_the_period():
    image = ramp(256, 1024)
    assert seam_ratio(image, 256)[0] == pytest.approx(1.0, abs=0.15)
    stepped = image.astype(int)
    for start in range(256, 1024, 512):
        stepped[:, :, start : start + 256] += 25  # a step up at 256 and down at 512, ...
    stepped = np.clip(stepped, 0, 255).astype(np.uint8)
    assert seam_ratio(stepped, 256)[0] > 3.0
    assert seam_ratio(stepped, 256)[0] > seam_ratio(stepped, 128)[0] > 1.0  # half its lines


def test_seam_ratio_counts_row_boundaries_too_and_refuses_images_without_one():
    image = ramp(512, 256)
    stepped = image.astype(int)
    stepped[:, 256:] += 40
    assert seam_ratio(np.clip(stepped, 0, 255).astype(np.uint8), 256)[0] > 3.0
    with pytest.raises(ValueError, match="no 256-px boundary"):
        seam_ratio(ramp(128, 128), 256)


def test_seam_ratio_tells_vertical_lines_from_horizontal_ones():
    stepped = ramp(512, 512).astype(int)
    stepped[:, :, 256:] += 40  # one vertical seam: left and right halves do not meet
    stepped = np.clip(stepped, 0, 255).astype(np.uint8)
    assert seam_ratio(stepped, 256, "vertical")[0] > 3.0
    assert seam_ratio(stepped, 256, "horizontal")[0] == pytest.approx(1.0, abs=0.15)
    assert 1.0 < seam_ratio(stepped, 256)[0] < seam_ratio(stepped, 256, "vertical")[0]
    with pytest.raises(ValueError, match="no horizontal 256-px boundary"):
        seam_ratio(ramp(256, 512), 256, "horizontal")


def test_region_mae_and_frame_mae_are_plain_pixel_means():
    outputs = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    outputs[:, 2:6, 2:6] = 10
    inputs = np.full((2, 4, 4, 3), 10, dtype=np.uint8)
    np.testing.assert_array_equal(region_mae(outputs, inputs, (2, 2, 4, 4)), [0.0, 0.0])
    np.testing.assert_array_equal(region_mae(outputs, inputs, (0, 0, 4, 4)), [7.5, 7.5])
    video = np.zeros((1, 3, 4, 4, 3), dtype=np.uint8)
    video[0, 1] = 6
    np.testing.assert_array_equal(frame_mae(video), [6.0])


@pytest.fixture
def tiny_model(monkeypatch):
    """The checks on a tiny untrained image model (64-px patches), in seconds."""
    from benchmarks.diagnostics import output_checks
    from nuwa.model import Nuwa, preset
    from nuwa.pipeline import Pipeline
    from nuwa.tokenizer import build_vqgan

    pipe = Pipeline(Nuwa(preset("tiny")).eval(), build_vqgan("tiny").eval())
    monkeypatch.setattr(output_checks, "load_pipeline", lambda *args, **kwargs: pipe)


def test_the_checks_run_one_at_a_time_on_either_split_with_the_sampler_recorded(
    tiny_model, tmp_path, capsys
):
    argv = ["--n", "8", "--width", "512", "--height", "256"]
    reports = {}
    for split in ("test", "val"):
        out = tmp_path / split
        assert main([*argv, "--checks", "seams", "motion", "--split", split,
                     "--temperature", "0.7", "--out", str(out)]) == 0  # fmt: skip
        reports[split] = json.loads((out / "output_checks.json").read_text())
    test, val = reports["test"], reports["val"]
    assert "given_region" not in test and "seams" in test
    assert test["motion_skipped"].endswith("is an image model")
    assert test["sampler"] == {"temperature": 0.7} and val["split"] == "val"
    assert test["seams"]["real@256px"] != val["seams"]["real@256px"]  # other scenes
    assert "val split, n = 8, sampler: temperature 0.7" in capsys.readouterr().out
    greedy = tmp_path / "greedy"  # temperature 0 is a setting, not "unset"
    assert main([*argv, "--checks", "seams", "--temperature", "0", "--out", str(greedy)]) == 0
    assert json.loads((greedy / "output_checks.json").read_text())["sampler"] == {"temperature": 0}
    for bad in (["--top-k", "0"], ["--temperature", "-1"], ["--checks", "colour"]):
        with pytest.raises(SystemExit):
            main([*argv, *bad, "--out", str(tmp_path / "bad")])
