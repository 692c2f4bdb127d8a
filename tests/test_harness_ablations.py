"""``nuwa-eval ablations``: the commands it composes, and a one-batch sweep that really trains
(through nuwa-data tokenize and nuwa-train) and evaluates two arms with a tiny model."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace

import pytest
from harness_fakes import TINY_FEATURES, register_tiny_extractors

from benchmarks.experiments import ablation_results, ablations
from benchmarks.experiments.reproduce import reproduce
from leaderboard import import_paper, load_results, load_table

ARMS = ("none", "pos_emb_post")


def test_small_preset_covers_every_arm_of_the_issue_over_three_seeds():
    small = ablations.PRESETS["small"]
    assert set(small.variants) == {
        "none", "no_cache", "pos_emb_post", "pos_emb_none", "decoder_pnar", "decoder_nar",
        "loss_accumulated", "ncp_extent_1",
    }  # fmt: skip
    assert small.seeds == (0, 1, 2) and not small.smoke and ablations.PRESETS["smoke"].smoke
    measured = "metrics=[block_fid,swd,attr_agree,attr_agree_shuffled,layout]"
    assert small.eval_overrides == (measured,)  # image quality, text alignment, layout
    command = ablations.train_command(ablations.DEFAULT_OUT, small, "no_cache", 2)
    for part in ("stage=transformer", "model=ablation", "ablation=no_cache", "seed=2"):
        assert part in command
    assert f"model.batches={small.batches}" in command
    assert any(part.startswith("val_shards=") for part in command)
    assert ablations.run_dir(ablations.DEFAULT_OUT, small, "no_cache", 2).name == "seed2"


def test_seed_interval_is_the_student_t_interval_of_the_mean():
    interval = ablation_results.seed_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) x sample std / sqrt(n)
    assert (interval["low"], interval["high"]) == pytest.approx((2 - half, 2 + half))
    assert interval["replicates"] == 3 and interval["method"] == "student-t over training seeds"
    assert ablation_results.seed_interval([1.0]) is None


@pytest.mark.slow
def test_a_one_batch_sweep_trains_two_seeds_and_writes_seed_averaged_rows(tmp_path, monkeypatch):
    from nuwa.tokenizer import build_vqgan, save_tokenizer

    register_tiny_extractors()
    tokenizer = tmp_path / "tokenizer.safetensors"
    save_tokenizer(tokenizer, build_vqgan("tiny"), preset="tiny", step=0)
    preset = ablations.Preset(
        "test", "tiny", train_images=4, val_images=2, image_size=128, batches=1, batch_size=2,
        canvas=(2, 2), eval_n=2, seeds=(0, 1),
        eval_overrides=("metrics=[block_fid,swd]", "canvas=[256,256]", *TINY_FEATURES),
        variants=ARMS, train_overrides=("++model.arch.text=clip-tiny",),
    )  # fmt: skip
    monkeypatch.setitem(ablations.PRESETS, "test", preset)
    table = tmp_path / "leaderboard.jsonl"
    import_paper(table)
    args = argparse.Namespace(
        preset="test", variants=None, out=tmp_path / "out", table=table, no_leaderboard=False,
        device="cpu", dry_run=False, quiet=True, tokenizer=tokenizer, jobs=1, stage="all",
    )  # fmt: skip
    assert ablations.run(args) == 0
    ours = [row for row in load_table(table) if row.source == "ours"]
    quantities = ["block_fid", "swd", "heldout_nll", "train_loss", "ms_per_patch"]
    quantities.append("relative_inference_speed")
    assert [row.metric_base for row in ours] == quantities * 2  # one row per arm and quantity
    assert [row.setting for row in ours[::6]] == [ablations.VARIANTS[v].setting for v in ARMS]
    assert ours[6].paper_ref == "table4/NUWA-Infinity base/ADC.Emb post (bias after attention)"
    assert ours[5].value == 1.0 and ours[5].ci_low == ours[5].ci_high == 1.0  # the default arm
    # the rows hold the mean over the two seeds' own results, with the t interval over them
    results = load_results(tmp_path / "out/ablations/test/pos_emb_post/results.json")
    swd = results["metrics"][1]
    per_seed = [
        load_results(path)["metrics"][1]["value"] for path in results["extra"]["per_seed_results"]
    ]
    assert swd["per_seed"] == per_seed and swd["value"] == pytest.approx(sum(per_seed) / 2)
    assert swd["interval"] == ablation_results.seed_interval(per_seed)
    assert ours[7].ci_low == pytest.approx(swd["interval"]["low"])
    assert sorted(results["extra"]["loss_curves"]) == ["0", "1"]
    # A second call finds every arm trained: nothing to train.
    args.dry_run = True
    assert ablations.run(args) == 0
    # reproduce shows the seed-averaged rows beside the paper's
    args.preset, args.no_leaderboard = "test", True
    text = reproduce("table4", args, pipeline=object())
    lines = text.splitlines()
    post = next(line for line in lines if "ADC.Emb post" in line and "block_fid " in line)
    assert "n/c" in post and "procedural" in post  # ours, labelled not comparable
    args.no_leaderboard = False
    # The smoke flag keeps a composition check off the leaderboard entirely.
    monkeypatch.setitem(ablations.PRESETS, "test", replace(preset, smoke=True))
    args.dry_run = False
    assert ablations.run(args) == 0
    assert len([row for row in load_table(table) if row.source == "ours"]) == 12
