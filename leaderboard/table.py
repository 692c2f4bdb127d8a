"""The table file: load, cross-row validation, locked atomic updates, and the accepted rows.

A *column* is what one rendering column shows: (task@version, readable metric name). It holds one
metric definition, so all its rows share one metric id. Within a column, each data set is either
paper-comparable or not, never both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from filelock import FileLock, Timeout

from nuwa.io import atomic_write_text, read_text_file

from .schema import LeaderboardError, Row, check_row, created_time, row_from_json, row_to_json

DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "leaderboard.jsonl"
LOCK_TIMEOUT_S = 120.0


def load_table(path: str | Path = DEFAULT_TABLE, missing_ok: bool = False) -> list[Row]:
    """Read and check every row of a JSONL table (cross-row rules: ``validate_table``)."""
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return []
        raise LeaderboardError(f"no leaderboard table at {path}")
    lines = read_text_file(path, "a leaderboard table (JSONL)", LeaderboardError).splitlines()
    return [
        row_from_json(line, f"{path.name} line {number}")
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]


def validate_table(rows: Sequence[Row]) -> None:
    """Raise LeaderboardError on the first broken rule, row-level or cross-row.

    Cross-row rules: one metric id per column (and one name per id within a task version); one
    quantity per metric id and one direction per quantity; a data set's rows in a column are all
    paper-comparable or none are; paper rows are unique; each ``paper_ref`` names at most one
    paper row.
    """
    for row in rows:
        check_row(row)
    _check_metric_definitions(rows)
    _check_comparable_columns(rows)
    paper = [row for row in rows if row.source == "paper"]
    seen: dict[tuple, Row] = {}
    for row in paper:
        if row.key in seen:
            raise LeaderboardError(f"duplicate paper row {row.describe()}")
        seen[row.key] = row
    for row in rows:
        if row.source == "ours" and row.paper_ref:
            find_paper_row(row, paper)


def _check_metric_definitions(rows: Sequence[Row]) -> None:
    id_of_column: dict[tuple[str, str], Row] = {}
    name_of_id: dict[tuple[str, str], Row] = {}
    meaning_of_id: dict[str, Row] = {}
    direction_of_base: dict[str, Row] = {}
    for row in rows:
        first = id_of_column.setdefault((row.task_label, row.metric), row)
        if first.metric_id != row.metric_id:
            raise LeaderboardError(
                f"column {row.task_label} · {row.metric!r} mixes metric ids {first.metric_id!r} "
                f"({first.describe()}) and {row.metric_id!r} ({row.describe()}); a changed metric "
                "definition needs its own readable name or a task version bump"
            )
        first = name_of_id.setdefault((row.task_label, row.metric_id), row)
        if first.metric != row.metric:
            raise LeaderboardError(
                f"metric id {row.metric_id!r} in {row.task_label} is shown under two names, "
                f"{first.metric!r} and {row.metric!r}"
            )
        first = meaning_of_id.setdefault(row.metric_id, row)
        if first.metric_base != row.metric_base:
            raise LeaderboardError(
                f"metric id {row.metric_id!r} measures {first.metric_base} in {first.describe()} "
                f"but {row.metric_base} in {row.describe()}"
            )
        first = direction_of_base.setdefault(row.metric_base, row)
        if first.better != row.better:
            raise LeaderboardError(
                f"quantity {row.metric_base!r} is {first.better}-is-better in {first.describe()} "
                f"but {row.better}-is-better in {row.describe()}"
            )


def _check_comparable_columns(rows: Sequence[Row]) -> None:
    first_in: dict[tuple[str, str, str], Row] = {}
    for row in rows:
        first = first_in.setdefault((row.task_label, row.metric, row.dataset), row)
        if first.paper_comparable != row.paper_comparable:
            comparable, other = (first, row) if first.paper_comparable else (row, first)
            raise LeaderboardError(
                f"{other.describe()} is not paper-comparable but its column already holds the "
                f"paper-comparable {comparable.describe()}; give it its own metric name or data set"
            )


def find_paper_row(row: Row, paper_rows: Iterable[Row]) -> Row | None:
    """The paper row that ``row.paper_ref`` (``table/method[/setting]``) names for the same task
    and quantity; None when the paper has no such number; error when the reference is ambiguous."""
    if not row.paper_ref:
        return None
    parts = row.paper_ref.split("/", 2)
    if len(parts) < 2 or not all(parts[:2]):
        raise LeaderboardError(f"{row.describe()}: paper_ref {row.paper_ref!r} is not table/method")
    matches = [
        paper
        for paper in paper_rows
        if paper.task == row.task
        and paper.metric_base == row.metric_base
        and paper.paper_ref.split("/", 2)[: len(parts)] == parts
    ]
    if len(matches) > 1:
        settings = sorted(paper.setting for paper in matches)
        raise LeaderboardError(
            f"{row.describe()}: paper_ref {row.paper_ref!r} matches {len(matches)} paper rows; "
            f"add the setting, one of {settings}"
        )
    return matches[0] if matches else None


def accepted_rows(rows: Sequence[Row]) -> list[Row]:
    """The newest row per key (by ``created``, then file order), in the order they first appear.

    The file keeps every appended row as history; renderings and regression use these.
    """
    newest: dict[tuple, tuple[int, Row]] = {}
    by_time = sorted(enumerate(rows), key=lambda item: (created_time(item[1]), item[0]))
    for position, row in by_time:
        first_position = newest.get(row.key, (position, row))[0]
        newest[row.key] = (min(first_position, position), row)
    return [row for _, row in sorted(newest.values(), key=lambda item: item[0])]


def write_table(path: str | Path, rows: Sequence[Row]) -> None:
    """Validate ``rows`` and write them as the whole table, atomically (no lock; see update)."""
    validate_table(rows)
    atomic_write_text(path, "".join(row_to_json(row) + "\n" for row in rows))


def update_table(path: str | Path, change: Callable[[list[Row]], list[Row]]) -> list[Row]:
    """Apply ``change`` to the table under an exclusive file lock and write the result atomically.

    Concurrent writers queue on ``<table>.lock``; each reads the table only after taking the lock,
    so no writer's rows are lost. A change that breaks a rule leaves the file untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S):
            rows = load_table(path, missing_ok=True)
            updated = change(list(rows))
            if updated != rows or not path.exists():
                write_table(path, updated)
            return updated
    except Timeout:
        raise LeaderboardError(
            f"{path} stayed locked for {LOCK_TIMEOUT_S:.0f} s by another writer ({path}.lock)"
        ) from None


def append_rows(new_rows: Iterable[Row], path: str | Path = DEFAULT_TABLE) -> int:
    """Append rows under the lock, skipping rows already present verbatim; returns how many were
    added. Refuses (and writes nothing) if any rule breaks."""
    new_rows = list(new_rows)
    for row in new_rows:
        check_row(row)
    added = 0

    def add(rows: list[Row]) -> list[Row]:
        nonlocal added
        present = set(rows)
        fresh = [row for row in dict.fromkeys(new_rows) if row not in present]
        added = len(fresh)
        return rows + fresh

    update_table(path, add)
    return added
