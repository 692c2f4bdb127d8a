"""Rank the bundled models in git history by a task's metrics (does a metric rank known-better
models first?).

    python -m benchmarks.experiments.bundle_history [--task lhqc_t2i] [--n 48] [COMMIT ...]

Each commit's `nuwa/bundled/model.safetensors` and `tokenizer.safetensors` are read with `git
show` into a temporary folder and evaluated with the task on the procedural set (default
features: the landscape network), so this needs a git checkout. Without commits it takes every
commit that changed the bundled model, oldest first. Prints one line per bundle with each
metric's value and bootstrap 95% interval, and writes them to ``--out``/bundles.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness.config import resolve_config
from benchmarks.harness.run import Identity, evaluate
from benchmarks.task_commands import load_pipeline
from benchmarks.tasks import TaskError, get_task
from nuwa.errors import UserError
from nuwa.io import atomic_write_json

BUNDLE = "nuwa/bundled"
FILES = ("model.safetensors", "tokenizer.safetensors")


def _git(*args: str) -> bytes:
    done = subprocess.run(["git", *args], capture_output=True, check=False)
    if done.returncode != 0:
        raise TaskError(f"git {' '.join(args)} failed: {done.stderr.decode().strip()[:200]}")
    return done.stdout


def bundle_commits() -> list[str]:
    """Every commit that changed the bundled model, oldest first (short hashes)."""
    log = _git("log", "--reverse", "--format=%h", "--", f"{BUNDLE}/model.safetensors")
    return log.decode().split()


def checkout_bundle(commit: str, folder: Path) -> Path:
    """Write ``commit``'s bundle files into ``folder``; returns it."""
    for name in FILES:
        (folder / name).write_bytes(_git("show", f"{commit}:{BUNDLE}/{name}"))
    return folder


def evaluate_bundle(
    commit: str, task: str, n: int, metrics: list[str], out: Path, progress: bool
) -> dict:
    """The task's ``metrics`` for ``commit``'s bundle: {quantity: {name, value, low, high}}."""
    spec = get_task(task)
    config = resolve_config(
        spec, data="procedural", n=n, overrides=[f"metrics=[{','.join(metrics)}]"]
    )
    with tempfile.TemporaryDirectory() as folder:
        pipeline = load_pipeline(str(checkout_bundle(commit, Path(folder))), None, None, "cpu")
        outcome = evaluate(
            spec,
            config,
            pipeline,
            out=out,
            table=None,
            identity=Identity(checkpoint=f"bundle@{commit}"),
            progress=progress,
        )
    metrics = {}
    for metric in outcome.results["metrics"]:
        interval = metric.get("interval") or {}
        metrics[metric["base"]] = {
            "name": metric["name"],
            "value": metric["value"],
            "low": interval.get("low"),
            "high": interval.get("high"),
        }
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.experiments.bundle_history", description=__doc__.split("\n")[0]
    )
    parser.add_argument("commits", nargs="*", help="bundle commits (default: all, oldest first)")
    parser.add_argument("--task", default="lhqc_t2i")
    parser.add_argument("--n", type=int, default=48, help="samples per bundle (default 48)")
    parser.add_argument(
        "--metrics",
        default="block_fid,block_fid_pooled,attr_agree,attr_agree_shuffled",
        help="comma-separated quantities of the task (default: Block-FID and attribute agreement)",
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/bundle_history"))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        commits = args.commits or bundle_commits()
        ranking = {}
        for commit in commits:
            ranking[commit] = evaluate_bundle(
                commit, args.task, args.n, args.metrics.split(","), args.out, not args.quiet
            )
            cells = [
                f"{m['name']} {m['value']:.4g} [{m['low']:.4g}, {m['high']:.4g}]"
                if m["low"] is not None
                else f"{m['name']} {m['value']:.4g}"
                for m in ranking[commit].values()
            ]
            print(f"{commit}: " + " | ".join(cells), flush=True)
    except (UserError, OSError) as error:
        print(f"bundle_history: error: {error}", file=sys.stderr)
        return 2
    atomic_write_json(args.out / "bundles.json", {"task": args.task, "n": args.n, **ranking})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
