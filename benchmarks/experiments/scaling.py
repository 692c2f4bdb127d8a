"""Held-out loss against training FLOPs for a few transformer sizes on the same token shards.

    python -m benchmarks.experiments.scaling --shards shards/train --val-shards shards/val \\
        [--sizes L2-d64,L3-d128,L4-d192] [--batches 250] [--jobs 2] [--out outputs/scaling/NAME]

Each size is the ``ablation`` recipe (3x3-patch canvases, batch 8, lr 5e-4, the ``small`` text
tower) with its depth and width changed, trained for the same number of batches, so the larger
sizes spend more FLOPs on the same data. The report reads each run's ``log.csv`` (training loss
and FLOPs so far) and ``eval.json`` (held-out loss of the exported weights) and writes
``scaling.json`` and ``scaling.png`` (training loss against FLOPs, held-out loss at each run's
end). Its question is the one a next model size should be chosen by: at a given FLOP budget,
which size has the lowest loss. Every run resumes (``last.safetensors``); finished runs are
reused.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.experiments.jobs import run_parallel, script
from benchmarks.task_commands import DEFAULT_OUT
from benchmarks.tasks import TaskError
from nuwa.io import atomic_write_bytes, atomic_write_json
from nuwa.model import count_parameters
from nuwa.model.checkpoint import load_model
from nuwa.train.log import read_log


@dataclass(frozen=True)
class Size:
    """A transformer depth and width (64-wide heads) on top of the ``ablation`` recipe."""

    n_layer: int
    d_model: int

    @property
    def name(self) -> str:
        return f"L{self.n_layer}-d{self.d_model}"

    @property
    def overrides(self) -> list[str]:
        return [
            f"model.arch.n_layer={self.n_layer}",
            f"model.arch.d_model={self.d_model}",
            f"model.arch.n_head={max(1, self.d_model // 64)}",
        ]


SIZES = {size.name: size for size in (Size(2, 64), Size(3, 128), Size(4, 192), Size(6, 256))}
DEFAULT_SIZES = ("L2-d64", "L3-d128", "L4-d192")


def train_command(size: Size, args: argparse.Namespace) -> list[str]:
    """The ``nuwa-train`` call that trains ``size`` on the shards."""
    return [
        script("nuwa-train"),
        "stage=transformer",
        "model=ablation",
        f"seed={args.seed}",
        f"shards={args.shards}",
        f"val_shards={args.val_shards}",
        f"run_dir={args.out / size.name}",
        f"model.batches={args.batches}",
        *size.overrides,
        *args.overrides,
    ]


def read_run(run_dir: Path) -> dict:
    """One finished run: its training curve (loss against FLOPs) and exported held-out loss."""
    rows = [row for row in read_log(run_dir / "log.csv") if row.get("train_flops") is not None]
    if not rows:
        raise TaskError(f"{run_dir / 'log.csv'} has no FLOPs column; retrain this run")
    report = json.loads((run_dir / "eval.json").read_text())
    if "exported" not in report or report["exported"] not in report:
        raise TaskError(f"{run_dir / 'eval.json'} has no held-out loss; pass --val-shards")
    parameters = count_parameters(load_model(run_dir / "model.safetensors").cfg)
    return {
        "parameters": parameters["total"],
        "text_tower_parameters": parameters["text_tower"],
        "batches": report["batches"],
        "train_flops": rows[-1]["train_flops"],
        "heldout_loss": report[report["exported"]]["loss"],
        "curve": {
            "train_flops": [row["train_flops"] for row in rows],
            "loss": [row["loss"] for row in rows],
        },
    }


def loss_at(curve: dict, flops: float, window: int = 5) -> float | None:
    """The training loss at ``flops`` (mean of the ``window`` logged points up to it), or None
    past the curve's end."""
    x, y = np.asarray(curve["train_flops"]), np.asarray(curve["loss"])
    if flops > x[-1] * (1 + 1e-9):
        return None
    last = int(np.searchsorted(x, flops, side="right"))
    return float(np.mean(y[max(0, last - window) : last])) if last else None


