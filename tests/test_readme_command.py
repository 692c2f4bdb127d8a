"""The README's main command on the bundled model, in process and under torchrun with the real
``python -m benchmarks.eval`` entry point: the same samples and the same numbers (small n)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from harness_fakes import ROOT

from benchmarks import cli
from leaderboard import load_results

# README: nuwa-eval lhqc-outpaint --direction up --data procedural (here n=4 and no leaderboard)
COMMAND = ["lhqc-outpaint", "--direction", "up", "--data", "procedural", "--num-samples", "4",
           "--batch-size", "2", "--no-leaderboard", "--quiet"]  # fmt: skip


def results_of(out) -> dict:
    (path,) = (out / "runs").rglob("results.json")
    return load_results(path)


@pytest.mark.slow  # two torchrun ranks each load torch and the bundled model
def test_the_readme_command_in_one_process_and_under_torchrun(tmp_path, capsys):
    assert cli.main([*COMMAND, "--out", str(tmp_path / "one")]) == 0
    printed = capsys.readouterr().out
    single = results_of(tmp_path / "one")
    assert single["task"]["name"] == "lhqc_outpaint_up" and single["n_samples"]["effective"] == 4
    assert single["dataset"]["name"] == "procedural-landscapes-v1"
    assert single["model"]["name"] == "nuwa-small-procedural-landscapes-v2.1"
    names = [m["base"] for m in single["metrics"]]
    assert names == ["block_fid", "block_fid_pooled", "swd"]
    assert not any(m["paper_comparable"] for m in single["metrics"])  # procedural: never
    block_fid = single["metrics"][0]
    assert f"{block_fid['value']:.4f}" in printed and "NOT COMPARABLE" in printed
    assert block_fid["value"] > 0 and block_fid["no_interval"]  # n=4 < 8: no interval, said why

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "benchmarks.eval", *COMMAND,
               "--out", str(tmp_path / "two")]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    sharded = results_of(tmp_path / "two")
    assert sharded["config"]["world_size"] == 2
    assert sharded["samples_sha256"] == single["samples_sha256"]
    # same samples; the features differ in float32 rounding only (torchrun gives each rank one
    # thread, this process has two, and the extractor's sums are ordered by the thread count)
    assert [m["value"] for m in sharded["metrics"]] == pytest.approx(
        [m["value"] for m in single["metrics"]], rel=1e-6
    )
    assert json.dumps(sharded["model"]) == json.dumps(single["model"])
