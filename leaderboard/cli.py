"""``nuwa-eval leaderboard show|render|validate|import-paper|add|compare`` (also ``python -m
leaderboard``). Errors print one line and exit 2; ``compare`` exits 1 when a metric regressed.

Wiring into another CLI::

    sub = subparsers.add_parser("leaderboard", help="...")
    leaderboard.cli.add_arguments(sub)
    ...
    return leaderboard.cli.run(args)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from nuwa.errors import run_reporting
from nuwa.io import sha256_file

from .paper import import_paper
from .regress import Tolerance, format_verdicts, judge_run
from .render import PACKAGE_DIR, render_text, summary_line, write_renderings
from .results import load_results, rows_from_results
from .schema import SCHEMA_VERSION, LeaderboardError
from .table import DEFAULT_TABLE, append_rows, load_table, validate_table
from .view import comparison_frame

PROG = "nuwa-eval leaderboard"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the leaderboard subcommands (dest ``leaderboard_command``) to ``parser``."""
    commands = parser.add_subparsers(dest="leaderboard_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="JSONL table file")
        return sub

    show = command("show", "print ours beside the paper's numbers, per task and metric")
    show.add_argument("--task", help="only this task (e.g. lhqc_outpaint_up)")
    show.add_argument("--metric", help="only this quantity (e.g. block_fid)")
    render = command("render", "write LEADERBOARD.md and index.html")
    render.add_argument("--out-dir", type=Path, default=PACKAGE_DIR)
    validate = command("validate", "check the table (and results files) against every rule")
    validate.add_argument("results", nargs="*", type=Path, help="results JSON files to check")
    command("import-paper", "(re)import the paper's rows from leaderboard/data/paper_tables.csv")
    add = command("add", "append the rows of results JSON files to the table")
    add.add_argument("results", nargs="+", type=Path)
    compare = command(
        "compare",
        "compare a run with the accepted rows; exit 1 on regression (a metric with a bootstrap "
        "interval regresses when the accepted value lies outside it on the worse side)",
    )
    compare.add_argument("results", type=Path)
    compare.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="judge KEY by a tolerance instead of the run's interval: KEY is a metric id, a "
        "quantity (block_fid) or '*'; VALUE is absolute (0.5) or relative to the accepted value "
        "(5%%); repeatable",
    )


def parse_tolerances(items: list[str]) -> dict[str, Tolerance]:
    """``["block_fid=0.5", "is=5%"]`` -> {"block_fid": Tolerance(0.5), "is": Tolerance(0, 0.05)}."""
    tolerances = {}
    for item in items:
        key, sep, value = item.rpartition("=")
        try:
            if not sep or not key:
                raise ValueError
            relative = value.endswith("%")
            number = float(value.removesuffix("%"))
        except ValueError:
            raise LeaderboardError(
                f"--tolerance {item!r} is not KEY=NUMBER or KEY=NUMBER%"
            ) from None
        tolerances[key] = Tolerance(relative=number / 100) if relative else Tolerance(number)
    return tolerances


def _show(args: argparse.Namespace) -> int:
    frame = comparison_frame(load_table(args.table))
    if args.task:
        frame = frame[frame["task"] == args.task]
    if args.metric:
        frame = frame[frame["metric_base"] == args.metric]
    if frame.empty:
        raise LeaderboardError(f"no rows for task={args.task!r} metric={args.metric!r}")
    sys.stdout.write(render_text(frame))
    return 0


def render_inputs(table: Path) -> tuple[pd.DataFrame, str]:
    """What ``render`` draws from ``table``: the comparison frame and the provenance line."""
    rows = load_table(table)
    validate_table(rows)
    frame = comparison_frame(rows)
    paper = int((frame["source"] == "paper").sum())
    return frame, summary_line(len(frame), paper, table.name, sha256_file(table))


def _render(args: argparse.Namespace) -> int:
    frame, summary = render_inputs(args.table)
    for path in write_renderings(frame, args.out_dir, summary):
        print(f"wrote {path}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    rows = load_table(args.table)
    validate_table(rows)
    for path in args.results:
        validate_table(rows + rows_from_results(load_results(path), path))
        print(f"{path}: valid")
    print(f"{args.table}: {len(rows)} rows valid (schema v{SCHEMA_VERSION})")
    return 0


def _import_paper(args: argparse.Namespace) -> int:
    changed = import_paper(args.table)
    print(f"{args.table}: {changed} paper row(s) changed" if changed else "paper rows up to date")
    return 0


def _add(args: argparse.Namespace) -> int:
    rows = [row for path in args.results for row in rows_from_results(load_results(path), path)]
    added = append_rows(rows, args.table)
    print(f"{args.table}: added {added} row(s) ({len(rows) - added} already present)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    results = load_results(args.results)
    verdicts = judge_run(results, load_table(args.table), parse_tolerances(args.tolerance))
    sys.stdout.write(format_verdicts(verdicts))
    return 1 if any(verdict.regressed for verdict in verdicts) else 0


COMMANDS = {
    "show": _show,
    "render": _render,
    "validate": _validate,
    "import-paper": _import_paper,
    "add": _add,
    "compare": _compare,
}


def run(args: argparse.Namespace) -> int:
    """Run the parsed subcommand; returns the exit status (the caller reports errors)."""
    return COMMANDS[args.leaderboard_command](args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m leaderboard``."""
    parser = argparse.ArgumentParser(
        prog="python -m leaderboard",
        description="The versioned NUWA-Infinity results table: ours beside the paper's.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_reporting(parser.prog, lambda: run(args))
