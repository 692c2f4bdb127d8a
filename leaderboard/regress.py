"""Regression check: a run's metrics against the accepted leaderboard rows, direction-aware.

The accepted row for a metric is the newest table row with the same key (task@version, metric id,
model, setting, data set); see ``table.accepted_rows``. A metric regresses when it is worse than
that row by more than its tolerance (higher for lower-is-better metrics, lower otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .results import Results, rows_from_results
from .schema import LeaderboardError, Row
from .table import accepted_rows


@dataclass(frozen=True)
class Tolerance:
    """Allowed worsening: the larger of ``absolute`` and ``relative`` × |accepted value|."""

    absolute: float = 0.0
    relative: float = 0.0

    def allowed(self, accepted: float) -> float:
        """The allowed worsening for one accepted value (same unit as the metric)."""
        return max(self.absolute, self.relative * abs(accepted))


@dataclass(frozen=True)
class Regression:
    """One metric of a run that is worse than its accepted row beyond tolerance."""

    accepted: Row
    run: Row
    allowed: float

    @property
    def worse_by(self) -> float:
        """How much worse the run is (positive), in the metric's unit."""
        delta = self.run.value - self.accepted.value
        return delta if self.run.better == "lower" else -delta

    def describe(self) -> str:
        """A readable multi-line diff: the accepted number, the run's, and by how much."""
        accepted, run = self.accepted, self.run
        return "\n".join(
            [
                f"REGRESSION {run.task_label} · {run.metric} ({run.better} is better) · "
                f"{run.model} · {run.setting or '-'} · {run.dataset}",
                f"  - accepted {accepted.value:>12.4f}  checkpoint "
                f"{accepted.checkpoint_sha256[:12]}  {accepted.results_file or accepted.created}",
                f"  + this run {run.value:>12.4f}  checkpoint {run.checkpoint_sha256[:12]}",
                f"    worse by {self.worse_by:.4f} > tolerance "
                f"{self.allowed:.4f}   (metric id {run.metric_id})",
            ]
        )


def _tolerance_for(row: Row, tolerances: Mapping[str, Tolerance | float]) -> Tolerance:
    for name in (row.metric_id, row.metric_base, "*"):
        if name in tolerances:
            tolerance = tolerances[name]
            return tolerance if isinstance(tolerance, Tolerance) else Tolerance(float(tolerance))
    return Tolerance()


def compare_to_baseline(
    results: Results,
    table: Sequence[Row],
    tolerances: Mapping[str, Tolerance | float] | None = None,
) -> list[Regression]:
    """Regressions of ``results`` against the accepted rows of ``table``.

    ``tolerances`` maps a metric id, a quantity (``block_fid``) or ``"*"`` to a Tolerance or an
    absolute float; the most specific wins; default 0 (no worsening allowed). A metric with no
    accepted row is an error, not a pass: the message lists what the table does hold for it.
    """
    tolerances = tolerances or {}
    accepted = {row.key: row for row in accepted_rows(table) if row.source == "ours"}
    regressions, missing = [], []
    for run in rows_from_results(results):
        baseline = accepted.get(run.key)
        if baseline is None:
            missing.append(run)
            continue
        allowed = _tolerance_for(run, tolerances).allowed(baseline.value)
        regression = Regression(accepted=baseline, run=run, allowed=allowed)
        if regression.worse_by > allowed:
            regressions.append(regression)
    if missing:
        raise LeaderboardError(
            "; ".join(_missing_message(run, accepted.values()) for run in missing)
        )
    return regressions


def _missing_message(run: Row, accepted: Iterable[Row]) -> str:
    similar = sorted(
        {
            f"{row.metric_id} ({row.model}, {row.setting or '-'}, {row.dataset})"
            for row in accepted
            if row.task == run.task and row.metric_base == run.metric_base
        }
    )
    held = f"; the table holds {', '.join(similar)}" if similar else ""
    return (
        f"no accepted row for {run.task_label} · {run.metric} · {run.model} · "
        f"{run.setting or '-'} · {run.dataset} (metric id {run.metric_id}){held}"
    )


def format_regressions(regressions: Sequence[Regression], n_compared: int) -> str:
    """The report a CI log shows: every regression's diff, or one line saying all passed."""
    if not regressions:
        return f"OK: {n_compared} metric(s) within tolerance of the accepted rows\n"
    diffs = "\n".join(regression.describe() for regression in regressions)
    return f"{diffs}\nFAILED: {len(regressions)} of {n_compared} metric(s) regressed\n"
