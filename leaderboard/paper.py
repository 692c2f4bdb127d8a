"""The paper's own numbers (arXiv 2207.09814, Tables 2–6) as ``source=paper`` rows.

``data/paper_tables.csv`` is a verbatim copy of ``shared/data/paper-tables.csv`` so the package
works on its own; its SHA-256 is pinned here and in ``data/README.md``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from nuwa.io import sha256_file

from .provenance import git_commit, now_utc, portable_path
from .schema import PAPER_PROTOCOL, LeaderboardError, Row
from .table import DEFAULT_TABLE, update_table

PAPER_CSV = Path(__file__).resolve().parent / "data" / "paper_tables.csv"
PAPER_CSV_SHA256 = "72bbe17fdfcff1b704187f5f338e5a213234f81c7b6ea19dd1cde722437b9ceb"
PAPER_CSV_COLUMNS = ["table", "task", "method", "setting", "metric", "value", "better"]

METRIC_NAMES = {
    "block_fid": "Block-FID",
    "block_fid_x4": "Block-FID (×4)",
    "is": "IS",
    "clip_sim": "CLIP-SIM",
    "fvd": "FVD",
    "relative_inference_speed": "Inference speed (relative, ×)",
    "convergence_epoch": "Convergence epoch",
}
# The paper does not say which Inception/CLIP/I3D implementation it used (paper §4.3 names
# the metrics only).
PAPER_FEATURES = "unspecified (paper)"


def paper_dataset(task: str) -> str:
    """The paper's data set for one of its tasks: LHQC for images, LHQ-V for animation."""
    return "LHQ-V" if task.startswith("lhqv") else "LHQC"


def read_paper_csv(path: Path = PAPER_CSV) -> list[dict[str, str]]:
    """The CSV's records, after checking its pinned SHA-256 and header."""
    digest = sha256_file(path)
    if digest != PAPER_CSV_SHA256:
        raise LeaderboardError(
            f"{path} has sha256 {digest}, not the pinned {PAPER_CSV_SHA256}; if a paper number "
            "was corrected on purpose, update PAPER_CSV_SHA256 in leaderboard/paper.py and "
            "leaderboard/data/README.md"
        )
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != PAPER_CSV_COLUMNS:
            raise LeaderboardError(f"{path}: header {reader.fieldnames} != {PAPER_CSV_COLUMNS}")
        return list(reader)


def paper_rows(path: Path = PAPER_CSV, created: str = "", commit: str = "") -> list[Row]:
    """One Row per CSV record, in CSV order; ``created``/``commit`` default to now and HEAD."""
    created = created or now_utc()
    commit = commit or git_commit()[0]
    rows = []
    for record in read_paper_csv(path):
        metric = record["metric"]
        rows.append(
            Row(
                task=record["task"],
                task_version=None,
                metric=METRIC_NAMES.get(metric, metric),
                metric_id=f"paper:{metric}",
                metric_base=metric,
                value=float(record["value"]),
                better=record["better"],
                model=record["method"],
                checkpoint_sha256="",
                setting=record["setting"],
                dataset=paper_dataset(record["task"]),
                source="paper",
                paper_comparable=True,
                paper_ref=f"{record['table']}/{record['method']}/{record['setting']}",
                features=PAPER_FEATURES,
                n_samples=None,
                protocol=PAPER_PROTOCOL,
                created=created,
                git_commit=commit,
                results_file=portable_path(path),
            )
        )
    return rows


def _content(row: Row) -> Row:
    """A row without its import time and commit, to tell a real change from a re-import."""
    return Row(**{**row.__dict__, "created": "", "git_commit": ""})


def import_paper(table: str | Path = DEFAULT_TABLE, csv_path: Path = PAPER_CSV) -> int:
    """Replace the table's paper rows with the CSV's, keeping our rows; returns how many paper rows
    changed (0 when the table already holds exactly the CSV's numbers, and then nothing is written).
    """
    fresh = paper_rows(csv_path)
    changed = 0

    def replace(rows: list[Row]) -> list[Row]:
        nonlocal changed
        old = [row for row in rows if row.source == "paper"]
        if [_content(row) for row in old] == [_content(row) for row in fresh]:
            return rows
        changed = len(set(map(_content, fresh)) ^ set(map(_content, old)))
        return fresh + [row for row in rows if row.source == "ours"]

    update_table(table, replace)
    return changed
