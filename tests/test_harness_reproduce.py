"""``nuwa-eval reproduce``: which paper rows run, which are paper-only or need a model we lack,
and the printed comparison (with the fake pipeline)."""

from __future__ import annotations

import argparse

from harness_fakes import TINY_FEATURES, FakePipeline, register_tiny_extractors

from benchmarks.experiments import ablations
from benchmarks.experiments.reproduce import Abilities, Run, plan_table, reproduce
from leaderboard import import_paper, load_table


def _by_ref(lines):
    return {(line.paper.paper_ref, line.paper.metric_base): line for line in lines}


def test_table3_runs_nuwa_rows_and_keeps_baselines_paper_only():
    lines = plan_table("table3", Abilities(text=True))
    assert len(lines) == 14
    for line in lines:
        table, method, setting = line.paper.paper_ref.split("/")
        if method in ("Taming", "MaskGIT"):
            assert line.run is None and "paper only" in line.reason
        else:
            assert line.run == Run(line.paper.task, text=setting == "with text")
    no_text = _by_ref(plan_table("table3", Abilities(text=False)))
    assert "text-conditioned" in no_text[("table3/NUWA-Infinity/with text", "block_fid")].reason


def test_rows_needing_models_we_lack_say_so():
    animate = _by_ref(plan_table("table3b", Abilities(video=False)))
    assert "temporal extent" in animate[("table3b/NUWA-Infinity (AR local decoder)/", "fvd")].reason
    assert (
        "NAR local decoder; none"
        in animate[("table3b/NUWA-Infinity (NAR local decoder)/", "fvd")].reason
    )
    assert plan_table("table3b", Abilities(video=True))[2].run == Run("lhqv_animate")
    six = _by_ref(plan_table("table6", Abilities()))
    assert (
        "large-size model"
        in six[("table6b/NUWA-Infinity large/809M params (24 layers d1280)", "block_fid")].reason
    )
    speed = six[("table6a/NUWA-Infinity base/NAR local decoder", "relative_inference_speed")]
    assert speed.run == Run("lhqc_t2i", variant="decoder_nar")  # measured by the sweep
    converge = six[("table6c/NUWA-Infinity base/accumulated loss", "convergence_epoch")]
    assert converge.run is None and "does not train to convergence" in converge.reason
    assert six[("table6a/NUWA-Infinity base/P-NAR local decoder", "block_fid")].run == Run(
        "lhqc_t2i", variant="decoder_pnar"
    )
    assert six[("table6a/NUWA-Infinity base/AR local decoder", "block_fid")].run.variant == "none"
    every_arm = {
        line.run.variant
        for t in ("table4", "table5", "table6")
        for line in plan_table(t, Abilities())
        if line.run
    }
    assert every_arm <= set(ablations.VARIANTS)


def test_reproduce_table3_prints_ours_beside_the_papers(tmp_path):
    register_tiny_extractors()
    table = tmp_path / "leaderboard.jsonl"
    import_paper(table)
    args = argparse.Namespace(
        data="procedural", checkpoint="fake", tokenizer=None, pg_tokenizer=None, n=2, batch_size=2,
        device="cpu", out=tmp_path / "out", table=table, no_leaderboard=False, features="auto",
        quiet=True, overrides=[*TINY_FEATURES, "metrics=[block_fid]"], preset="small",
    )  # fmt: skip
    text = reproduce("table3", args, pipeline=FakePipeline())
    lines = text.splitlines()
    assert lines[0].startswith("Table 3") and len(lines) == 2 + 14
    nuwa = [line for line in lines if "NUWA-Infinity/without text" in line]
    assert len(nuwa) == 4 and all("n/c" in line and "procedural dataset" in line for line in nuwa)
    assert sum("paper only" in line for line in lines) == 6
    ours = [row for row in load_table(table) if row.source == "ours"]
    assert len(ours) == 8 and {row.setting for row in ours} == {"with text", "without text"}
