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
    assert [row.setting for row in accepted] == ["without text; regress n=8"]

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


class ThreadRecordingPipeline(FakePipeline):
    """Records the torch thread count each outpainting call ran with."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def outpaint(self, *args, **kwargs):
        self.threads.append(torch.get_num_threads())
        return super().outpaint(*args, **kwargs)


def test_regress_runs_on_one_thread_and_restores_the_callers(table, tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pipeline = ThreadRecordingPipeline()
        _regress(pipeline, table, tmp_path, accept=True)
        assert pipeline.threads and set(pipeline.threads) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
