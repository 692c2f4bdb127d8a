"""The layout proxy: what the row-profile L1 rewards, and the benchmark run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_model_exactness import one_thread  # noqa: F401 (autouse fixture)

from benchmarks.diagnostics import layout_score
from benchmarks.harness.config import Region
from nuwa.data.landscapes import render_landscape
from nuwa.outpainting import SIDES


def test_row_profile_l1_scores_layout_not_horizontal_placement():
    scene = render_landscape(2_000_000, 256, 256).image[None]
    assert layout_score.row_profile_l1(scene, scene) == 0
    # the same rows in another horizontal order keep every row's mean colour
    shifted = np.roll(scene, 97, axis=2)
    np.testing.assert_allclose(layout_score.row_profile_l1(shifted, scene), 0, atol=1e-9)
    # ground above sky: the layout the proxy is meant to catch
    upside_down = scene[:, ::-1]
    assert layout_score.row_profile_l1(upside_down, scene)[0] > 20


def test_score_references_are_perfect_and_chance():
    scenes = np.stack([render_landscape(2_000_000 + i, 256, 256).image for i in range(3)])
    bottom = Region(128, 0, 128, 256)
    scores = layout_score.score(scenes, scenes, bottom, reconstructed=scenes)
    assert scores["model"]["mean"] == scores["reconstruction"]["mean"] == 0
    assert scores["shuffled_scene"]["mean"] > 0


def test_benchmark_runs_on_the_bundled_model(tmp_path, capsys):
    out = tmp_path / "layout.json"
    results = layout_score.main(["--n", "2", "--size", "256", "--out", str(out)])
    assert json.loads(out.read_text()) == results
    for task in (*SIDES, "text_to_image"):
        assert set(results[task]) == {"model", "shuffled_scene", "reconstruction"}
        assert all(np.isfinite(r["mean"]) and r["mean"] >= 0 for r in results[task].values())
    assert "text_to_image" in capsys.readouterr().out


def test_bad_checkpoint_is_a_usage_error_not_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        missing = str(tmp_path / "missing.safetensors")
        layout_score.main(["--checkpoint", missing, "--tokenizer", "t"])
    assert exit_info.value.code == 2
    assert "checkpoint not found" in capsys.readouterr().err
