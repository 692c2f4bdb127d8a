"""Ours beside the paper's: the accepted rows as one comparison frame that every rendering reads.

Each of our rows is paired with the paper row its ``paper_ref`` names (same task and quantity).
A delta is shown only when the row is paper-comparable; otherwise the row carries a visible label
saying why not. Differences that remain even when comparable (our task version's protocol, a
reproduced data set) are labelled too, never hidden.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from .schema import Row
from .table import accepted_rows, find_paper_row

COLUMNS = [
    "task",
    "metric_base",
    "metric",
    "metric_id",
    "better",
    "source",
    "paper_comparable",
    "ref",
    "model",
    "setting",
    "dataset",
    "value",
    "ci_low",
    "ci_high",
    "ci_level",
    "n_samples",
    "paper_value",
    "delta",
    "note",
    "protocol",
    "sample_grid",
    "results_file",
]


HEADERS = [
    "source", "ref", "model", "setting", "dataset", "n", "value", "95% interval", "Δ vs paper",
    "note",
]  # fmt: skip
NUMERIC = {"n", "value", "95% interval", "Δ vs paper"}

LEGEND = (
    "Paper rows are the numbers printed in arXiv 2207.09814 (Tables 2–6), as reported. Our rows "
    "carry their task version (`task@N`, our protocol), data set and sample count. `Δ vs paper` "
    "(ours − paper) appears only where a row is paper-comparable; every other row says why not "
    "(surrogate or domain features, procedural data set, protocol). Rows on a reproduced data "
    "set say so. "
    "`95% interval` is a seeded bootstrap interval over the run's samples (shifted to centre on "
    "the value), where the run recorded one; rows of an ablation arm (`nuwa-ablation-...`) are "
    "means over training seeds and carry a Student-t interval over those seeds instead. The "
    "paper gives none."
)


def format_value(value: float | None) -> str:
    """The paper's number style: integers bare, |v| < 1 to 4 decimals, otherwise 2 decimals."""
    if value is None or math.isnan(value):
        return ""
    if value == int(value) and abs(value) >= 1:
        return f"{value:.0f}"
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"


def format_interval(low: float | None, high: float | None, level: float | None) -> str:
    """``[low, high]`` in ``format_value``'s style for the larger bound ("" without one); the
    level is appended when it is not 95%."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return ""
    digits = 4 if max(abs(low), abs(high)) < 1 else 2
    text = f"[{low:.{digits}f}, {high:.{digits}f}]"
    return text if level == 0.95 else f"{text} @{100 * level:g}%"


def format_delta(delta: float, reference: float) -> str:
    """A signed difference, to 4 decimals when the reference is below 1, else 2 ("" for NaN)."""
    if math.isnan(delta):
        return ""
    return f"{delta:+.4f}" if abs(reference) < 1 else f"{delta:+.2f}"


def _paper_label(paper: Row) -> str:
    table, method, setting = paper.paper_ref.split("/", 2)
    return f"{table} {method}" + (f" ({setting})" if setting else "")


def _ref(row: Row) -> str:
    """Where a number comes from: the paper's table, or our task version (``@1``)."""
    return row.paper_ref.split("/", 1)[0] if row.source == "paper" else f"@{row.task_version}"


def _compare(row: Row, paper: Row | None) -> tuple[float, float, str]:
    """(paper value, delta, note) for one of our rows."""
    reasons = row.not_comparable_reasons()
    if paper is None:
        labels = [f"no paper number for {row.metric_base}"] + reasons
        return math.nan, math.nan, "; ".join(labels)
    if not row.paper_comparable:
        why = "; ".join(reasons) or "protocol differs (see protocol)"
        return paper.value, math.nan, f"NOT COMPARABLE to {_paper_label(paper)}: {why}"
    delta = row.value - paper.value
    worse = delta > 0 if row.better == "lower" else delta < 0
    verdict = "equal" if delta == 0 else ("worse" if worse else "better")
    notes = [f"{verdict} than {_paper_label(paper)}", f"protocol: ours ({row.task_label})"]
    if row.dataset != paper.dataset:
        notes.append(f"dataset: {row.dataset}, paper: {paper.dataset}")
    return paper.value, delta, "; ".join(notes)


