"""The results JSON one harness run writes (lm-evaluation-harness style), and its leaderboard rows.

One file per (task, model, data set) run. The harness builds it with ``build_results`` (which
fills in environment, git commit and time), writes it with ``write_results`` and appends
``rows_from_results(results, path)`` to the table. Example (abridged)::

    {"schema": "nuwa-eval-results", "schema_version": 1,
     "task": {"name": "lhqc_outpaint_up", "version": 1, "config": {...full task definition...}},
     "model": {"name": "nuwa-tiny", "checkpoint": "...", "checkpoint_sha256": "<64 hex>",
               "setting": "without text"},
     "dataset": {"name": "procedural-landscapes-v1", "split": "test",
                 "manifest_sha256": "<64 hex>", "n_real": 64},
     "metrics": [{"id": "<evaluation MetricId.digest>",
                  "name": "Block-FID [inception_v3.surrogate_seed0@1]",
                  "base": "block_fid", "value": 143.2, "better": "lower",
                  "paper_comparable": false, "features": "inception_v3.surrogate_seed0@1",
                  "config": {...MetricId.config...}, "stderr": null,
                  "interval": {"low": 131.0, "high": 158.9, "level": 0.95, "replicates": 200,
                               "seed": 0, "method": "percentile, bias-shifted", "bias": 9.6}}],
     "n_samples": {"requested": 64, "effective": 64}, "samples_sha256": "<64 hex>",
     "seeds": {"torch": 0}, "config": {...resolved run config...}, "env": {"torch": "2.14.1", ...},
     "device": "cpu", "git_commit": "<40 hex>", "git_dirty": false, "created": "...Z",
     "wall_time_s": {"generation": 61.0, "metrics": 9.5, "total": 70.5},
     "paper_ref": "table3/NUWA-Infinity/without text", "protocol": "block_fid@1 ...",
     "artifacts": {"sample_grid": "grid.png"}, "extra": {}}

``interval`` is the metric's seeded bootstrap interval over samples (evaluation.bootstrap); it is
null when the run had none, with ``no_interval`` saying why (e.g. "n=4 < 8"); results files
written before intervals existed have neither key. Artifact paths are relative to the results
file's folder (or absolute). ``name`` is the
column's readable name and must stay the same only while ``id`` does: give it the extractor but
not the hash, so a changed definition under an unchanged name is refused by the table.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import UnionType
from typing import (
    Any,
    Literal,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from nuwa.io import atomic_write_json, read_text_file

from .provenance import git_commit, library_versions, now_utc, portable_path
from .schema import LeaderboardError, Row, check_row

RESULTS_SCHEMA = "nuwa-eval-results"
RESULTS_SCHEMA_VERSION = 1


class TaskInfo(TypedDict):
    name: str
    version: int
    config: dict[str, Any]  # the full task definition as run (data, regions, sample count, seeds)


class ModelInfo(TypedDict):
    name: str
    checkpoint: str  # where it was loaded from
    checkpoint_sha256: str
    setting: str  # the variant evaluated: "with text", "ADC.Emb post", "" for the default


class DatasetInfo(TypedDict):
    name: str  # "procedural-landscapes-v1", "lhqc-repro-v1", ...; never "LHQC" unless it is
    split: str
    manifest_sha256: str
    n_real: int


class _MetricRequired(TypedDict):
    id: str  # the evaluation registry's metric id (extractor, preprocessing, protocol, version)
    name: str  # the readable column name; surrogate extractors say so
    base: str  # the quantity, as in the paper CSV: block_fid, block_fid_x4, is, clip_sim, fvd, ...
    value: float
    better: Literal["higher", "lower"]
    paper_comparable: bool
    features: str  # feature-extractor id ("" when the metric needs none)
    config: dict[str, Any]  # the full expanded metric config


class _IntervalRequired(TypedDict):
    low: float
    high: float
    level: float  # 0.95 for a 95% interval
    replicates: int
    seed: int
    method: str  # "percentile, bias-shifted"


class IntervalInfo(_IntervalRequired, total=False):
    """A metric's bootstrap interval (``evaluation.bootstrap.Interval.to_json()``)."""

    bias: float  # mean of the replicates minus the value, subtracted from their percentiles


class MetricEntry(_MetricRequired, total=False):
    """One metric of a run as a results file stores it (``evaluation.MetricResult`` is what a
    metric object computes); ``stderr``, ``per_seed``, ``interval`` and ``no_interval`` are
    optional."""

    stderr: float | None
    per_seed: list[float]  # the value under each seed, when the run used several
    interval: IntervalInfo | None  # bootstrap interval over samples; null when there is none
    no_interval: str  # why ``interval`` is null


