"""Task runs end to end with a fake pipeline and tiny test-only extractors: the results file and
its schema, leaderboard rows, the sample grid, caching, resume after a kill, mixed metric ids."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from harness_fakes import ROOT, TINY_FEATURES, FakePipeline, register_tiny_extractors, run_fake

from benchmarks.harness.config import resolve_config
from benchmarks.harness.metrics import build_jobs, metric_name, task_metric_id
from benchmarks.harness.run import evaluate
from benchmarks.tasks import get_task
from leaderboard import (
    LeaderboardError,
    append_rows,
    import_paper,
    load_results,
    load_table,
    rows_from_results,
)

BLOCK_ONLY = ["metrics=[block_fid,block_fid_pooled]"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished lhqc_outpaint_up run (n=4, two batches) and its table."""
    root = tmp_path_factory.mktemp("run")
    table = root / "leaderboard.jsonl"
    import_paper(table)
    outcome, pipeline = run_again(root, table=table)
    return root, table, outcome, pipeline


def run_again(root, **changes):
    """The ``finished`` run on its output folder (no table), with ``changes`` to its options."""
    options = {"n": 4, "batch_size": 2, "table": None, "overrides": BLOCK_ONLY, **changes}
    return run_fake("lhqc_outpaint_up", root / "out", **options)


def test_results_file_follows_the_schema_and_records_provenance(finished):
    root, table, outcome, pipeline = finished
    results = load_results(outcome.path)  # validates against the leaderboard's results schema
    assert results["task"]["name"] == "lhqc_outpaint_up" and results["task"]["version"] == 3
    assert results["task"]["config"]["direction"] == "up"  # the full task definition
    run = results["config"]["run"]
    assert run["canvas"] == [512, 512] and run["n"] == 4 and run["batch_size"] == 2
    assert (
        results["dataset"]["name"] == "procedural-landscapes-v1"
        and results["dataset"]["n_real"] == 4
    )
    assert results["model"] == {
        "name": "fake-nuwa",
        "checkpoint": "fake",
        "checkpoint_sha256": results["model"]["checkpoint_sha256"],
        "setting": "without text",
    }
    assert (
        len(results["samples_sha256"]) == 64
        and results["seeds"]["procedural_first_seed"] == 2_000_000
    )
    assert {"torch", "numpy", "nuwa-infinity"} <= set(results["env"])
    assert results["config"]["torch_threads"] == torch.get_num_threads()
    assert set(results["wall_time_s"]) >= {"generation", "metrics", "total"}
    assert [m["base"] for m in results["metrics"]] == ["block_fid", "block_fid_pooled"]
    for metric in results["metrics"]:
        assert len(metric["id"]) == 64 and not metric["paper_comparable"]
        assert "surrogate" in metric["name"] and "512x512" in metric["name"]
        assert metric["config"]["task_inputs"]["measured"] == "generated region [0, 0, 256, 512]"
    assert len(pipeline.calls) == 2 and outcome.counts["batches_generated"] == 2
    grid = outcome.path.parent / results["artifacts"]["sample_grid"]
    assert grid.stat().st_size > 10_000


def test_run_appends_one_row_per_metric(finished):
    _, table, outcome, _ = finished
    ours = [row for row in load_table(table) if row.source == "ours"]
    assert [row.metric_base for row in ours] == ["block_fid", "block_fid_pooled"]
    assert all(
        row.dataset == "procedural-landscapes-v1" and not row.paper_comparable for row in ours
    )
    assert ours[0].paper_ref == "table3/NUWA-Infinity/without text"
    assert Path(ours[0].results_file).name == "results.json"


def test_a_finished_run_asked_again_recomputes_nothing(finished):
    root, table, outcome, _ = finished
    again, pipeline = run_again(root, table=table)
    assert again.reused and pipeline.calls == [] and again.rows_added == 0
    assert again.results == load_results(outcome.path)


def test_cached_samples_and_values_are_reused_by_a_new_run(finished):
    """Another run over the same samples (here: another leaderboard setting) generates and
    extracts nothing."""
    root, table, outcome, _ = finished
    other, pipeline = run_again(root, setting="cache check")
    assert pipeline.calls == [] and other.counts["batches_cached"] == 2
    assert other.counts["metric_jobs_computed"] == 0
    assert [m["value"] for m in other.results["metrics"]] == [
        m["value"] for m in outcome.results["metrics"]
    ]


def test_a_float64_run_generates_anew_in_float64_and_records_it(finished):
    root, _, outcome, _ = finished
    exact, pipeline = run_again(root, overrides=[*BLOCK_ONLY, "dtype=float64"])
    assert len(pipeline.calls) == 2 and exact.counts["batches_cached"] == 0
    assert pipeline.dtype == torch.float64 and exact.results["config"]["run"]["dtype"] == "float64"
    assert outcome.results["config"]["run"]["dtype"] == "float32"


