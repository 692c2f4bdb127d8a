"""The border-context diagnostic: per-line teacher-forced loss with and without a neighbour."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.diagnostics import border_context
from nuwa.model import Nuwa, preset
from nuwa.pipeline import Pipeline
from nuwa.tokenizer import build_vqgan


@pytest.fixture
def tiny_pipeline(monkeypatch):
    """A tiny untrained image model (64-px patches) behind the diagnostic's loader."""
    torch.manual_seed(0)
    pipe = Pipeline(Nuwa(preset("tiny")).eval(), build_vqgan("tiny").eval())
    monkeypatch.setattr(border_context, "load_pipeline", lambda *args, **kwargs: pipe)
    return pipe


def test_each_order_puts_exactly_the_named_neighbour_or_nothing_before_the_patch(tiny_pipeline):
    model = tiny_pipeline.model
    shape = (2, *model.layout.token_shape(border_context.GRID))
    tokens = torch.randint(0, model.cfg.codebook_size, shape)
    cols = border_context.GRID.cols
    for neighbour, (target, with_it, without_it) in border_context.NEIGHBOURS.items():
        expected = target - 1 if neighbour == "left" else target - cols
        assert with_it[: with_it.index(target)] == (expected,)
        assert without_it[0] == target
        rest = tuple(p for p in range(4) if p != target)
        first = border_context.line_losses(model, tokens, None, without_it)[target]
        other = border_context.line_losses(model, tokens, None, (target, *reversed(rest)))[target]
        torch.testing.assert_close(first, other)  # a first patch sees no context at all


def test_the_report_holds_both_neighbours_with_intervals_and_consistent_savings(
    tiny_pipeline, tmp_path, capsys
):
    out = tmp_path / "border"
    assert border_context.main(["--n", "8", "--size", "256", "--out", str(out)]) == 0
    report = json.loads((out / "border_context.json").read_text())
    assert set(report["neighbours"]) == {"left", "above"} and report["n"] == 8
    p = tiny_pipeline.model.layout.patch_size
    for row in report["neighbours"].values():
        assert len(row["per_line_with"]) == len(row["per_line_without"]) == p
        saved = row["line0_without"]["mean"] - row["line0_with"]["mean"]
        assert row["saved_on_line0"]["mean"] == pytest.approx(saved)
        assert row["line0_with"]["mean"] == pytest.approx(row["per_line_with"][0])
        assert row["line0_with"]["low"] <= row["line0_with"]["mean"] <= row["line0_with"]["high"]
    assert "| left |" in capsys.readouterr().out
    for bad in (["--n", "4"], ["--size", "64"]):
        with pytest.raises(SystemExit):
            border_context.main([*bad, "--out", str(tmp_path / "bad")])
