"""Regression against the accepted rows: direction-aware, tolerance-aware, loud when unkeyed."""

from __future__ import annotations

import dataclasses

import pytest

from leaderboard.regress import Tolerance, compare_to_baseline, format_regressions
from leaderboard.results import rows_from_results
from leaderboard.schema import LeaderboardError
from leaderboard.testing import example_metric, example_results

IS_ID = "is@1/inception_v3.surrogate-seed0@1/10splits/aaaa"


def run(block_fid: float, inception_score: float, checkpoint: bytes = b"checkpoint-a"):
    """A run with one lower-is-better and one higher-is-better metric."""
    return example_results(
        [
            example_metric(block_fid),
            example_metric(
                inception_score,
                base="is",
                name="IS [surrogate Inception]",
                metric_id=IS_ID,
                better="higher",
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
    report = format_regressions(regressions, n_compared=2)
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
    assert compare_to_baseline(run(25.0, 40.0), accepted + newer) == []
    assert format_regressions([], 2) == "OK: 2 metric(s) within tolerance of the accepted rows\n"


def test_missing_baseline_is_an_error_not_a_pass(accepted):
    other_dataset = example_results([example_metric(1.0)], dataset="procedural-landscapes-v2")
    with pytest.raises(LeaderboardError, match="no accepted row for .*procedural-landscapes-v2"):
        compare_to_baseline(other_dataset, accepted)
    new_definition = example_results([example_metric(1.0, metric_id="block_fid@2/x")])
    with pytest.raises(LeaderboardError, match=r"the table holds block_fid@1/"):
        compare_to_baseline(new_definition, accepted)