def test_resume_after_kill_redoes_no_finished_batch(tmp_path):
    out, log = tmp_path / "out", tmp_path / "calls.jsonl"
    command = [
        sys.executable,
        str(ROOT / "tests" / "harness_fakes.py"),
        "lhqc_outpaint_up",
        "--out",
        str(out),
        "--num-samples",
        "8",
        "--batch-size",
        "2",
        "--call-log",
        str(log),
        "--delay",
        "1.0",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (
        not log.exists() or len(log.read_text().splitlines()) < 3
    ):
        assert process.poll() is None, "the run finished or crashed before it could be killed"
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)  # mid-generation: batch 2 is being sampled
    process.wait()
    finished_batches = sorted(
        json.loads(p.read_text())["info"]["seed"] for p in out.glob("cache/samples/*/*/done.json")
    )
    assert len(finished_batches) >= 2, "the first two batches were finished before the kill"

    resumed, pipeline = run_fake(
        "lhqc_outpaint_up", out, n=8, batch_size=2, table=None, overrides=BLOCK_ONLY
    )
    redone = [call["seed"] for call in pipeline.calls]
    assert len(redone) == 4 - len(finished_batches) and not set(redone) & set(finished_batches)

    fresh, _ = run_fake(
        "lhqc_outpaint_up", tmp_path / "fresh", n=8, batch_size=2, table=None, overrides=BLOCK_ONLY
    )
    assert resumed.results["samples_sha256"] == fresh.results["samples_sha256"]
    assert [m["value"] for m in resumed.results["metrics"]] == [
        m["value"] for m in fresh.results["metrics"]
    ]


def test_a_column_refuses_a_second_metric_id(finished, tmp_path):
    _, table, outcome, _ = finished
    row = rows_from_results(outcome.results, outcome.path)[0]
    changed = replace(row, metric_id="f" * 64, created="2099-01-01T00:00:00Z")
    with pytest.raises(LeaderboardError, match="mixes metric ids"):
        append_rows([changed], table)
    # A run that would write such a row stops before generating anything.
    clash = tmp_path / "clash.jsonl"
    clash.write_text(table.read_text().replace(row.metric_id, "e" * 64))
    register_tiny_extractors()
    spec = get_task("lhqc_outpaint_up")
    config = resolve_config(
        spec, data="procedural", n=4, batch_size=2, overrides=TINY_FEATURES + BLOCK_ONLY
    )
    pipeline = FakePipeline()
    with pytest.raises(LeaderboardError, match="mixes metric ids"):
        evaluate(spec, config, pipeline, out=tmp_path / "out", table=clash, progress=False)
    assert pipeline.calls == []


def test_canvas_sizes_get_their_own_names_and_ids():
    register_tiny_extractors()
    spec = get_task("lhqc_outpaint_up")
    small = resolve_config(spec, data="procedural", overrides=TINY_FEATURES)
    large = resolve_config(spec, data="/lhq", overrides=TINY_FEATURES)
    jobs = [build_jobs(c, 8, Path("/unused"), "cpu")[0] for c in (small, large)]
    names = {metric_name(job, "block_fid") for job in jobs}
    ids = {task_metric_id(job, "block_fid").digest for job in jobs}
    assert len(names) == len(ids) == 2


def test_text_to_image_with_x4_reports_every_table2_metric(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "benchmarks.harness.metrics.BOOTSTRAP_REPLICATES", 20
    )  # SWD's cost 200 times
    outcome, pipeline = run_fake(
        "lhqc_t2i", tmp_path, n=10, batch_size=5, table=None, overrides=["canvas=[256,256]"]
    )
    values = {m["base"]: m for m in outcome.results["metrics"]}
    assert list(values) == [
        "block_fid", "block_fid_pooled", "is", "clip_sim", "swd", "attr_agree",
        "attr_agree_shuffled", "layout",
    ]  # fmt: skip
    assert "landscape_net.procedural_v1@1" in values["attr_agree"]["name"]
    for metric in values.values():  # n=10: every metric has its interval
        assert metric["interval"]["replicates"] == 20
        assert metric["interval"]["low"] <= metric["value"] <= metric["interval"]["high"]
    outcome_x4, _ = run_fake(
        "lhqc_t2i",
        tmp_path,
        n=10,
        batch_size=5,
        table=None,
        overrides=["canvas=[256,256]", "x4=true", "metrics=[block_fid,block_fid_x4]"],
    )
    x4 = {m["base"]: m for m in outcome_x4.results["metrics"]}
    assert (
        "256x1024" in x4["block_fid_x4"]["name"]
        and x4["block_fid"]["value"] == values["block_fid"]["value"]
    )
    assert x4["block_fid_x4"]["interval"]["replicates"] == 20  # pooled, canvases resampled
    assert outcome.results["model"]["setting"] == "canvas=[256,256]"
    # 10 samples in the protocol's 10 splits: one image per split, whose KL to its own marginal
    # is 0, so IS is exactly 1 (one split over all 10 would be above 1)
    assert values["is"]["better"] == "higher" and values["is"]["value"] == pytest.approx(1.0)


