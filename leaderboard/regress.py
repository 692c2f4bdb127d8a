"""Regression check: a run's metrics against the accepted leaderboard rows, direction-aware.

The accepted row for a metric is the newest table row with the same key (task@version, metric id,
model, setting, data set); see ``table.accepted_rows``. Each metric is judged by one rule:

- ``tolerance``: a tolerance was given for it explicitly; it regresses when it is worse than the
  accepted value by more than that (higher for lower-is-better metrics, lower otherwise).
- ``interval``: otherwise, when the run has a bootstrap interval over samples; it regresses when
  the accepted value lies outside that interval on the worse side (below it for lower-is-better
  metrics, above it for higher-is-better ones). A change within the run's sampling noise passes.
- ``tolerance, no interval``: a run without an interval (too few samples, or a results file from
  before intervals) is judged by the fallback tolerance (default: no worsening allowed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .results import Results, rows_from_results
from .schema import LeaderboardError, Row
from .table import accepted_rows

Rule = Literal["tolerance", "interval", "tolerance, no interval"]


@dataclass(frozen=True)
class Tolerance:
    """Allowed worsening: the larger of ``absolute`` and ``relative`` × |accepted value|."""

    absolute: float = 0.0
    relative: float = 0.0

    def allowed(self, accepted: float) -> float:
        """The allowed worsening for one accepted value (same unit as the metric)."""
        return max(self.absolute, self.relative * abs(accepted))


@dataclass(frozen=True)
class Verdict:
    """One metric of a run against its accepted row: the rule that judged it and the outcome.
    ``allowed`` is the tolerance rules' allowed worsening (0 under the interval rule)."""

    accepted: Row
    run: Row
    rule: Rule
    allowed: float
    regressed: bool

    @property
    def worse_by(self) -> float:
        """How much worse the run is than the accepted row (negative: better), in its unit."""
        return _worse_by(self.run, self.accepted)

    def reason(self) -> str:
        """The change, and why the rule passed or failed it, with the rule's name."""
        worse_by = self.worse_by
        change = f"{'worse' if worse_by > 0 else 'better'} by {abs(worse_by):.4f}"
        if self.rule == "interval":
            run, where = self.run, "inside"
            if self.accepted.value < run.ci_low:
                where = "below"
            elif self.accepted.value > run.ci_high:
                where = "above"
            return (
                f"{change}; the accepted value lies {where} this run's {100 * run.ci_level:g}% "
                f"interval [{run.ci_low:.4f}, {run.ci_high:.4f}] (rule: interval)"
            )
        compare = ">" if self.regressed else "<="
        rule = "tolerance" if self.rule == "tolerance" else "tolerance; this run has no interval"
        return f"{change} {compare} tolerance {self.allowed:.4f} (rule: {rule})"

    def summary(self) -> str:
        """One report line: outcome, metric, both values and the reason."""
        outcome = "REGRESSED" if self.regressed else "ok"
        return (
            f"{outcome:<9} {self.run.metric}: {self.run.value:.4f} vs accepted "
            f"{self.accepted.value:.4f}; {self.reason()}"
        )

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
                f"    {self.reason()}   (metric id {run.metric_id})",
            ]
        )


def _worse_by(run: Row, accepted: Row) -> float:
    delta = run.value - accepted.value
    return delta if run.better == "lower" else -delta


def _tolerance_for(row: Row, tolerances: Mapping[str, Tolerance | float]) -> Tolerance | None:
    for name in (row.metric_id, row.metric_base, "*"):
        if name in tolerances:
            tolerance = tolerances[name]
            return tolerance if isinstance(tolerance, Tolerance) else Tolerance(float(tolerance))
    return None


def _judge(
    run: Row,
    accepted: Row,
    tolerances: Mapping[str, Tolerance | float],
    fallback: Mapping[str, Tolerance | float],
) -> Verdict:
    explicit = _tolerance_for(run, tolerances)
    if explicit is None and run.has_interval:
        if run.better == "lower":
            regressed = accepted.value < run.ci_low
        else:
            regressed = accepted.value > run.ci_high
        return Verdict(accepted, run, "interval", 0.0, regressed)
    rule: Rule = "tolerance" if explicit is not None else "tolerance, no interval"
    tolerance = explicit or _tolerance_for(run, fallback) or Tolerance()
    allowed = tolerance.allowed(accepted.value)
    return Verdict(accepted, run, rule, allowed, _worse_by(run, accepted) > allowed)


def judge_run(
    results: Results,
    table: Sequence[Row],
    tolerances: Mapping[str, Tolerance | float] | None = None,
    fallback: Mapping[str, Tolerance | float] | None = None,
) -> list[Verdict]:
    """A verdict for every metric of ``results`` against the accepted rows of ``table``.

    ``tolerances`` and ``fallback`` map a metric id, a quantity (``block_fid``) or ``"*"`` to a
    Tolerance or an absolute float; the most specific key wins. A metric matched in
    ``tolerances`` is judged by it; otherwise by the run's interval when it has one, else by
    ``fallback`` (default 0: no worsening allowed). A metric with no accepted row is an error,
    not a pass: the message lists what the table does hold for it.
    """
    tolerances, fallback = tolerances or {}, fallback or {}
    accepted = {row.key: row for row in accepted_rows(table) if row.source == "ours"}
    verdicts, missing = [], []
    for run in rows_from_results(results):
        baseline = accepted.get(run.key)
        if baseline is None:
            missing.append(run)
        else:
            verdicts.append(_judge(run, baseline, tolerances, fallback))
    if missing:
        raise LeaderboardError(
            "; ".join(_missing_message(run, accepted.values()) for run in missing)
        )
    return verdicts


def compare_to_baseline(
    results: Results,
    table: Sequence[Row],
    tolerances: Mapping[str, Tolerance | float] | None = None,
    fallback: Mapping[str, Tolerance | float] | None = None,
) -> list[Verdict]:
    """The verdicts of ``judge_run`` that are regressions (empty: everything passed)."""
    return [v for v in judge_run(results, table, tolerances, fallback) if v.regressed]


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


def format_verdicts(verdicts: Sequence[Verdict]) -> str:
    """The report a CI log shows: one line per metric with the rule that judged it, then every
    regression's diff, then a one-line outcome."""
    lines = [verdict.summary() for verdict in verdicts]
    regressions = [verdict for verdict in verdicts if verdict.regressed]
    if not regressions:
        lines.append(f"OK: {len(verdicts)} metric(s) pass against the accepted rows")
    else:
        lines += [regression.describe() for regression in regressions]
        lines.append(f"FAILED: {len(regressions)} of {len(verdicts)} metric(s) regressed")
    return "\n".join(lines) + "\n"
