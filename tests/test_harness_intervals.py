"""Bootstrap intervals through the harness: recorded per metric in the results JSON, carried into
leaderboard rows, printed beside the value, kept by the value cache, and explained when a run is
too small for one."""

from __future__ import annotations

from harness_fakes import run_fake

from benchmarks.harness.metrics import BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED
from benchmarks.harness.report import format_outcome
from leaderboard import load_results, rows_from_results

BLOCK_ONLY = ["metrics=[block_fid,block_fid_pooled]"]


def test_a_run_of_eight_records_prints_and_caches_its_intervals(tmp_path):
    outcome, _ = run_fake(
        "lhqc_outpaint_up", tmp_path, n=8, batch_size=4, table=None, overrides=BLOCK_ONLY
    )
    metrics = load_results(outcome.path)["metrics"]
    assert [m["base"] for m in metrics] == ["block_fid", "block_fid_pooled"]
    for metric in metrics:
        interval = metric["interval"]
        assert (interval["replicates"], interval["seed"]) == (BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED)
        assert interval["level"] == 0.95 and interval["method"] == "percentile, bias-shifted"
        assert interval["low"] <= metric["value"] <= interval["high"]
        assert "no_interval" not in metric
    rows = rows_from_results(outcome.results, outcome.path)
    assert [(r.ci_low, r.ci_high) for r in rows] == [
        (m["interval"]["low"], m["interval"]["high"]) for m in metrics
    ]
    printed = format_outcome(outcome, None)
    assert "95% interval" in printed.splitlines()[1]
    low, high = metrics[0]["interval"]["low"], metrics[0]["interval"]["high"]
    assert f"{metrics[0]['value']:>10.4f}  [{low:.4f}, {high:.4f}]" in printed

    again, pipeline = run_fake(
        "lhqc_outpaint_up",
        tmp_path,
        n=8,
        batch_size=4,
        table=None,
        overrides=BLOCK_ONLY,
        setting="cache check",
    )
    assert pipeline.calls == [] and again.counts["metric_jobs_computed"] == 0
    assert [m["interval"] for m in again.results["metrics"]] == [m["interval"] for m in metrics]


def test_a_run_too_small_for_an_interval_says_why(tmp_path):
    outcome, _ = run_fake(
        "lhqc_outpaint_up", tmp_path, n=4, batch_size=4, table=None, overrides=BLOCK_ONLY
    )
    for metric in outcome.results["metrics"]:
        assert metric["interval"] is None and metric["no_interval"] == "n=4 < 8"
    assert not any(row.has_interval for row in rows_from_results(outcome.results))
    assert "none (n=4 < 8)" in format_outcome(outcome, None)
