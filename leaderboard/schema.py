"""One leaderboard row: its fields, its key, its (de)serialisation and its own validity checks.

The table is JSONL, one ``Row`` per line, every line carrying ``schema_version``. Rules that
involve several rows (one metric id per column, paper-comparable columns) live in ``table.py``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, Literal

from nuwa.errors import UserError

SCHEMA_VERSION = 1
PAPER_PROTOCOL = "as reported in arXiv 2207.09814 Tables 2–6"

# Datasets whose names start with these are synthetic: their numbers are never paper-comparable.
SYNTHETIC_DATASET_PREFIXES = ("procedural",)
# The evaluation registry names every surrogate feature extractor with this word in its id.
SURROGATE_MARKER = "surrogate"
# Feature networks trained by this project on its own procedural set (evaluation.extractors).
DOMAIN_FEATURE_PREFIXES = ("landscape_net.",)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_COMMIT = re.compile(r"[0-9a-f]{40}|unknown")

Better = Literal["higher", "lower"]
Source = Literal["paper", "ours"]


class LeaderboardError(UserError, ValueError):
    """A table, row or results file breaks a leaderboard rule; the message is one readable line."""


@dataclass(frozen=True)
class Row:
    """One number on the leaderboard: a metric of one model (variant) on one task version.

    ``task_version`` is None only for paper rows (the paper's own, partly unspecified protocol).
    ``metric`` is the readable column name; ``metric_id`` is the exact definition (extractor,
    preprocessing, protocol, implementation version); ``metric_base`` is the quantity it
    measures (``block_fid``, ``is``, ...) and is what pairs our rows with the paper's.
    ``paper_ref`` names the paper row a run reproduces as ``table/method[/setting]``. Paths are
    relative to the repo root. ``ci_low``/``ci_high`` are the bootstrap interval over samples at
    ``ci_level`` (0.95), all three present or all None (rows from before intervals, paper rows,
    runs too small for one); lines without an interval omit them.
    """

    task: str
    task_version: int | None
    metric: str
    metric_id: str
    metric_base: str
    value: float
    better: Better
    model: str
    checkpoint_sha256: str
    setting: str
    dataset: str
    source: Source
    paper_comparable: bool
    paper_ref: str
    features: str
    n_samples: int | None
    protocol: str
    created: str
    git_commit: str
    results_file: str
    sample_grid: str = ""
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def has_interval(self) -> bool:
        return self.ci_low is not None

    @property
    def task_label(self) -> str:
        """``task@version``, or ``task@paper`` for the paper's rows."""
        return f"{self.task}@{'paper' if self.task_version is None else self.task_version}"

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """(task@version, metric id, model, setting, dataset): rows sharing it supersede each other.

        The model's setting (``with text``, an ablation variant) is part of its identity, and the
        data set is part of the key because procedural-set results live under their own name. The
        checkpoint is not: a new checkpoint under the same model name replaces the accepted row.
        """
        return (self.task_label, self.metric_id, self.model, self.setting, self.dataset)

    @property
    def model_label(self) -> str:
        """Model name plus the first 8 hex digits of its checkpoint, when there is one."""
        short = str(self.checkpoint_sha256)[:8]
        return f"{self.model}@{short}" if short else str(self.model)

    def describe(self) -> str:
        """A short human reference to this row for error messages."""
        where = f" ({self.results_file})" if self.results_file else ""
        return (
            f"{self.task_label} · {self.metric!r} · {self.model_label} · "
            f"{self.setting or '-'} · {self.dataset}{where}"
        )

    def not_comparable_reasons(self) -> list[str]:
        """Why this row's features or data set can never sit beside the paper's numbers."""
        reasons = []
        if any(SURROGATE_MARKER in s.lower() for s in (self.features, self.metric_id, self.metric)):
            reasons.append(f"surrogate features ({self.features or self.metric_id})")
        if self.features.startswith(DOMAIN_FEATURE_PREFIXES):
            reasons.append(f"domain features trained on the procedural set ({self.features})")
        if self.dataset.lower().startswith(SYNTHETIC_DATASET_PREFIXES):
            reasons.append(f"procedural dataset ({self.dataset})")
        return reasons


def created_time(row: Row) -> datetime | None:
    """The row's ``created`` as an aware datetime, or None if it is not ISO 8601 with a zone."""
    try:
        when = datetime.fromisoformat(row.created)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else None


FIELD_NAMES = tuple(f.name for f in fields(Row))
INTERVAL_FIELDS = ("ci_low", "ci_high", "ci_level")
_OPTIONAL = ("sample_grid", *INTERVAL_FIELDS, "schema_version")
_REQUIRED = tuple(f.name for f in fields(Row) if f.name not in _OPTIONAL)
_STRINGS = tuple(f.name for f in fields(Row) if f.type == "str")


def check_row(row: Row) -> None:
    """Raise LeaderboardError if one row is malformed on its own (types, enums, hashes, rules)."""
    where = row.describe()
    for name in _STRINGS:
        if not isinstance(getattr(row, name), str):
            raise LeaderboardError(f"{where}: field {name!r} must be a string")
    for name in ("task", "metric", "metric_id", "metric_base", "model", "dataset", "created"):
        if not getattr(row, name).strip():
            raise LeaderboardError(f"{where}: field {name!r} is empty")
    if isinstance(row.value, bool) or not isinstance(row.value, int | float):
        raise LeaderboardError(f"{where}: value must be a number, got {row.value!r}")
    if not math.isfinite(row.value):
        raise LeaderboardError(f"{where}: value {row.value!r} is not finite")
    if row.better not in ("higher", "lower"):
        raise LeaderboardError(f"{where}: better must be 'higher' or 'lower', got {row.better!r}")
    if row.source not in ("paper", "ours"):
        raise LeaderboardError(f"{where}: source must be 'paper' or 'ours', got {row.source!r}")
    if not isinstance(row.paper_comparable, bool):
        raise LeaderboardError(f"{where}: paper_comparable must be true or false")
    if row.n_samples is not None and (isinstance(row.n_samples, bool) or row.n_samples < 1):
        raise LeaderboardError(f"{where}: n_samples must be a positive integer or null")
    if created_time(row) is None:
        raise LeaderboardError(f"{where}: created {row.created!r} is not ISO 8601 with a timezone")
    if not _GIT_COMMIT.fullmatch(row.git_commit):
        raise LeaderboardError(f"{where}: git_commit must be 40 hex digits or 'unknown'")
    _check_interval(row, where)
    if row.source == "paper":
        _check_paper_row(row, where)
    else:
        _check_our_row(row, where)


def _check_interval(row: Row, where: str) -> None:
    bounds = [getattr(row, name) for name in INTERVAL_FIELDS]
    if all(bound is None for bound in bounds):
        return
    if any(isinstance(b, bool) or not isinstance(b, int | float) for b in bounds):
        raise LeaderboardError(f"{where}: ci_low, ci_high and ci_level must be numbers together")
    if row.source == "paper":
        raise LeaderboardError(f"{where}: paper rows carry no interval (the paper gives none)")
    if not (math.isfinite(row.ci_low) and math.isfinite(row.ci_high)):
        raise LeaderboardError(f"{where}: interval [{row.ci_low}, {row.ci_high}] is not finite")
    if row.ci_low > row.ci_high:
        raise LeaderboardError(f"{where}: ci_low {row.ci_low} is above ci_high {row.ci_high}")
    if not 0.0 < row.ci_level < 1.0:
        raise LeaderboardError(f"{where}: ci_level {row.ci_level} is not in (0, 1)")


def _check_paper_row(row: Row, where: str) -> None:
    if row.task_version is not None:
        raise LeaderboardError(f"{where}: paper rows have task_version null (the paper's protocol)")
    if row.metric_id != f"paper:{row.metric_base}":
        raise LeaderboardError(f"{where}: paper rows use metric id 'paper:{row.metric_base}'")
    if not row.paper_comparable or row.protocol != PAPER_PROTOCOL:
        raise LeaderboardError(f"{where}: paper rows are paper_comparable with the paper protocol")


def _check_our_row(row: Row, where: str) -> None:
    if isinstance(row.task_version, bool) or not isinstance(row.task_version, int):
        raise LeaderboardError(f"{where}: task_version must be an integer for source=ours")
    if row.task_version < 1:
        raise LeaderboardError(f"{where}: task_version must be >= 1")
    if row.metric_id.startswith("paper:"):
        raise LeaderboardError(f"{where}: metric ids 'paper:*' are reserved for the paper's rows")
    if not _SHA256.fullmatch(row.checkpoint_sha256):
        raise LeaderboardError(f"{where}: checkpoint_sha256 must be 64 lowercase hex digits")
    reasons = row.not_comparable_reasons()
    if row.paper_comparable and reasons:
        raise LeaderboardError(
            f"{where}: marked paper_comparable but uses {' and '.join(reasons)}; such numbers "
            "never go into a paper-comparable column"
        )


def row_to_json(row: Row) -> str:
    """One JSONL line (no newline), fields in declaration order so git diffs stay readable; the
    interval fields only when the row has an interval (older lines stay byte-identical)."""
    record = asdict(row)
    if not row.has_interval:
        for name in INTERVAL_FIELDS:
            del record[name]
    return json.dumps(record, ensure_ascii=False)


def row_from_dict(obj: Any, where: str) -> Row:
    """Build and check a Row from a parsed JSON object; ``where`` prefixes error messages."""
    if not isinstance(obj, dict):
        raise LeaderboardError(f"{where}: a row must be a JSON object")
    version = obj.get("schema_version")
    if version != SCHEMA_VERSION:
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise LeaderboardError(
                f"{where}: schema_version {version} is newer than this code's {SCHEMA_VERSION}; "
                "upgrade nuwa-infinity"
            )
        raise LeaderboardError(
            f"{where}: schema_version {version!r} is not supported (this code reads "
            f"{SCHEMA_VERSION})"
        )
    unknown = sorted(set(obj) - set(FIELD_NAMES))
    missing = [name for name in _REQUIRED if name not in obj]
    if unknown or missing:
        raise LeaderboardError(f"{where}: unknown fields {unknown}, missing fields {missing}")
    row = Row(**obj)
    check_row(row)
    return row


def row_from_json(line: str, where: str) -> Row:
    """Parse one JSONL line into a checked Row."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise LeaderboardError(f"{where}: invalid JSON ({err.msg})") from None
    return row_from_dict(obj, where)
