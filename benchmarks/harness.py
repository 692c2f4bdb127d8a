"""The task subcommands of ``nuwa-eval``: common flags, loading the model, running, printing.

    nuwa-eval lhqc-outpaint --direction up --data procedural
    nuwa-eval lhqc-t2i --x4 --data /data/lhq_1024 --device cuda -- sampler.top_k=768
    torchrun --nproc_per_node=4 -m benchmarks.eval lhqc-t2i --data /data/lhq_1024 --device cuda

Each subcommand is a row of TASK_COMMANDS: (help, which task, its extra flags). Errors a user can
fix print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.config import resolve_config
from benchmarks.data import choose_data
from benchmarks.distributed import Ranks, close_ranks, init_ranks, rank_device
from benchmarks.generate import Pipeline
from benchmarks.runner import Identity, RunOutcome, evaluate, format_outcome
from benchmarks.tasks import DIRECTIONS, TaskError, get_task
from evaluation.errors import EvaluationError
from leaderboard import DEFAULT_TABLE, LeaderboardError
from leaderboard import cli as leaderboard_cli
from nuwa.checkpoint import CheckpointError
from nuwa.data import DataError

DEFAULT_OUT = Path("outputs/eval")
USER_ERRORS = (TaskError, DataError, LeaderboardError, CheckpointError, EvaluationError, OSError)


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


# subcommand -> (help, task name from the parsed args, extra flags)
TASK_COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], str], Callable]] = {
    "lhqc-outpaint": (
        "Table 3: outpaint half of each test image (Block-FID on the generated half)",
        lambda args: f"lhqc_outpaint_{args.direction}",
        _outpaint_arguments,
    ),
    "lhqc-t2i": (
        "Table 2: text-to-image (Block-FID, Block-FID(x4), IS, CLIP-SIM)",
        lambda args: "lhqc_t2i",
        _t2i_arguments,
    ),
    "lhqv-animate": (
        "Table 3b: animate the first frame of each test clip (FVD)",
        lambda args: "lhqv_animate",
        _no_arguments,
    ),
    "landscape-t2v": (
        "text-to-video on captioned clips (FVD, CLIP-SIM)",
        lambda args: "landscape_t2v",
        _no_arguments,
    ),
}


def load_pipeline(
    checkpoint: str,
    tokenizer: str | None,
    pg_tokenizer: str | None,
    device: str,
    *,
    video: bool = False,
) -> Pipeline:
    """The model to evaluate: the bundled one (its video model for a ``video`` task), a
    checkpoint folder, or model + tokenizer files."""
    from nuwa.pipeline import Pipeline as NuwaPipeline

    if checkpoint == "bundled":
        return NuwaPipeline.from_bundled(device=device, video=video)
    path = Path(checkpoint)
    if path.is_dir():
        tokenizer = tokenizer or path / "tokenizer.safetensors"
        pg_path = path / "pg_tokenizer.safetensors"
        pg_tokenizer = pg_tokenizer or (pg_path if pg_path.exists() else None)
        path = path / "model.safetensors"
    if tokenizer is None:
        raise TaskError(f"--checkpoint {checkpoint} is a model file; pass --tokenizer too")
    return NuwaPipeline.from_checkpoint(path, tokenizer, pg_tokenizer, device=device)


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
    """The ``add_arguments`` of one task subcommand (for the SUBCOMMANDS table)."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        TASK_COMMANDS[name][2](parser)
        add_common_arguments(parser)

    add_arguments.__doc__ = TASK_COMMANDS[name][0]
    return add_arguments


def run_command(args: argparse.Namespace) -> int:
    """``run`` of every task subcommand: errors a user can fix print one line, status 2."""
    try:
        task = TASK_COMMANDS[args.command][1](args)
        return run_task(args, task, x4=getattr(args, "x4", False), text=getattr(args, "text", None))
    except USER_ERRORS as error:
        print(f"nuwa-eval {args.command}: error: {error}", file=sys.stderr)
        return 2


def add_leaderboard_arguments(parser: argparse.ArgumentParser) -> None:
    """The versioned results table: show, render, validate, import-paper, add, compare."""
    leaderboard_cli.add_arguments(parser)


# The task subcommands, in the form of benchmarks.cli.SUBCOMMANDS rows.
TASK_SUBCOMMANDS = {name: (add_task_arguments(name), run_command) for name in TASK_COMMANDS}
