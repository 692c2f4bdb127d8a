"""``nuwa-eval ablations``: the commands it composes, and a one-batch sweep that really trains
(through nuwa-data tokenize and nuwa-train) and evaluates two arms with a tiny model."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace

import pytest
from harness_fakes import TINY_FEATURES, register_tiny_extractors

from benchmarks.experiments import ablation_results, ablation_verdicts, ablations
from benchmarks.experiments.reproduce import reproduce
from leaderboard import append_rows, import_paper, load_results, load_table, rows_from_results

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


def test_verdict_follows_the_side_of_zero_the_paired_interval_lies_on():
    judge = ablation_verdicts.judge
    # lower is better; the paper says the default wins, so the arm should score higher
    assert judge((0.5, 2.0), "lower", arm_better=False) == "reproduced"
    assert judge((-2.0, -0.5), "lower", arm_better=False) == "not reproduced"
    assert judge((-0.5, 2.0), "lower", arm_better=False) == "inconclusive"
    # higher is better (relative speed) and the paper says the arm wins
    assert judge((3.0, 5.0), "higher", arm_better=True) == "reproduced"
    assert judge((-5.0, -3.0), "higher", arm_better=True) == "not reproduced"
    assert judge(None, "higher", arm_better=True) == "inconclusive"


def _arm(per_seed: dict[str, list[float]]) -> dict:
    better = {"block_fid": "lower", "relative_inference_speed": "higher"}
    return {
        "metrics": [{"base": b, "per_seed": v, "better": better[b]} for b, v in per_seed.items()]
    }


def test_verdicts_pair_seeds_and_carry_the_paper_numbers():
    arms = {
        "none": _arm({"block_fid": [10.0, 20.0, 30.0], "relative_inference_speed": [1.0] * 3}),
        # worse than the default by 1-2 on every seed: the shared seed noise cancels in pairs
        "pos_emb_post": _arm({"block_fid": [11.0, 22.0, 31.5]}),
        "decoder_nar": _arm(
            {"block_fid": [5.0, 40.0, 20.0], "relative_inference_speed": [3.0, 3.2, 2.9]}
        ),
    }
    found = {(v.claim.arm, v.quantity): v for v in ablation_verdicts.verdicts(arms)}
    post = found["pos_emb_post", "block_fid"]
    assert post.difference == pytest.approx(1.5) and post.verdict == "reproduced"
    assert post.interval == pytest.approx(
        tuple(ablation_results.seed_interval([1.0, 2.0, 1.5])[k] for k in ("low", "high"))
    )
    assert post.paper == (10.05, 10.47)
    assert found["decoder_nar", "block_fid"].verdict == "inconclusive"
    speed = found["decoder_nar", "relative_inference_speed"]
    assert speed.verdict == "reproduced" and speed.paper == (1.0, 95.0)
    assert ("pos_emb_none", "block_fid") not in found  # an arm without results is not judged
    assert "reproduced" in ablation_verdicts.format_verdicts(list(found.values()))


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
    # the Table 4 claim is judged on the quantities both arms measured
    judged = json.loads((tmp_path / "out/ablations/test/verdicts.json").read_text())
    assert [(v["arm"], v["quantity"]) for v in judged] == [
        ("pos_emb_post", "block_fid"), ("pos_emb_post", "heldout_nll")
    ]  # fmt: skip
    assert judged[0]["paper"] == {"default": 10.05, "arm": 10.47}
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
    # One seed's own run of the same task lands beside the seed means, in a column of its own
    # (one column may hold only one metric id).
    single = load_results(results["extra"]["per_seed_results"][0])
    assert append_rows(rows_from_results(single), table) == 2
    ours = [row for row in load_table(table) if row.source == "ours"]
    block_fid = {row.metric for row in ours if row.metric_base == "block_fid"}
    assert {name.endswith(ablation_results.SEED_MEAN) for name in block_fid} == {True, False}
