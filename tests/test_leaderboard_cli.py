"""The leaderboard CLI: add_arguments/run directly and ``python -m leaderboard`` end to end."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from leaderboard.cli import PROG, add_arguments, parse_tolerances, run
from leaderboard.regress import Tolerance
from leaderboard.results import write_results
from leaderboard.testing import example_metric, example_results
from nuwa.errors import run_reporting


def cli(*argv: str) -> int:
    """``nuwa-eval leaderboard *argv`` as the console script runs it (errors reported)."""
    parser = argparse.ArgumentParser(prog=PROG)
    add_arguments(parser)
    args = parser.parse_args(list(argv))
    return run_reporting(PROG, lambda: run(args))


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "t.jsonl"
    assert cli("import-paper", "--table", str(path)) == 0
    return path


def test_show_validate_render(table, tmp_path, capsys):
    assert cli("show", "--table", str(table), "--task", "lhqc_outpaint_down") == 0
    out = capsys.readouterr().out
    assert "== lhqc_outpaint_down · Block-FID (lower is better) ==" in out
    assert "11.47" in out and "9.84" in out and "26.38" in out
    assert cli("validate", "--table", str(table)) == 0
    assert "55 rows valid (schema v1)" in capsys.readouterr().out
    assert cli("render", "--table", str(table), "--out-dir", str(tmp_path / "site")) == 0
    assert (tmp_path / "site" / "LEADERBOARD.md").exists()
    assert (tmp_path / "site" / "index.html").exists()


def test_add_then_compare_exit_codes(table, tmp_path, capsys):
    accepted, degraded = tmp_path / "accepted.json", tmp_path / "degraded.json"
    write_results(accepted, example_results([example_metric(20.0)]))
    write_results(degraded, example_results([example_metric(23.0)], checkpoint=b"degraded"))
    assert cli("validate", "--table", str(table), str(accepted)) == 0
    assert cli("add", "--table", str(table), str(accepted)) == 0
    assert "added 1 row(s)" in capsys.readouterr().out
    assert cli("compare", "--table", str(table), str(accepted)) == 0
    assert cli("compare", "--table", str(table), str(degraded)) == 1
    assert "worse by 3.0000 > tolerance 0.0000" in capsys.readouterr().out
    assert cli("compare", "--table", str(table), str(degraded), "--tolerance", "*=15%") == 0


def test_parse_tolerances():
    assert parse_tolerances(["block_fid=0.5", "is=5%"]) == {
        "block_fid": Tolerance(0.5),
        "is": Tolerance(relative=0.05),
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "--table", "{missing}"],
        ["show", "--table", "{table}", "--task", "no_such_task"],
        ["add", "--table", "{table}", "{missing}"],
        ["compare", "--table", "{table}", "{bad_json}"],
        ["compare", "--table", "{table}", "{bad_json}", "--tolerance", "x"],
    ],
)
def test_errors_are_one_line_exit_2(table, tmp_path, capsys, argv):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"schema": "nuwa-eval-results"}')
    paths = {"missing": tmp_path / "nope", "table": table, "bad_json": bad_json}
    assert cli(*(arg.format(**paths) for arg in argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("nuwa-eval leaderboard: error: ") and err.count("\n") == 1


def test_python_dash_m(table):
    done = subprocess.run(
        [sys.executable, "-m", "leaderboard", "show", "--table", str(table), "--metric", "fvd"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "NUWA-Infinity (AR local decoder)" in done.stdout and "62.57" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "leaderboard", "validate", "--table", str(table) + ".missing"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1
