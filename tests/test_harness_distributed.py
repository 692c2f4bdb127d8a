"""Sharding over torchrun ranks (gloo, CPU): two processes give exactly one process's numbers."""

from __future__ import annotations

import json
import subprocess
import sys

from harness_fakes import ROOT, run_fake

from leaderboard import load_results

OVERRIDE = "metrics=[block_fid,block_fid_pooled]"


def test_two_gloo_ranks_equal_one_process(tmp_path):
    log = tmp_path / "calls.jsonl"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(ROOT / "tests" / "harness_fakes.py"), "lhqc_outpaint_up",
        "--out", str(tmp_path / "two"),
        "--num-samples", "6", "--batch-size", "2", "--call-log", str(log), "--override", OVERRIDE,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    sharded = load_results(json.loads(done.stdout.strip().splitlines()[-1])["path"])

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    by_rank = {}
    for call in calls:
        by_rank.setdefault(call["pid"], []).append(call["seed"])
    assert len(calls) == 3 and sorted(map(len, by_rank.values())) == [1, 2]  # batches 0,2 | 1

    single, _ = run_fake(
        "lhqc_outpaint_up", tmp_path / "one", n=6, batch_size=2, table=None, overrides=[OVERRIDE]
    )
    assert sharded["samples_sha256"] == single.results["samples_sha256"]
    assert [m["id"] for m in sharded["metrics"]] == [m["id"] for m in single.results["metrics"]]
    assert [m["value"] for m in sharded["metrics"]] == [
        m["value"] for m in single.results["metrics"]
    ]
    assert sharded["config"]["world_size"] == 2 and sharded["device"] == "cpu x2"