@pytest.mark.parametrize("task", ["lhqv_animate", "landscape_t2v"])
def test_video_tasks_report_fvd_and_motion_fd(tmp_path, task):
    outcome, pipeline = run_fake(
        task, tmp_path, n=4, batch_size=2, table=None, overrides=["frames=9"]
    )
    bases = [m["base"] for m in outcome.results["metrics"]]
    expected = ["fvd"] if task == "lhqv_animate" else ["fvd", "clip_sim"]
    assert bases == [*expected, "motion_fd"]
    assert (
        outcome.results["dataset"]["name"] == "procedural-pan-videos-v1"
        and len(pipeline.calls) == 2
    )


def test_cli_without_data_stops_with_one_line(tmp_path, capsys, monkeypatch):
    from benchmarks.cli import main

    monkeypatch.setenv("NUWA_DATA_DIR", str(tmp_path))
    assert main(["lhqc-outpaint", "--direction", "up"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--data procedural" in error


def test_video_task_reads_a_folder_of_real_clips(tmp_path):
    from nuwa.data import render_pan_video
    from nuwa.data.video import write_mp4

    folder = tmp_path / "clips"
    folder.mkdir()
    captions = []
    for seed in range(2):
        video = render_pan_video(seed, 256, 256, 4)
        write_mp4(folder / f"clip{seed}.mp4", video.frames)
        captions.append({"file_name": f"clip{seed}.mp4", "text": video.caption})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(c) + "\n" for c in captions))
    outcome, pipeline = run_fake(
        "landscape_t2v",
        tmp_path / "out",
        n=2,
        batch_size=2,
        table=None,
        overrides=["frames=4", "canvas=[256,256]"],
        data=str(folder),
    )
    assert outcome.results["dataset"]["name"] == "video-folder:clips"
    assert [m["base"] for m in outcome.results["metrics"]] == ["fvd", "clip_sim"]
    assert pipeline.calls[0]["method"] == "text_to_video"


def test_image_task_reads_an_lhq_folder_as_lhqc_repro(tmp_path):
    from PIL import Image

    from nuwa.data import render_landscape
    from nuwa.data.splits import split_indices

    folder = tmp_path / "lhq_1024"
    folder.mkdir()
    for index in split_indices()["test"][:2]:
        Image.fromarray(render_landscape(index, 512, 512).image).save(folder / f"{index:07d}.png")
    outcome, _ = run_fake(
        "lhqc_outpaint_up",
        tmp_path / "out",
        n=2,
        batch_size=2,
        table=None,
        overrides=["canvas=[512,512]", *BLOCK_ONLY],
        data=str(folder),
    )
    results = outcome.results
    assert results["dataset"]["name"] == "lhqc-repro-v1" and results["dataset"]["n_real"] == 2
    assert results["config"]["run"]["profile"] == "real"
    assert not any(m["paper_comparable"] for m in results["metrics"])
    assert "canvas=[512,512]" in results["model"]["setting"]


def test_models_that_cannot_do_the_task_are_refused(tmp_path):
    from types import SimpleNamespace

    from benchmarks.tasks import TaskError

    register_tiny_extractors()
    no_text = FakePipeline()
    no_text.text_conditioned = False
    image_model = FakePipeline()
    image_model.model = SimpleNamespace(extent=SimpleNamespace(h=2, w=2, f=0))
    for task, pipeline, message in (
        ("lhqc_t2i", no_text, "needs a text-conditioned model"),
        ("lhqv_animate", image_model, "needs a video model"),
    ):
        spec = get_task(task)
        config = resolve_config(spec, data="procedural", overrides=TINY_FEATURES)
        with pytest.raises(TaskError, match=message):
            evaluate(spec, config, pipeline, out=tmp_path, progress=False)
        assert pipeline.calls == []


def test_the_real_pipeline_runs_through_the_harness(tmp_path):
    """A tiny random nuwa.pipeline.Pipeline (not the fake) through evaluate: the API contract."""
    from nuwa.model import Nuwa, preset
    from nuwa.pipeline import Pipeline
    from nuwa.tokenizer import build_vqgan

    pipeline = Pipeline(Nuwa(preset("tiny")).eval(), build_vqgan("tiny").eval(), model_id="tiny@0")
    spec = get_task("lhqc_outpaint_left")
    config = resolve_config(
        spec, data="procedural", n=2, batch_size=2, overrides=["canvas=[128,128]", "metrics=[swd]"]
    )
    outcome = evaluate(spec, config, pipeline, out=tmp_path, progress=False)
    [swd] = outcome.results["metrics"]
    assert swd["base"] == "swd" and swd["value"] > 0
    assert outcome.results["model"]["name"] == "tiny" and outcome.counts["batches_generated"] == 1
