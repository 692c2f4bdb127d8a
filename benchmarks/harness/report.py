"""What a run prints: each metric with its interval, the paper's number, and why they differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.harness.run import RunOutcome
from leaderboard import LeaderboardError, Row, load_table, paper_rows, rows_from_results
from leaderboard.table import find_paper_row


def _paper_note(row: Row, paper: list[Row]) -> tuple[str, str]:
    """(paper value, note) for one of our rows: a difference only where it is comparable."""
    try:
        match = find_paper_row(row, paper)
    except LeaderboardError:
        match = None
    if match is None:
        return "-", "no paper number"
    if not row.paper_comparable:
        why = row.not_comparable_reasons() or ["protocol differs (sample count or overrides)"]
        return f"{match.value:.2f}", "NOT COMPARABLE: " + "; ".join(why)
    return f"{match.value:.2f}", f"Δ {row.value - match.value:+.2f} vs {match.paper_ref}"


def _interval_text(metric: dict[str, Any]) -> str:
    """A metric entry's bootstrap interval, ``[low, high]`` (its level when not 95%), or "none"
    and the recorded reason."""
    interval = metric.get("interval")
    if interval is None:
        why = metric.get("no_interval")
        return f"none ({why})" if why else "none"
    level = "" if interval["level"] == 0.95 else f" @{100 * interval['level']:g}%"
    return f"[{interval['low']:.4f}, {interval['high']:.4f}]{level}"


def format_outcome(outcome: RunOutcome, table: Path | None) -> str:
    """The table a run prints: each metric with its bootstrap 95% interval, the paper's number
    for it, and why they differ."""
    results = outcome.results
    rows = rows_from_results(results, outcome.path)
    source = load_table(table) if table and table.exists() else paper_rows()
    paper = [row for row in source if row.source == "paper"]
    intervals = {metric["name"]: _interval_text(metric) for metric in results["metrics"]}
    width = max(len(row.metric) for row in rows)
    span = max(len("95% interval"), *(len(text) for text in intervals.values()))
    model, dataset = results["model"], results["dataset"]
    lines = [
        f"{results['task']['name']}@{results['task']['version']} · {dataset['name']} · "
        f"{model['name']}@{model['checkpoint_sha256'][:8]} · {model['setting'] or 'default'} · "
        f"n={results['n_samples']['effective']}",
        *(f"  note: {notice}" for notice in outcome.notices),
        f"  {'metric':<{width}}  {'ours':>10}  {'95% interval':<{span}}  {'paper':>8}  note",
    ]
    for row in rows:
        paper_value, note = _paper_note(row, paper)
        lines.append(
            f"  {row.metric:<{width}}  {row.value:>10.4f}  {intervals[row.metric]:<{span}}  "
            f"{paper_value:>8}  {note}"
        )
    times = results["wall_time_s"]
    reused = " · reused a finished run, nothing recomputed" if outcome.reused else ""
    lines += [
        f"  wall time {times['total']:.1f} s (generation {times.get('generation', 0):.1f} s, "
        f"metrics {times.get('metrics', 0):.1f} s){reused}",
        f"  results  {outcome.path}",
        f"  grid     {outcome.path.parent / 'grid.png'}",
    ]
    if table is not None:
        lines.append(f"  leaderboard  {table} (+{outcome.rows_added} rows)")
    return "\n".join(lines) + "\n"
