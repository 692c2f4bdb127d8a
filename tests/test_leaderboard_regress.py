"""Regression against the accepted rows: direction-aware, judged by the run's bootstrap interval
(or an explicit or fallback tolerance), loud when unkeyed."""

from __future__ import annotations

import dataclasses

import pytest

from leaderboard.regress import Tolerance, compare_to_baseline, format_verdicts, judge_run
from leaderboard.results import rows_from_results
from leaderboard.schema import LeaderboardError
from leaderboard.testing import example_metric, example_results

IS_ID = "is@1/inception_v3.surrogate-seed0@1/10splits/aaaa"


def run(
    block_fid: float,
    inception_score: float,
    checkpoint: bytes = b"checkpoint-a",
    intervals: tuple[tuple[float, float] | None, tuple[float, float] | None] = (None, None),
):
    """A run with one lower-is-better and one higher-is-better metric (optionally with
    bootstrap intervals)."""
    return example_results(
        [
            example_metric(block_fid, interval=intervals[0]),
            example_metric(
                inception_score,
                base="is",
                name="IS [surrogate Inception]",
                metric_id=IS_ID,
                better="higher",
                interval=intervals[1],
            ),
        ],
        checkpoint=checkpoint,
    )


@pytest.fixture(scope="module")
def accepted():
    return rows_from_results(run(block_fid=20.0, inception_score=4.0))


def test_identical_run_passes(accepted):
    assert compare_to_baseline(run(20.0, 4.0), accepted) == []


def test_better_in_either_direction_passes(accepted):
    assert compare_to_baseline(run(block_fid=15.0, inception_score=5.0), accepted) == []


@pytest.mark.parametrize(
    ("block_fid", "inception_score", "regressed"),
    [(25.0, 4.0, ["block_fid"]), (20.0, 3.0, ["is"]), (25.0, 3.0, ["block_fid", "is"])],
)
def test_worse_in_its_own_direction_regresses(accepted, block_fid, inception_score, regressed):
    degraded = run(block_fid, inception_score, checkpoint=b"degraded")
    regressions = compare_to_baseline(degraded, accepted)
    assert [r.run.metric_base for r in regressions] == regressed
    report = format_verdicts(judge_run(degraded, accepted))
    assert f"FAILED: {len(regressed)} of 2 metric(s) regressed" in report
    if "block_fid" in regressed:
        assert "worse by 5.0000 > tolerance 0.0000" in report
        assert "accepted      20.0000" in report and "this run      25.0000" in report


def test_tolerances_absolute_relative_and_most_specific(accepted):
    degraded = run(block_fid=21.0, inception_score=3.9)
    assert len(compare_to_baseline(degraded, accepted)) == 2
    assert compare_to_baseline(degraded, accepted, {"*": 1.0}) == []
    for block_fid_tolerance in (Tolerance(relative=0.05), 1.0):  # 5% of 20 == 1.0 == allowed
        (only,) = compare_to_baseline(degraded, accepted, {"block_fid": block_fid_tolerance})
        assert only.run.metric_base == "is"
    only_is = compare_to_baseline(degraded, accepted, {"*": 1.0, IS_ID: Tolerance(0.05)})
    assert [r.run.metric_base for r in only_is] == ["is"]
    assert only_is[0].worse_by == pytest.approx(0.1) and only_is[0].allowed == 0.05


def test_newest_accepted_row_is_the_baseline(accepted):
    newer = [
        dataclasses.replace(row, value=30.0, created="2100-01-01T00:00:00Z") for row in accepted
    ]
    verdicts = judge_run(run(25.0, 40.0), accepted + newer)
    assert not any(verdict.regressed for verdict in verdicts)
    assert format_verdicts(verdicts).endswith("OK: 2 metric(s) pass against the accepted rows\n")


def test_missing_baseline_is_an_error_not_a_pass(accepted):
    other_dataset = example_results([example_metric(1.0)], dataset="procedural-landscapes-v2")
    with pytest.raises(LeaderboardError, match="no accepted row for .*procedural-landscapes-v2"):
        compare_to_baseline(other_dataset, accepted)
    new_definition = example_results([example_metric(1.0, metric_id="block_fid@2/x")])
    with pytest.raises(LeaderboardError, match=r"the table holds block_fid@1/"):
        compare_to_baseline(new_definition, accepted)


# Accepted: Block-FID 20.0 (lower is better), IS 4.0 (higher is better). Each case: this run's
# values and intervals, and which metrics regressed.
INTERVAL_CASES = {
    "inside": ((21.0, 3.9), ((19.5, 23.0), (3.5, 4.2)), []),
    "outside on the worse side": ((24.0, 3.0), ((21.0, 27.0), (2.5, 3.5)), ["block_fid", "is"]),
    "outside on the better side": ((16.0, 5.0), ((12.0, 19.0), (4.5, 5.5)), []),
}


@pytest.mark.parametrize("case", INTERVAL_CASES)
def test_interval_judges_a_run_that_has_one(accepted, case):
    values, intervals, regressed = INTERVAL_CASES[case]
    verdicts = judge_run(run(*values, checkpoint=b"new", intervals=intervals), accepted)
    assert [v.rule for v in verdicts] == ["interval", "interval"]
    assert [v.run.metric_base for v in verdicts if v.regressed] == regressed
    report = format_verdicts(verdicts)
    assert report.count("(rule: interval)") == 2 + len(regressed)  # summary lines + diffs
    if regressed:
        assert "the accepted value lies below this run's 95% interval [21.0000, 27.0000]" in report
        assert "the accepted value lies above this run's 95% interval [2.5000, 3.5000]" in report
        assert "FAILED: 2 of 2 metric(s) regressed" in report
    else:
        assert "OK: 2 metric(s) pass against the accepted rows" in report


def test_interval_wins_over_fallback_but_not_over_an_explicit_tolerance(accepted):
    # 5% worse on Block-FID, inside the run's interval: the fallback 2% does not apply.
    noisy = run(21.0, 4.0, checkpoint=b"new", intervals=((19.0, 23.0), (3.5, 4.5)))
    fallback = {"block_fid": Tolerance(relative=0.02)}
    assert compare_to_baseline(noisy, accepted, fallback=fallback) == []
    (explicit,) = compare_to_baseline(noisy, accepted, {"block_fid": Tolerance(relative=0.02)})
    assert explicit.rule == "tolerance" and explicit.run.metric_base == "block_fid"
    assert "(rule: tolerance)" in explicit.describe()


def test_run_without_interval_falls_back_to_tolerance_and_says_so(accepted):
    verdicts = judge_run(run(20.3, 4.0), accepted, fallback={"*": Tolerance(relative=0.02)})
    assert [v.rule for v in verdicts] == ["tolerance, no interval"] * 2
    assert not any(v.regressed for v in verdicts)
    assert "(rule: tolerance; this run has no interval)" in format_verdicts(verdicts)
    (regression,) = compare_to_baseline(run(20.5, 4.0), accepted, fallback={"*": Tolerance(0.4)})
    assert regression.rule == "tolerance, no interval" and regression.allowed == 0.4


def test_an_old_baseline_row_without_interval_is_judged_by_the_new_runs_interval(accepted):
    assert not any(row.has_interval for row in accepted)
    inside = run(21.0, 4.0, checkpoint=b"new", intervals=((19.0, 23.0), (3.5, 4.5)))
    assert [v.rule for v in judge_run(inside, accepted)] == ["interval", "interval"]
    assert compare_to_baseline(inside, accepted) == []
