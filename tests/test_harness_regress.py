"""``nuwa-eval regress``: passes against its accepted row, fails with a readable diff on a
degraded model (both judged by the run's bootstrap interval), and refuses to pass when there is
no accepted row."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from harness_fakes import TINY_FEATURES, FakePipeline, register_tiny_extractors

from benchmarks.experiments.regress import N_SAMPLES, regress
from benchmarks.harness.config import outpaint_regions
from evaluation.bootstrap import MIN_INTERVAL_SAMPLES
from leaderboard import LeaderboardError, Tolerance, import_paper, load_table
from leaderboard.schema import check_row
from leaderboard.table import write_table

FAST = [*TINY_FEATURES, "metrics=[block_fid]"]


@pytest.fixture
def table(tmp_path):
    register_tiny_extractors()
    path = tmp_path / "leaderboard.jsonl"
    import_paper(path)
    return path


def _regress(pipeline, table, tmp_path, **kwargs):
    return regress(
        "lhqc_outpaint_up",
        pipeline,
        checkpoint="fake",
        table=table,
        out=tmp_path / "out",
        overrides=FAST,
        progress=False,
        **kwargs,
    )


def test_regress_passes_its_baseline_and_fails_a_degraded_model(table, tmp_path):
    status, report = _regress(FakePipeline(), table, tmp_path, accept=True)
    assert status == 0 and "accepted as the baseline" in report
    accepted = [row for row in load_table(table) if row.source == "ours"]
    assert [row.setting for row in accepted] == ["without text; regress n=8 float32"]
    assert [row.sample_grid for row in accepted] == [""]  # its folder is a throwaway one
    assert accepted[0].has_interval and accepted[0].ci_level == 0.95

    status, report = _regress(FakePipeline(), table, tmp_path)
    assert status == 0 and "OK: 1 metric(s) pass against the accepted rows" in report
    assert "the accepted value lies inside this run's 95% interval" in report
    assert "(rule: interval)" in report

    status, report = _regress(BlankPipeline(), table, tmp_path)
    assert status == 1
    assert "REGRESSION lhqc_outpaint_up@3 · Block-FID" in report and "worse by" in report
    assert "the accepted value lies below this run's 95% interval" in report
    assert f"accepted {accepted[0].value:>12.4f}" in report
    assert "FAILED: 1 of 1 metric(s) regressed" in report

    # Noise instead of a mirrored landscape: worse, but within the sampling noise of 8 samples
    # on these 16-d test features, so the interval passes it; an explicit tolerance judges it
    # instead, and says so.
    status, report = _regress(FakePipeline(quality=0.0), table, tmp_path)
    assert status == 0 and "worse by" in report and "(rule: interval)" in report
    status, report = _regress(
        FakePipeline(quality=0.0), table, tmp_path, tolerances={"block_fid": Tolerance()}
    )
    assert status == 1 and "(rule: tolerance)" in report and "(rule: interval)" not in report
    assert "FAILED: 1 of 1 metric(s) regressed" in report


class BlankPipeline(FakePipeline):
    """A broken model: the generated half of every canvas is black."""

    def outpaint(self, images, *, direction, amount_px, **kwargs):
        canvases = super().outpaint(images, direction=direction, amount_px=amount_px, **kwargs)
        for canvas in canvases:
            _, region = outpaint_regions(direction, *canvas.shape[:2])
            canvas[
                region.top : region.top + region.height, region.left : region.left + region.width
            ] = 0
        return canvases


def test_regress_without_an_accepted_row_is_an_error(table, tmp_path):
    with pytest.raises(LeaderboardError, match="--accept"):
        _regress(FakePipeline(), table, tmp_path)


class DtypeRecordingPipeline(FakePipeline):
    """Records the float type the pipeline was cast to when each outpainting call ran."""

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: list[torch.dtype] = []

    def outpaint(self, *args, **kwargs):
        self.dtypes.append(self.dtype)
        return super().outpaint(*args, **kwargs)


def test_regress_samples_in_float32_and_says_so_in_its_setting(table, tmp_path):
    pipeline = DtypeRecordingPipeline()
    _regress(pipeline, table, tmp_path, accept=True)
    assert pipeline.dtypes and set(pipeline.dtypes) == {torch.float32}
    [row] = [row for row in load_table(table) if row.source == "ours"]
    assert row.setting == "without text; regress n=8 float32"


def test_every_regression_run_is_large_enough_for_intervals():
    assert min(N_SAMPLES.values()) >= MIN_INTERVAL_SAMPLES


def test_an_accepted_row_from_before_intervals_is_still_judged(table, tmp_path):
    """The committed baseline rows have no interval: the new run's interval judges them."""
    _regress(FakePipeline(), table, tmp_path, accept=True)
    rows = load_table(table)
    old = [
        replace(row, ci_low=None, ci_high=None, ci_level=None) if row.source == "ours" else row
        for row in rows
    ]
    for row in old:
        check_row(row)
    write_table(table, old)
    status, report = _regress(FakePipeline(), table, tmp_path)
    assert status == 0 and "(rule: interval)" in report
