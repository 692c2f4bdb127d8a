"""``nuwa-eval regress``: passes against its accepted row, fails with a readable diff on a
degraded model, and refuses to pass when there is no accepted row."""

from __future__ import annotations

import pytest
import torch
from harness_fakes import TINY_FEATURES, FakePipeline, register_tiny_extractors

from benchmarks.regress import regress
from leaderboard import LeaderboardError, import_paper, load_table

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
    assert [row.setting for row in accepted] == ["without text; regress n=8 float64"]
    assert [row.sample_grid for row in accepted] == [""]  # its folder is a throwaway one

    status, report = _regress(FakePipeline(), table, tmp_path)
    assert status == 0 and "OK: 1 metric(s) within tolerance" in report

    status, report = _regress(FakePipeline(quality=0.0), table, tmp_path)
    assert status == 1
    assert "REGRESSION lhqc_outpaint_up@1 · Block-FID" in report and "worse by" in report
    assert f"accepted {accepted[0].value:>12.4f}" in report
    assert "FAILED: 1 of 1 metric(s) regressed" in report


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


def test_regress_samples_in_float64_and_says_so_in_its_setting(table, tmp_path):
    pipeline = DtypeRecordingPipeline()
    _regress(pipeline, table, tmp_path, accept=True)
    assert pipeline.dtypes and set(pipeline.dtypes) == {torch.float64}
    [row] = [row for row in load_table(table) if row.source == "ours"]
    assert row.setting == "without text; regress n=8 float64"