def comparison_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """The accepted rows in reading order (task, then quantity, in first-appearance order; paper
    rows before ours) with the columns in ``COLUMNS``; one line per row."""
    rows = accepted_rows(rows)
    paper_rows = [row for row in rows if row.source == "paper"]
    records = []
    for row in rows:
        paper_value, delta, note = (
            _compare(row, find_paper_row(row, paper_rows))
            if row.source == "ours"
            else (math.nan, math.nan, "")
        )
        records.append(
            {
                "task": row.task,
                "metric_base": row.metric_base,
                "metric": row.metric,
                "metric_id": row.metric_id,
                "better": row.better,
                "source": row.source,
                "paper_comparable": row.paper_comparable,
                "ref": row.paper_ref.split("/", 1)[0]
                if row.source == "paper"
                else f"@{row.task_version}",
                "model": row.model_label,
                "setting": row.setting,
                "dataset": row.dataset,
                "value": row.value,
                "ci_low": row.ci_low,
                "ci_high": row.ci_high,
                "ci_level": row.ci_level,
                "n_samples": row.n_samples,
                "paper_value": paper_value,
                "delta": delta,
                "note": note,
                "protocol": row.protocol,
                "sample_grid": row.sample_grid,
                "results_file": row.results_file,
            }
        )
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    if frame.empty:
        return frame
    frame["_task_order"] = frame.groupby("task", sort=False).ngroup()
    frame["_metric_order"] = frame.groupby(["task", "metric_base"], sort=False).ngroup()
    frame["_ours"] = frame["source"] == "ours"
    frame = frame.sort_values(["_task_order", "_metric_order", "_ours"], kind="stable")
    return frame.drop(columns=["_task_order", "_metric_order", "_ours"]).reset_index(drop=True)


def sections(frame: pd.DataFrame) -> list[tuple[str, str, str, pd.DataFrame]]:
    """(task, readable quantity, direction, rows) per (task, quantity) group, in reading order."""
    out = []
    for (task, _), group in frame.groupby(["task", "metric_base"], sort=False):
        paper = group[group["source"] == "paper"]
        title = (paper if len(paper) else group)["metric"].iloc[0]
        out.append((task, title, group["better"].iloc[0], group))
    return out


def section_cells(group: pd.DataFrame) -> list[list[str]]:
    """The display cells of one section, one list per row, in ``HEADERS`` order."""
    return [
        [
            row.source,
            row.ref,
            row.model,
            row.setting,
            row.dataset,
            "" if pd.isna(row.n_samples) else str(int(row.n_samples)),
            format_value(row.value),
            format_interval(row.ci_low, row.ci_high, row.ci_level),
            format_delta(row.delta, row.paper_value),
            row.note,
        ]
        for row in group.itertuples()
    ]


def metric_definitions(group: pd.DataFrame) -> list[str]:
    """``name = id`` for each of our metric columns in a section (paper ids are self-evident)."""
    ours = group[group["source"] == "ours"].drop_duplicates("metric_id")
    return [f"{row.metric} = {row.metric_id}" for row in ours.itertuples()]


def sample_grids(frame: pd.DataFrame, task: str) -> list[tuple[str, str]]:
    """(repo-relative grid path, caption) per distinct sample grid our rows of ``task`` record."""
    rows = frame[(frame["task"] == task) & (frame["sample_grid"] != "")]
    rows = rows.drop_duplicates("sample_grid")
    return [
        (row.sample_grid, f"{row.model} · {row.setting or 'default'} · {row.dataset}")
        for row in rows.itertuples()
    ]


def direction_text(better: str) -> str:
    """'lower is better' or 'higher is better'."""
    return "lower is better" if better == "lower" else "higher is better"
