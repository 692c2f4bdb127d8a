"""`nuwa-eval`: one console script, one subcommand per task.

Each subcommand is a row of SUBCOMMANDS: name -> (add_arguments(parser), run(args) -> exit code).
Adding a harness is one line. Errors a user can fix (EvaluationError, missing files) print as one
line on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import leaderboard.cli
from benchmarks import ablations, harness, regress, reproduce
from benchmarks.perf import runner as perf
from evaluation import weights_cli
from evaluation.errors import EvaluationError

Subcommand = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

SUBCOMMANDS: dict[str, Subcommand] = {
    "weights": (weights_cli.add_arguments, weights_cli.run),
    **harness.TASK_SUBCOMMANDS,
    "reproduce": (reproduce.add_arguments, reproduce.run),
    "ablations": (ablations.add_arguments, ablations.run),
    "regress": (regress.add_arguments, regress.run),
    "leaderboard": (harness.add_leaderboard_arguments, leaderboard.cli.run),
    "perf": (perf.add_arguments, perf.run),
}


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every registered subcommand."""
    parser = argparse.ArgumentParser(prog="nuwa-eval", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, _) in SUBCOMMANDS.items():
        add_arguments(commands.add_parser(name, help=(add_arguments.__doc__ or "").splitlines()[0]))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nuwa-eval` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return SUBCOMMANDS[args.command][1](args)
    except (EvaluationError, OSError) as error:
        print(f"nuwa-eval {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
