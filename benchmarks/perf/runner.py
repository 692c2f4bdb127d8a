"""`nuwa-eval perf [--quick]`: run every perf script, then print the goals against the results.

Each script runs in its own subprocess (its own peak memory and thread pool; one failing does not
stop the others), writes its JSON (and PNG) into ``--out-dir`` and prints its own table. The runner
then reads those JSON files, prints one line per goal with the measured value, and writes
``perf_summary.json``. Exit status: 0 when every script ran, 1 when one failed (goals missed are
reported, not errors: these are measurements).

On CPU the default is one thread: on a shared machine the process CPU time of one thread is the
clock other jobs distort least, and each script compares against its baseline at the same
thread count anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.perf.common import DEFAULT_OUT, write_json


@dataclass(frozen=True)
class Script:
    module: str
    result: str  # JSON file name inside --out-dir
    quick: tuple[str, ...] = ("--quick",)
    owns_out_dir: bool = True  # takes --out-dir, --device, --preset (else only --out FILE)
    takes_threads: bool = True


def scripts(preset: str) -> dict[str, Script]:
    """The perf scripts in run order, keyed by name."""
    return {
        "canvas_scaling": Script("benchmarks.perf.canvas_scaling", "canvas_scaling.json"),
        "sampling_throughput": Script(
            "benchmarks.perf.sampling_throughput", "sampling_throughput.json"
        ),
        "sliding_window": Script("benchmarks.perf.sliding_window", "sliding_window.json"),
        "wavefront": Script("benchmarks.perf.wavefront", "wavefront.json"),
        "training_throughput": Script(
            "benchmarks.perf.training_throughput",
            f"training_throughput_{preset}.json",
            quick=("--batches", "1", "--batch-size", "4", "--canvas", "2", "2"),
        ),
        "metric_throughput": Script(
            "benchmarks.perf.metric_throughput",
            "metric_throughput.json",
            quick=("--images", "8", "--repeats", "1"),
            owns_out_dir=False,
            takes_threads=False,
        ),
    }


def command(script: Script, args: argparse.Namespace, out_dir: Path) -> list[str]:
    """The ``python -m`` command line of one script under the runner's options."""
    argv = [sys.executable, "-m", script.module]
    if script.owns_out_dir:  # the model scripts
        argv += ["--out-dir", str(out_dir), "--device", args.device, "--preset", args.preset]
    else:
        argv += ["--out", str(out_dir / script.result)]
    if script.takes_threads and args.threads:
        argv += ["--threads", str(args.threads)]
    return argv + list(script.quick if args.quick else ())


def _goal(text: str, value: float | None, target: float, higher_is_better: bool) -> dict:
    met = None if value is None else (value >= target if higher_is_better else value <= target)
    return {"goal": text, "value": value, "target": target, "met": met}


def _canvas_goals(result: dict) -> list[dict]:
    s = result["summary"]
    wide, narrow = s["wide_cols"], s["narrow_cols"]
    memory = next(k for k in s["ncp"] if k.endswith("_ratio") and k != "ms_per_patch_ratio")
    return [
        _goal(f"NCP ms/patch, {wide} vs {narrow} cols (x)", s["ncp"]["ms_per_patch_ratio"], 1.15,
              False),
        _goal(f"NCP {memory[:-6]}, {wide} vs {narrow} cols (x)", s["ncp"][memory], 1.10, False),
    ]  # fmt: skip


def _window_goals(result: dict) -> list[dict]:
    targets = {8: 50.0, 32: 100.0}
    return [
        _goal(f"NCP over sliding window, batch {row['batch']} (x)", row["speedup"],
              targets[row["batch"]], True)
        for row in result["rows"]
        if row["batch"] in targets
    ]  # fmt: skip


def _wavefront_goals(result: dict) -> list[dict]:
    return [
        goal
        for row in result["canvases"]
        if (row["rows"], row["cols"]) == (8, 32)
        for goal in (
            _goal("wavefront / sequential wall time, 8x32 (x)", row["wall_time_ratio"], 2.0, True),
            _goal("wavefront / sequential peak memory, 8x32 (x)", row["memory_ratio"], 1.3, False),
        )
    ]


def _sampling_goals(result: dict) -> list[dict]:
    return [
        _goal(f"sampling / weight roofline, batch {row['batch']}", row["ratio"], 0.60, True)
        for row in result["rows"]
    ]


def _training_goals(result: dict) -> list[dict]:
    clock = result["clock"]
    return [
        _goal("training MFU, render-and-optimize", row["mfu"][clock], 0.50, True)
        for row in result["rows"]
        if row["loss"] == "patch"
    ]


def _metric_goals(result: dict) -> list[dict]:
    ratio = result["ratio_features_ours_over_cleanfid"]
    return [_goal("feature extraction, ours / clean-fid (x)", ratio, 1.0, True)]


GOALS: dict[str, Callable[[dict], list[dict]]] = {  # script -> its goals, given its JSON
    "canvas_scaling": _canvas_goals,
    "sliding_window": _window_goals,
    "wavefront": _wavefront_goals,
    "sampling_throughput": _sampling_goals,
    "training_throughput": _training_goals,
    "metric_throughput": _metric_goals,
}


def goals(out_dir: Path, preset: str) -> list[dict]:
    """The performance goals, each with the measured value read back from its script's JSON
    file (a script that has not run adds none)."""
    available = scripts(preset)
    rows: list[dict] = []
    for name, judge in GOALS.items():
        path = out_dir / available[name].result
        if path.is_file():
            rows += judge(json.loads(path.read_text()))
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Run every perf script (canvas scaling, sampling, sliding window, wavefront, training,
    metrics)."""
    names = list(scripts("small"))
    parser.add_argument("--quick", action="store_true", help="smaller runs of every script")
    parser.add_argument(
        "--only", nargs="+", choices=names, metavar="NAME", help=f"run just these: {names}"
    )
    parser.add_argument("--preset", default="small", help="model preset of the model scripts")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="CPU threads per script (default on CPU: 1)")
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT))


def run(args: argparse.Namespace) -> int:
    """Run the scripts, print the goals table; 0 if every script ran, else 1."""
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.threads is None and not args.device.startswith("cuda"):
        args.threads = 1
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)  # for scripts without --threads
    selected = {k: v for k, v in scripts(args.preset).items() if not args.only or k in args.only}
    status = {}
    for name, script in selected.items():
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        (out_dir / script.result).unlink(missing_ok=True)  # a failed run must not show old results
        code = subprocess.run(command(script, args, out_dir), env=env).returncode
        status[name] = {"exit_code": code, "seconds": time.perf_counter() - start}
        if code != 0:
            print(f"nuwa-eval perf: {name} failed with exit code {code}", file=sys.stderr)
    rows = goals(out_dir, args.preset)
    print("\n=== performance goals ===")
    for row in rows:
        mark = {True: "met", False: "NOT met", None: "n/a"}[row["met"]]
        value = "-" if row["value"] is None else f"{row['value']:.2f}"
        print(f"{row['goal']:<48} {value:>8}  target {row['target']:<6} {mark}")
    summary = {"quick": args.quick, "device": args.device, "threads": args.threads,
               "scripts": status, "goals": rows}  # fmt: skip
    print(f"wrote {write_json(out_dir, 'perf_summary', summary)}")
    return 0 if all(s["exit_code"] == 0 for s in status.values()) else 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
