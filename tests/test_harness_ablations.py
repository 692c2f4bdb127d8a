"""``nuwa-eval ablations``: the commands it composes, and a one-batch sweep that really trains
(through nuwa-data tokenize and nuwa-train) and evaluates two arms with a tiny model."""

from __future__ import annotations

import argparse

import pytest
from harness_fakes import TINY_FEATURES, register_tiny_extractors

from benchmarks.experiments import ablations
from leaderboard import import_paper, load_table


def test_small_preset_covers_every_arm_of_the_issue():
    small = ablations.PRESETS["small"]
    arms = set(small.variants)
    assert {"ncp_extent_1", "ncp_extent_3", "no_cache", "pos_emb_post", "pos_emb_none"} <= arms
    assert {"loss_accumulated", "decoder_nar", "decoder_pnar", "none"} <= arms
    command = ablations.train_command(ablations.DEFAULT_OUT, small, "no_cache")
    assert (
        "stage=transformer" in command
        and "model=small" in command
        and "ablation=no_cache" in command
    )
    assert f"model.batches={small.batches}" in command


@pytest.mark.slow
def test_one_batch_sweep_trains_and_evaluates_each_arm(tmp_path, monkeypatch):
    from nuwa.tokenizer import build_vqgan, save_tokenizer

    register_tiny_extractors()
    tokenizer = tmp_path / "tokenizer.safetensors"
    save_tokenizer(tokenizer, build_vqgan("tiny"), preset="tiny", step=0)
    preset = ablations.Preset(
        "test", "tiny", train_images=4, image_size=128, batches=1, batch_size=2, canvas=(2, 2),
        eval_n=2, eval_overrides=("metrics=[swd]", "canvas=[128,128]", *TINY_FEATURES),
        variants=("none", "pos_emb_post"), train_overrides=("++model.arch.text=clip-tiny",),
    )  # fmt: skip
    monkeypatch.setitem(ablations.PRESETS, "test", preset)
    table = tmp_path / "leaderboard.jsonl"
    import_paper(table)
    args = argparse.Namespace(
        preset="test", variants=None, out=tmp_path / "out", table=table, no_leaderboard=False,
        device="cpu", dry_run=False, quiet=True, tokenizer=tokenizer,
    )  # fmt: skip
    assert ablations.run(args) == 0
    ours = [row for row in load_table(table) if row.source == "ours"]
    assert [row.setting for row in ours] == [ablations.VARIANTS[v].setting for v in preset.variants]
    assert {row.model for row in ours} == {"nuwa-tiny-ablation-test"}
    assert ours[1].paper_ref == "table4/NUWA-Infinity base/ADC.Emb post (bias after attention)"
    # A second call finds every arm trained and evaluated: nothing to do.
    args.dry_run = True
    assert ablations.run(args) == 0
