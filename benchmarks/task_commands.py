"""The task subcommands of ``nuwa-eval``: common flags, loading the model, running, printing.

    nuwa-eval lhqc-outpaint --direction up --data procedural
    nuwa-eval lhqc-t2i --x4 --data /data/lhq_1024 --device cuda -- sampler.top_k=768
    torchrun --nproc_per_node=4 -m benchmarks.eval lhqc-t2i --data /data/lhq_1024 --device cuda

Each subcommand is a row of TASK_COMMANDS: which task, and its extra flags (its help is in
benchmarks.cli.SUBCOMMANDS).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from benchmarks.harness.config import resolve_config
from benchmarks.harness.data import choose_data
from benchmarks.harness.distributed import Ranks, close_ranks, init_ranks, rank_device
from benchmarks.harness.generate import Pipeline
from benchmarks.harness.report import format_outcome
from benchmarks.harness.run import Identity, RunOutcome, evaluate
from benchmarks.tasks import DIRECTIONS, get_task
from leaderboard import DEFAULT_TABLE

DEFAULT_OUT = Path("outputs/eval")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags every task subcommand takes (and ``reproduce``/``regress`` reuse)."""
    parser.add_argument(
        "--data",
        help="'procedural' (the embedded synthetic set) or a path to real data; default: the "
        "task's folder under $NUWA_DATA_DIR, and a stop with instructions if it is missing",
    )
    parser.add_argument(
        "--checkpoint",
        default="bundled",
        help="'bundled' (default), a folder with model.safetensors + tokenizer.safetensors "
        "[+ pg_tokenizer.safetensors], or a model file (then pass --tokenizer)",
    )
    parser.add_argument("--tokenizer", help="tokenizer file, with a model file in --checkpoint")
    parser.add_argument("--pg-tokenizer", help="PG-VQGAN file for video tasks (optional)")
    parser.add_argument(
        "--n",
        "--num-samples",
        dest="n",
        type=int,
        help="number of samples (default: the task's); under torchrun write --num-samples, "
        "since torchrun reads --n as an abbreviation of its own --nnodes/--nproc-per-node",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="global batch size (default 8)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps ...")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"caches and runs (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--table", type=Path, default=DEFAULT_TABLE, help="leaderboard table to append to"
    )
    parser.add_argument(
        "--no-leaderboard", action="store_true", help="do not append a leaderboard row"
    )
    parser.add_argument(
        "--features",
        choices=("auto", "paper", "surrogate", "offline"),
        default="auto",
        help="feature extractors: the paper's weights if present locally, else surrogates, and "
        "the landscape network for image metrics on the procedural set (auto); the paper's, "
        "required (paper); the labelled surrogates (surrogate); the landscape network and "
        "surrogates whatever is present (offline); per kind: -- features.image=NAME",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "overrides", nargs="*", help="hydra-style overrides after --, e.g. sampler.top_k=48"
    )


def _outpaint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--direction", required=True, choices=DIRECTIONS, help="where the canvas grows"
    )
    parser.add_argument(
        "--text",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="condition on the test caption (default: the task's, without text)",
    )


def _t2i_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--x4", action="store_true", help="also Block-FID(x4) on canvases four times wider"
    )


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


class TaskCommand(NamedTuple):
    task: Callable[[argparse.Namespace], str]  # the task's name, from the parsed flags
    add_flags: Callable[[argparse.ArgumentParser], None]  # the flags only this task takes


TASK_COMMANDS: dict[str, TaskCommand] = {
    "lhqc-outpaint": TaskCommand(
        lambda args: f"lhqc_outpaint_{args.direction}", _outpaint_arguments
    ),
    "lhqc-t2i": TaskCommand(lambda args: "lhqc_t2i", _t2i_arguments),
    "lhqv-animate": TaskCommand(lambda args: "lhqv_animate", _no_arguments),
    "landscape-t2v": TaskCommand(lambda args: "landscape_t2v", _no_arguments),
}


def load_pipeline(
    checkpoint: str,
    tokenizer: str | None,
    pg_tokenizer: str | None,
    device: str,
    *,
    video: bool = False,
) -> Pipeline:
    """The model to evaluate (``nuwa.pipeline.Pipeline.load``): the bundled one (its video model
    for a ``video`` task), a checkpoint folder, or model + tokenizer files."""
    from nuwa.pipeline import Pipeline as NuwaPipeline

    return NuwaPipeline.load(checkpoint, tokenizer, pg_tokenizer, device, video=video)


def checkpoint_label(checkpoint: str) -> str:
    """How results name a checkpoint: "bundled", or its absolute path."""
    return checkpoint if checkpoint == "bundled" else str(Path(checkpoint).resolve())


def execute(
    args: argparse.Namespace,
    task: str,
    pipeline: Pipeline,
    ranks: Ranks,
    *,
    x4: bool = False,
    text: bool | None = None,
    identity: Identity | None = None,
) -> RunOutcome:
    """Resolve ``task`` from the common flags in ``args`` and run it with ``pipeline``."""
    spec = get_task(task)
    config = resolve_config(
        spec,
        data=choose_data(spec, args.data),
        n=args.n,
        batch_size=args.batch_size,
        device=rank_device(args.device, ranks),
        text=text,
        x4=x4,
        features=args.features,
        overrides=args.overrides,
    )
    return evaluate(
        spec,
        config,
        pipeline,
        out=args.out,
        table=None if args.no_leaderboard else args.table,
        identity=identity or Identity(checkpoint=checkpoint_label(args.checkpoint)),
        ranks=ranks,
        progress=not args.quiet,
    )


def run_task(
    args: argparse.Namespace, task: str, *, x4: bool = False, text: bool | None = None
) -> int:
    """Run one task subcommand on every rank and print its table on rank 0."""
    ranks = init_ranks()
    try:
        choose_data(get_task(task), args.data)  # a missing data set fails before the model loads
        device = rank_device(args.device, ranks)
        video = get_task(task).kind in ("animate", "t2v")
        pipeline = load_pipeline(
            args.checkpoint, args.tokenizer, args.pg_tokenizer, device, video=video
        )
        outcome = execute(args, task, pipeline, ranks, x4=x4, text=text)
        if ranks.is_main:
            sys.stdout.write(format_outcome(outcome, None if args.no_leaderboard else args.table))
        return 0
    finally:
        close_ranks()


def add_task_arguments(name: str) -> Callable[[argparse.ArgumentParser], None]:
    """The ``add_arguments`` of one task subcommand: its own flags, then the common ones."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        TASK_COMMANDS[name].add_flags(parser)
        add_common_arguments(parser)

    return add_arguments


def run(args: argparse.Namespace) -> int:
    """``run`` of every task subcommand."""
    task = TASK_COMMANDS[args.command].task(args)
    return run_task(args, task, x4=getattr(args, "x4", False), text=getattr(args, "text", None))
