"""The scaling experiment: the training log counts FLOPs exactly, sizes are compared at equal
FLOPs, and a two-size run really trains (through nuwa-train) and reports both."""

from __future__ import annotations

import csv
import json

import pytest
from test_model_exactness import one_thread  # noqa: F401 (autouse: 1 thread on a shared CPU)
from test_train_transformer import shards  # noqa: F401 (the toy token shards)

from benchmarks.experiments import scaling
from nuwa.adc import make_plan
from nuwa.layout import PatchGrid
from nuwa.model.checkpoint import load_model
from nuwa.train.flops import plan_flops

pytestmark = pytest.mark.filterwarnings("ignore::nuwa.adc.ExtentWarning")


def test_sizes_name_their_depth_and_width_and_keep_heads_64_wide():
    size = scaling.SIZES["L4-d192"]
    assert (size.n_layer, size.d_model) == (4, 192)
    assert "model.arch.n_head=3" in size.overrides
    assert "model.arch.n_head=1" in scaling.SIZES["L2-d64"].overrides


def test_loss_at_a_budget_averages_the_logged_points_up_to_it():
    curve = {"train_flops": [1.0, 2.0, 3.0, 4.0], "loss": [8.0, 6.0, 4.0, 2.0]}
    assert scaling.loss_at(curve, 3.0, window=2) == 5.0
    assert scaling.loss_at(curve, 3.5, window=2) == 5.0  # the points logged by then
    assert scaling.loss_at(curve, 4.5) is None  # past the run's end
    assert scaling.loss_at(curve, 0.5) is None  # before its first point


def test_sizes_are_ranked_at_each_runs_final_budget():
    small = {"train_flops": 2.0, "curve": {"train_flops": [1.0, 2.0], "loss": [5.0, 4.0]}}
    large = {"train_flops": 4.0, "curve": {"train_flops": [2.0, 4.0], "loss": [4.6, 3.0]}}
    summary = scaling.summarise({"small": small, "large": large})
    assert list(summary["best_at_budget"].values()) == ["small", "large"]
    assert summary["train_loss_at_budget"]["4.000e+00"] == {"small": None, "large": 3.8}


def test_two_sizes_train_and_report_loss_against_flops(shards, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "scaling"
    argv = [
        "--shards", str(shards / "train"), "--val-shards", str(shards / "val"),
        "--sizes", "L2-d64,L3-d128", "--batches", "2", "--jobs", "1", "--out", str(out),
        "--", "model.batch_size=1", "model.canvas=[1,1]", "model.log_every=1",
        "+model.arch.codebook_size=64",
    ]  # fmt: skip
    assert scaling.main(argv) == 0
    summary = json.loads((out / "scaling.json").read_text())
    assert set(summary["runs"]) == {"L2-d64", "L3-d128"} and (out / "scaling.png").is_file()
    for name, run in summary["runs"].items():
        model = load_model(out / name / "model.safetensors")
        plan = make_plan(PatchGrid(1, 1), model.extent, "omega")
        per_batch = plan_flops(model.cfg, plan, loss="patch")  # batch 1, one plan of one patch
        assert run["curve"]["train_flops"] == pytest.approx([per_batch, 2 * per_batch])
        assert run["heldout_loss"] > 0
    larger = summary["runs"]["L3-d128"]
    assert larger["train_flops"] > summary["runs"]["L2-d64"]["train_flops"]
    assert larger["parameters"] > summary["runs"]["L2-d64"]["parameters"]
    assert "| L3-d128 |" in capsys.readouterr().out
    # a second call reuses the finished runs: it trains nothing and rewrites no weights
    weights = {
        name: (out / name / "model.safetensors").stat().st_mtime_ns for name in summary["runs"]
    }
    assert scaling.main(argv) == 0
    for name, mtime in weights.items():
        assert (out / name / "model.safetensors").stat().st_mtime_ns == mtime
        with open(out / name / "log.csv", newline="") as f:
            assert len(list(csv.DictReader(f))) == 2
    assert json.loads((out / "scaling.json").read_text())["runs"] == summary["runs"]


def test_missing_shards_and_unknown_sizes_are_one_line_errors(tmp_path, capsys):
    base = ["--shards", str(tmp_path), "--val-shards", str(tmp_path), "--out", str(tmp_path)]
    assert scaling.main([*base, "--sizes", "L9-d999"]) == 2
    assert "unknown size" in capsys.readouterr().err
    assert scaling.main(base) == 2
    assert "holds no token shards" in capsys.readouterr().err
