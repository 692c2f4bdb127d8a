"""One task run from start to finish: real data, generation, metrics, results file, leaderboard.

    outcome = evaluate(spec, config, pipeline, out=Path("outputs/eval"))
    outcome.results["metrics"], outcome.path, outcome.rows_added

Everything expensive is stored content-addressed under ``out/cache`` (real items, generated
batches, features, metric values), so a killed run resumes where it stopped and a finished run
asked again recomputes nothing; its results file is reused as is. Under torchrun every rank calls
``evaluate``; rank 0 alone writes the results and the leaderboard row.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from benchmarks.cache import SampleStore, ValueCache, digest, list_hash
from benchmarks.config import EvalConfig, changed_definition, describe_measured, run_setting
from benchmarks.data import RealSet, prepare_real
from benchmarks.distributed import Ranks
from benchmarks.generate import Pipeline, checkpoint_digest, generate
from benchmarks.grid import write_grid
from benchmarks.metrics import (
    BETTER,
    Job,
    build_jobs,
    compute,
    metric_name,
    pending_jobs,
    resolve_features,
    task_metric_id,
    warm_features,
)
from benchmarks.tasks import TaskError, TaskSpec
from leaderboard import (
    LeaderboardError,
    Results,
    append_rows,
    build_results,
    load_results,
    load_table,
    paper_rows,
    rows_from_results,
    validate_table,
    write_results,
)
from leaderboard.table import find_paper_row


@dataclass
class RunOutcome:
    """What a run left behind (rank 0; other ranks get ``results=None``)."""

    results: Results | None = None
    path: Path | None = None
    rows_added: int = 0
    reused: bool = False
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Identity:
    """How a run is named on the leaderboard (defaults come from the pipeline and the task)."""

    model: str = ""
    checkpoint: str = "bundled"
    setting: str | None = None
    paper_ref: str | None = None


def _needs_text(config: EvalConfig) -> bool:
    return config.kind in ("t2i", "t2v") or (config.kind == "outpaint" and config.text)


def _paper_ref(spec: TaskSpec, config: EvalConfig) -> str:
    if not spec.paper_table:
        return ""
    ref = f"{spec.paper_table}/{spec.paper_method}"
    return (
        f"{ref}/{'with text' if config.text else 'without text'}"
        if config.kind == "outpaint"
        else ref
    )


def _protocol(spec: TaskSpec, config: EvalConfig) -> str:
    frames = f", {config.frames} frames" if config.kind in ("animate", "t2v") else ""
    changed = changed_definition(config)
    return (
        f"{spec.label} (ours): {config.profile} profile, canvas {config.height}x{config.width}"
        f"{frames}, n={config.n}, measured on the {describe_measured(config)}"
        + (f"; overrides {changed}" if changed else "")
    )


def _metric_entries(
    jobs: list[Job], values: dict[str, tuple[float, dict]], comparable_run: bool
) -> list[dict[str, Any]]:
    entries = []
    for job in jobs:
        for quantity in job.ids:
            metric_id = task_metric_id(job, quantity)
            entries.append(
                {
                    "id": metric_id.digest,
                    "name": metric_name(job, quantity),
                    "base": quantity,
                    "value": float(values[quantity][0]),
                    "better": BETTER.get(quantity, "lower"),
                    "paper_comparable": metric_id.paper_comparable and comparable_run,
                    "features": job.extractor,
                    "config": metric_id.config,
                    "stderr": None,
                }
            )
    return entries


def _build(
    spec: TaskSpec,
    config: EvalConfig,
    pipeline: Pipeline,
    identity: Identity,
    real: RealSet,
    jobs: list[Job],
    values: dict[str, tuple[float, dict]],
    samples_sha256: str,
    ranks: Ranks,
    wall: dict[str, float],
    extra: dict[str, Any],
) -> Results:
    nominal = spec.profile(config.profile).n
    comparable_run = (
        config.profile == "real" and config.n == nominal and not changed_definition(config)
    )
    metrics = _metric_entries(jobs, values, comparable_run)
    details = {m["name"]: values[m["base"]][1] for m in metrics}
    device = config.device + (
        f" ({torch.cuda.get_device_name(0)})" if config.device.startswith("cuda") else ""
    )
    return build_results(
        task={"name": spec.name, "version": spec.version, "config": spec.to_dict()},
        model={
            "name": identity.model or pipeline.model_id.split("@")[0],
            "checkpoint": identity.checkpoint,
            "checkpoint_sha256": checkpoint_digest(pipeline),
            "setting": run_setting(config) if identity.setting is None else identity.setting,
        },
        dataset={
            "name": real.name,
            "split": config.split,
            "manifest_sha256": real.manifest_sha256,
            "n_real": len(real.items),
        },
        metrics=metrics,
        n_samples={"requested": config.n, "effective": config.n},
        samples_sha256=samples_sha256,
        seeds={
            "task": config.seed,
            **({"procedural_first_seed": real.first_seed} if real.first_seed is not None else {}),
        },
        config={
            "run": config.to_dict(),
            "model_id": pipeline.model_id,
            "checkpoint_files": dict(pipeline.checkpoint_sha256),
            "data_source": real.source,
            "world_size": ranks.world_size,
            "batch_seed": "int(sha256(f'{seed}/{stream}/{batch_index}')[:8 bytes]) >> 1",
        },
        device=f"{device} x{ranks.world_size}",
        wall_time_s=wall,
        paper_ref=_paper_ref(spec, config) if identity.paper_ref is None else identity.paper_ref,
        protocol=_protocol(spec, config),
        artifacts={"sample_grid": "grid.png"},
        extra={
            "metric_details": details,
            "metric_labels": {m["name"]: m["id"] for m in metrics},
            **extra,
        },
    )


def _check_columns(provisional: Results, table: Path) -> None:
    """Refuse, before any work, a run whose metric ids would clash with the table's columns
    (the provisional values are placeholders; only ids and names are checked)."""
    validate_table(load_table(table, missing_ok=True) + rows_from_results(provisional))


def evaluate(
    spec: TaskSpec,
    config: EvalConfig,
    pipeline: Pipeline,
    *,
    out: Path,
    table: Path | None = None,
    identity: Identity | None = None,
    ranks: Ranks | None = None,
    progress: bool = True,
) -> RunOutcome:
    """Run ``spec`` under ``config`` with ``pipeline``; write results (and a leaderboard row to
    ``table`` unless it is None) on rank 0. Returns what was written."""
    start = time.perf_counter()
    identity, ranks = identity or Identity(), ranks or Ranks()
    if _needs_text(config) and not getattr(pipeline, "text_conditioned", True):
        raise TaskError(
            f"{spec.label} needs a text-conditioned model and {pipeline.model_id} has no text "
            "tower" + (" (run it with --no-text)" if config.kind == "outpaint" else "")
        )
    features, notices = resolve_features(config.features)
    config = replace(config, features=features)
    if ranks.is_main:
        for notice in notices:
            print(f"note: {notice}")
    real = prepare_real(config, out / "cache" / "real", ranks, progress and ranks.is_main)
    jobs = build_jobs(
        config, spec.profile(config.profile).n, out / "cache" / "features", config.device
    )
    model_sha = checkpoint_digest(pipeline)
    run_key = digest(
        {
            "task": spec.digest(),
            "config": config.to_dict(),
            "checkpoint": model_sha,
            "real": real.manifest_sha256,
            "identity": asdict(identity),
        }
    )
    run_dir = out / "runs" / spec.label / run_key[:16]
    results_path = run_dir / "results.json"
    if results_path.exists():
        outcome = RunOutcome(reused=True, path=results_path)
        if ranks.is_main:
            outcome.results = load_results(results_path)
            outcome.rows_added = (
                append_rows(rows_from_results(outcome.results, results_path), table) if table else 0
            )
        return outcome
    real_s = time.perf_counter() - start
    wall_args = (spec, config, pipeline, identity, real, jobs)
    if ranks.is_main and table is not None:
        placeholder = {q: (0.0, {}) for job in jobs for q in job.ids}
        _check_columns(_build(*wall_args, placeholder, "0" * 64, ranks, {"total": 0.0}, {}), table)

    show = progress and ranks.is_main
    start_gen = time.perf_counter()
    store = SampleStore(out / "cache" / "samples")
    samples, made = generate(pipeline, config, real, store, model_sha, ranks, show)
    start_metrics = time.perf_counter()
    value_cache = ValueCache(out / "cache" / "metrics")
    warm_features(pending_jobs(jobs, samples, real, value_cache), samples, real, ranks, show)
    ranks = ranks.leave()  # rank 0 reduces the stored samples and features alone
    counts = {"batches_generated": made["generated"], "batches_cached": made["cached"]}
    if not ranks.is_main:
        return RunOutcome(path=results_path, counts=counts)
    values, computed = compute(jobs, samples, real, value_cache, show)
    end = time.perf_counter()
    counts.update(metric_jobs_computed=computed["computed"], metric_jobs_cached=computed["cached"])
    write_grid(run_dir / "grid.png", config, samples["canvas"], real)
    wall = {
        "real_data": real_s,
        "generation": start_metrics - start_gen,
        "metrics": end - start_metrics,
        "total": end - start,
    }
    sample_hashes = [ref.sha256 for stream in samples.values() for ref in stream]
    extra = {"cache": counts, "notices": notices}
    results = _build(*wall_args, values, list_hash(sample_hashes), ranks, wall, extra)
    write_results(results_path, results)
    added = append_rows(rows_from_results(results, results_path), table) if table else 0
    return RunOutcome(results, results_path, added, counts=counts)


def format_outcome(outcome: RunOutcome, table: Path | None) -> str:
    """The table a run prints: each metric, the paper's number for it, and why they differ."""
    results = outcome.results
    rows = rows_from_results(results, outcome.path)
    paper = [
        row
        for row in (load_table(table) if table and table.exists() else paper_rows())
        if row.source == "paper"
    ]
    width = max(len(row.metric) for row in rows)
    model, dataset = results["model"], results["dataset"]
    lines = [
        f"{results['task']['name']}@{results['task']['version']} · {dataset['name']} · "
        f"{model['name']}@{model['checkpoint_sha256'][:8]} · {model['setting'] or 'default'} · "
        f"n={results['n_samples']['effective']}",
        f"  {'metric':<{width}}  {'ours':>10}  {'paper':>8}  note",
    ]
    for row in rows:
        try:
            match = find_paper_row(row, paper)
        except LeaderboardError:
            match = None
        reasons = row.not_comparable_reasons()
        if match is None:
            note = "no paper number"
        elif reasons:
            note = "NOT COMPARABLE: " + "; ".join(reasons)
        else:
            note = f"Δ {row.value - match.value:+.2f} vs {match.paper_ref}"
        paper_value = f"{match.value:8.2f}" if match else f"{'-':>8}"
        lines.append(f"  {row.metric:<{width}}  {row.value:>10.4f}  {paper_value}  {note}")
    times = results["wall_time_s"]
    lines.append(
        f"  wall time {times['total']:.1f} s (generation {times.get('generation', 0):.1f} s, "
        f"metrics {times.get('metrics', 0):.1f} s)"
        + (" · reused a finished run, nothing recomputed" if outcome.reused else "")
    )
    lines.append(f"  results  {outcome.path}")
    lines.append(f"  grid     {outcome.path.parent / 'grid.png'}")
    if table is not None:
        lines.append(f"  leaderboard  {table} (+{outcome.rows_added} rows)")
    return "\n".join(lines) + "\n"
