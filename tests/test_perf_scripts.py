"""The perf scripts run end to end on the tiny preset and the runner reads back their goals."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from test_model_exactness import one_thread  # noqa: F401 (autouse fixture)

from benchmarks.perf import canvas_scaling, runner, sampling_throughput, sliding_window


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("perf")
    common = ["--preset", "tiny", "--device", "cpu", "--out-dir", str(out)]
    canvas_scaling.main([*common, "--widths", "2", "4", "--min-patches", "2", "--in-process"])
    sampling_throughput.main([*common, "--batch-sizes", "1", "2", "--quick"])
    sliding_window.main([*common, "--batch-sizes", "1", "8", "--quick"])
    return out


def test_each_script_writes_json_and_png(results):
    for name in ("canvas_scaling", "sampling_throughput", "sliding_window"):
        assert json.loads((results / f"{name}.json").read_text())["preset"] == "tiny"
        assert (results / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    widths = json.loads((results / "canvas_scaling.json").read_text())["widths"]
    assert [w["cols"] for w in widths] == [2, 4]
    assert widths[0]["ncp"]["keys_per_query_max"] == widths[1]["ncp"]["keys_per_query_max"]
    assert (
        widths[0]["full_context"]["keys_per_query_max"]
        < widths[1]["full_context"]["keys_per_query_max"]
    )


def test_runner_reads_goals_of_the_scripts_that_ran(results):
    rows = runner.goals(results, "tiny")
    names = [r["goal"] for r in rows]
    assert names[:2] == ["NCP ms/patch, 4 vs 2 cols (x)", "NCP peak_rss_mb, 4 vs 2 cols (x)"]
    assert "NCP over sliding window, batch 8 (x)" in names  # batch 1 has no goal
    assert sum(n.startswith("sampling / weight roofline") for n in names) == 2
    assert not any("training" in n or "feature" in n for n in names)  # not run here
    assert all(isinstance(r["met"], bool) for r in rows)


def test_runner_command_lines():
    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    args = parser.parse_args(["--quick", "--threads", "1", "--out-dir", "o", "--device", "cpu"])
    scripts = runner.scripts("small")
    canvas = runner.command(scripts["canvas_scaling"], args, Path("o"))
    assert canvas[1:3] == ["-m", "benchmarks.perf.canvas_scaling"]
    assert canvas[3:] == [
        "--out-dir",
        "o",
        "--device",
        "cpu",
        "--preset",
        "small",
        "--threads",
        "1",
        "--quick",
    ]
    metric = runner.command(scripts["metric_throughput"], args, Path("o"))
    assert "--out" in metric and "--device" not in metric and "--threads" not in metric