class SampleCounts(TypedDict):
    requested: int
    effective: int


class Results(TypedDict):
    schema: str
    schema_version: int
    task: TaskInfo
    model: ModelInfo
    dataset: DatasetInfo
    metrics: list[MetricEntry]
    n_samples: SampleCounts
    samples_sha256: str  # over the per-sample hashes in sample order (lm-eval's task_hashes)
    seeds: dict[str, int]
    config: dict[str, Any]
    env: dict[str, str]
    device: str
    git_commit: str
    git_dirty: bool
    created: str
    wall_time_s: dict[str, float]
    paper_ref: str
    protocol: str
    artifacts: dict[str, str]
    extra: dict[str, Any]


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _check(value: Any, hint: Any, where: str) -> None:
    """Raise LeaderboardError unless ``value`` matches the type ``hint``, recursing into
    TypedDicts (required and unknown keys), lists and dicts so the message names the exact field."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        options = [option for option in args if option is not type(None)]
        if value is None and len(options) < len(args):
            return
        if len(options) == 1:
            _check(value, options[0], where)
            return
    if is_typeddict(hint):
        if not isinstance(value, dict):
            raise LeaderboardError(f"{where} must be a JSON object")
        hints = get_type_hints(hint)
        missing = sorted(hint.__required_keys__ - set(value))
        unknown = sorted(set(value) - set(hints))
        if missing or unknown:
            raise LeaderboardError(f"{where}: missing fields {missing}, unknown fields {unknown}")
        for name, item in value.items():
            _check(item, hints[name], f"{where}.{name}")
    elif origin is list:
        if not isinstance(value, list):
            raise LeaderboardError(f"{where} must be a list")
        for index, item in enumerate(value):
            _check(item, args[0], f"{where}[{index}]")
    elif origin is dict:
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise LeaderboardError(f"{where} must be a JSON object")
        for key, item in value.items():
            _check(item, args[1], f"{where}.{key}")
    elif origin is Literal:
        if value not in args:
            raise LeaderboardError(f"{where} is {value!r}, not one of {list(args)}")
    elif not _is_leaf(value, hint):
        raise LeaderboardError(f"{where} is {type(value).__name__}, not {hint}")


def _is_leaf(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if get_origin(hint) in (Union, UnionType):
        return any(_is_leaf(value, option) for option in get_args(hint))
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, int | float)
    if hint is type(None):
        return value is None
    return isinstance(value, hint)


def validate_results(results: Any) -> Results:
    """Return ``results`` if it follows the results schema, else raise one readable
    LeaderboardError naming the offending field."""
    _check(results, Results, "results")
    if results["schema"] != RESULTS_SCHEMA:
        raise LeaderboardError(f"results.schema is {results['schema']!r}, not {RESULTS_SCHEMA!r}")
    if results["schema_version"] != RESULTS_SCHEMA_VERSION:
        raise LeaderboardError(
            f"results.schema_version {results['schema_version']} is not supported (this code "
            f"reads {RESULTS_SCHEMA_VERSION})"
        )
    for where, digest in (
        ("model.checkpoint_sha256", results["model"]["checkpoint_sha256"]),
        ("dataset.manifest_sha256", results["dataset"]["manifest_sha256"]),
        ("samples_sha256", results["samples_sha256"]),
    ):
        if not _SHA256.fullmatch(digest):
            raise LeaderboardError(f"results.{where} must be 64 lowercase hex digits")
    counts = results["n_samples"]
    if not 1 <= counts["effective"] <= counts["requested"]:
        raise LeaderboardError(f"results.n_samples needs 1 <= effective <= requested: {counts}")
    if not results["seeds"]:
        raise LeaderboardError("results.seeds is empty; record every seed the run used")
    times = results["wall_time_s"]
    if "total" not in times or any(not math.isfinite(t) or t < 0 for t in times.values()):
        raise LeaderboardError(
            f"results.wall_time_s needs a 'total' and finite times >= 0: {times}"
        )
    _check_metrics(results["metrics"])
    try:
        datetime.fromisoformat(results["created"])
        json.dumps(results, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise LeaderboardError(f"results is not valid: {err}") from None
    for row in rows_from_results(results):  # the row rules (hashes, comparability) apply too
        check_row(row)
    return results


def _check_metrics(metrics: list) -> None:
    if not metrics:
        raise LeaderboardError("results.metrics is empty")
    for index, metric in enumerate(metrics):
        if not math.isfinite(metric["value"]):
            raise LeaderboardError(
                f"results.metrics[{index}].value {metric['value']} is not finite"
            )
        if metric.get("interval") is not None:
            _check_interval(metric["interval"], f"results.metrics[{index}].interval")
    for key in ("id", "name"):
        values = [metric[key] for metric in metrics]
        if len(set(values)) != len(values):
            raise LeaderboardError(f"results.metrics repeats a metric {key}: {values}")


def _check_interval(interval: IntervalInfo, where: str) -> None:
    low, high, level = interval["low"], interval["high"], interval["level"]
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise LeaderboardError(f"{where} needs finite low <= high; got [{low}, {high}]")
    if not 0.0 < level < 1.0:
        raise LeaderboardError(f"{where}.level {level} is not in (0, 1)")
    if interval["replicates"] < 1:
        raise LeaderboardError(f"{where}.replicates must be positive")


def build_results(
    *,
    task: TaskInfo,
    model: ModelInfo,
    dataset: DatasetInfo,
    metrics: Sequence[MetricEntry],
    n_samples: SampleCounts,
    samples_sha256: str,
    seeds: Mapping[str, int],
    config: Mapping[str, Any],
    device: str,
    wall_time_s: Mapping[str, float],
    paper_ref: str = "",
    protocol: str = "",
    artifacts: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Results:
    """Assemble a validated results dict; environment, git commit and time are filled in here."""
    commit, dirty = git_commit()
    results = {
        "schema": RESULTS_SCHEMA,
        "schema_version": RESULTS_SCHEMA_VERSION,
        "task": dict(task),
        "model": dict(model),
        "dataset": dict(dataset),
        "metrics": [dict(metric) for metric in metrics],
        "n_samples": dict(n_samples),
        "samples_sha256": samples_sha256,
        "seeds": dict(seeds),
        "config": dict(config),
        "env": library_versions(),
        "device": device,
        "git_commit": commit,
        "git_dirty": dirty,
        "created": now_utc(),
        "wall_time_s": dict(wall_time_s),
        "paper_ref": paper_ref,
        "protocol": protocol,
        "artifacts": dict(artifacts or {}),
        "extra": dict(extra or {}),
    }
    return validate_results(results)


def write_results(path: str | Path, results: Results) -> None:
    """Validate and write a results file atomically."""
    atomic_write_json(path, validate_results(results))


def load_results(path: str | Path) -> Results:
    """Read and validate a results file; errors name the file."""
    try:
        results = json.loads(read_text_file(path, "a results file (JSON)", LeaderboardError))
    except (OSError, json.JSONDecodeError) as err:
        raise LeaderboardError(f"{path}: cannot read results ({err})") from None
    try:
        return validate_results(results)
    except LeaderboardError as err:
        raise LeaderboardError(f"{path}: {err}") from None


def rows_from_results(results: Results, results_file: str | Path = "") -> list[Row]:
    """One ``source=ours`` row per metric of a run; ``results_file`` is where it was written."""
    base = Path(results_file).resolve().parent if str(results_file) else None
    grid = results["artifacts"].get("sample_grid", "")
    return [
        Row(
            task=results["task"]["name"],
            task_version=results["task"]["version"],
            metric=metric["name"],
            metric_id=metric["id"],
            metric_base=metric["base"],
            value=float(metric["value"]),
            better=metric["better"],
            model=results["model"]["name"],
            checkpoint_sha256=results["model"]["checkpoint_sha256"],
            setting=results["model"]["setting"],
            dataset=results["dataset"]["name"],
            source="ours",
            paper_comparable=metric["paper_comparable"],
            paper_ref=results["paper_ref"],
            features=metric["features"],
            n_samples=results["n_samples"]["effective"],
            protocol=results["protocol"],
            created=results["created"],
            git_commit=results["git_commit"],
            results_file=portable_path(results_file) if str(results_file) else "",
            sample_grid=portable_path(grid, base) if grid else "",
            **_interval_fields(metric.get("interval")),
        )
        for metric in results["metrics"]
    ]


def _interval_fields(interval: IntervalInfo | None) -> dict[str, float | None]:
    """A row's ci_low / ci_high / ci_level from a metric's interval (all None without one)."""
    if interval is None:
        return {"ci_low": None, "ci_high": None, "ci_level": None}
    return {"ci_low": interval["low"], "ci_high": interval["high"], "ci_level": interval["level"]}