def summarise(runs: dict[str, dict]) -> dict:
    """Per size: parameters, FLOPs, held-out loss, and the training loss of every size at each
    run's final FLOPs (the budgets), so sizes are compared at equal compute."""
    budgets = sorted(run["train_flops"] for run in runs.values())
    at_budget = {
        f"{budget:.3e}": {name: loss_at(run["curve"], budget) for name, run in runs.items()}
        for budget in budgets
    }
    best = {
        budget: min((loss, name) for name, loss in losses.items() if loss is not None)[1]
        for budget, losses in at_budget.items()
    }
    return {"runs": runs, "train_loss_at_budget": at_budget, "best_at_budget": best}


def format_table(summary: dict) -> str:
    runs = summary["runs"]
    lines = [
        "| size | parameters (text tower) | training TFLOPs | held-out nats/token |",
        "|---|---:|---:|---:|",
    ]
    for name, run in runs.items():
        lines.append(
            f"| {name} | {run['parameters'] / 1e6:.2f}M ({run['text_tower_parameters'] / 1e6:.2f}M)"
            f" | {run['train_flops'] / 1e12:.1f} | {run['heldout_loss']:.4f} |"
        )
    lines += ["", "training loss at equal FLOPs (mean of the last 5 logged points):", ""]
    names = list(runs)
    lines += ["| TFLOPs | " + " | ".join(names) + " | lowest |", "|---" * (len(names) + 2) + "|"]
    for budget, losses in summary["train_loss_at_budget"].items():
        cells = [f"{losses[n]:.4f}" if losses[n] is not None else "" for n in names]
        lines.append(
            f"| {float(budget) / 1e12:.1f} | "
            + " | ".join(cells)
            + f" | {summary['best_at_budget'][budget]} |"
        )
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> Path:
    """Training loss against FLOPs (log scale), one line per size, held-out loss as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, run in summary["runs"].items():
        curve = run["curve"]
        (line,) = ax.plot(curve["train_flops"], curve["loss"], lw=1, label=name)
        ax.plot(run["train_flops"], run["heldout_loss"], "o", color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel("loss (nats/token); dots: held-out")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shards", type=Path, required=True, help="training shards")
    parser.add_argument("--val-shards", type=Path, required=True, help="held-out shards")
    parser.add_argument(
        "--sizes",
        default=",".join(DEFAULT_SIZES),
        help=f"comma-separated, from {', '.join(SIZES)}",
    )
    parser.add_argument("--batches", type=int, default=250, help="batches of 8 per size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (threads split)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "scaling" / "default")
    parser.add_argument("overrides", nargs="*", help="more nuwa-train overrides, after --")


def run(args: argparse.Namespace) -> int:
    names = [name.strip() for name in args.sizes.split(",") if name.strip()]
    unknown = [name for name in names if name not in SIZES]
    if unknown or not names:
        raise TaskError(f"unknown size(s) {unknown}; choose from {', '.join(SIZES)}")
    for path in (args.shards, args.val_shards):
        if not (path / "index.json").is_file():
            raise TaskError(f"{path} holds no token shards; write them with nuwa-data tokenize")
    sizes = [SIZES[name] for name in names]
    training = [
        (train_command(size, args), args.out / size.name / "train.log")
        for size in sizes
        if not (args.out / size.name / "eval.json").is_file()
    ]
    run_parallel(training, args.jobs)
    summary = summarise({size.name: read_run(args.out / size.name) for size in sizes})
    summary["shards"], summary["val_shards"] = str(args.shards), str(args.val_shards)
    summary["command"] = " ".join(["python -m benchmarks.experiments.scaling", *sys.argv[1:]])
    atomic_write_json(args.out / "scaling.json", summary)
    print(format_table(summary))
    print(f"wrote {args.out / 'scaling.json'} and {plot(summary, args.out / 'scaling.png')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.experiments.scaling", description=__doc__.split("\n\n")[0]
    )
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except TaskError as err:
        print(f"scaling: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
