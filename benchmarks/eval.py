"""``python -m benchmarks.eval <task> ...``: the task subcommands of ``nuwa-eval``, for torchrun.

    torchrun --nproc_per_node=4 -m benchmarks.eval lhqc-t2i --x4 --data /data/lhq_1024 --device cuda

Every rank generates its share of the global batches and extracts the features of its share of
the samples into the shared ``--out`` folder; rank 0 reduces them in order and writes the results,
which equal a single-process run exactly (benchmarks/harness/distributed.py). With several nodes,
--out must be on a filesystem all nodes share.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.cli import SUBCOMMANDS
from benchmarks.task_commands import TASK_COMMANDS, add_task_arguments, run
from nuwa.errors import run_reporting


def main(argv: list[str] | None = None) -> int:
    """Parse ``<task> [flags]`` and run it on every rank; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.eval", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in TASK_COMMANDS:
        add_task_arguments(name)(commands.add_parser(name, help=SUBCOMMANDS[name].help))
    args = parser.parse_args(argv)
    return run_reporting(f"benchmarks.eval {args.command}", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
