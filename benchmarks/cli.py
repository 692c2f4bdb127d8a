"""`nuwa-eval`: one console script, one subcommand per task.

Each subcommand is a row of SUBCOMMANDS: name -> (one-line help, where its ``add_arguments`` and
``run`` live). Only the chosen subcommand's module is imported, so ``nuwa-eval --help`` answers
without loading torch. Errors a user can fix print as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple

from nuwa.errors import run_reporting


class Subcommand(NamedTuple):
    help: str
    module: str  # defines add_arguments(parser) and run(args) -> exit status
    task: str | None = None  # a task subcommand: benchmarks.task_commands adds the task's own flags


_TASKS = "benchmarks.task_commands"
SUBCOMMANDS: dict[str, Subcommand] = {
    "weights": Subcommand(
        "feature-extractor weights: list what is present and where, fetch one",
        "evaluation.weights_cli",
    ),
    "lhqc-outpaint": Subcommand(
        "Table 3: outpaint half of each test image (Block-FID on the generated half)",
        _TASKS,
        "lhqc-outpaint",
    ),
    "lhqc-t2i": Subcommand(
        "Table 2: text-to-image (Block-FID, Block-FID(x4), IS, CLIP-SIM)", _TASKS, "lhqc-t2i"
    ),
    "lhqv-animate": Subcommand(
        "Table 3b: animate the first frame of each test clip (FVD)", _TASKS, "lhqv-animate"
    ),
    "landscape-t2v": Subcommand(
        "text-to-video on captioned clips (FVD, CLIP-SIM)", _TASKS, "landscape-t2v"
    ),
    "reproduce": Subcommand(
        "a paper table: ours beside the paper's", "benchmarks.experiments.reproduce"
    ),
    "ablations": Subcommand(
        "train and evaluate the NCP/ADC ablation arms", "benchmarks.experiments.ablations"
    ),
    "regress": Subcommand(
        "the CI regression check against the accepted baseline", "benchmarks.experiments.regress"
    ),
    "leaderboard": Subcommand(
        "the versioned results table: show, render, validate, import-paper, add, compare",
        "leaderboard.cli",
    ),
    "perf": Subcommand(
        "run every performance benchmark and compare with its goals", "benchmarks.perf.runner"
    ),
}

TOOLS = """more tools (python -m ...):
  benchmarks.eval                           the task subcommands under torchrun (GPUs or nodes)
  benchmarks.diagnostics.metric_sanity      does a feature space see known damage (noise, flips)?
  benchmarks.diagnostics.layout_score       sky / ridge / ground heights of generated landscapes
  benchmarks.diagnostics.output_checks      seams, kept input, motion of what a user gets back
  benchmarks.diagnostics.tokenizer_quality  a VQGAN's reconstructions against the palette baseline
  benchmarks.diagnostics.attention_health   attention logit sizes and float32 stability
  benchmarks.experiments.bundle_history     rank the bundles in git history by a task's metrics
  benchmarks.perf.<script>                  one performance benchmark (nuwa-eval perf runs all)
  evaluation.landscape_train                train the landscape feature network
  nuwa.train.export                         make a bundle from a finished training run
  nuwa.model                                parameter counts of the model presets"""


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argparse tree: every subcommand with its help, and the flags of the one named in
    ``argv`` (importing its module; all of them when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        prog="nuwa-eval",
        description=__doc__.splitlines()[0],
        epilog=TOOLS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = (
        next((arg for arg in argv if not arg.startswith("-")), None) if argv is not None else None
    )
    for name, command in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        if argv is None or name == chosen:
            add_arguments(sub, command)
    return parser


def add_arguments(parser: argparse.ArgumentParser, command: Subcommand) -> None:
    """Import ``command``'s module and let it add its flags."""
    module = importlib.import_module(command.module)
    if command.task is None:
        module.add_arguments(parser)
    else:
        module.add_task_arguments(command.task)(parser)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nuwa-eval` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    command = SUBCOMMANDS[args.command]
    run = importlib.import_module(command.module).run
    return run_reporting(f"nuwa-eval {args.command}", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
