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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from benchmarks.harness.cache import SampleStore, ValueCache, digest, list_hash
from benchmarks.harness.config import (
    EvalConfig,
    changed_definition,
    describe_measured,
    outpaint_regions,
    run_setting,
)
from benchmarks.harness.data import RealSet, prepare_real
from benchmarks.harness.distributed import Ranks
from benchmarks.harness.generate import Pipeline, checkpoint_digest, code_digest, generate
from benchmarks.harness.grid import write_grid
from benchmarks.harness.metrics import (
    METRICS,
    Job,
    Measurement,
    build_jobs,
    check_metrics,
    compute,
    metric_name,
    pending_jobs,
    resolve_features,
    task_metric_id,
    warm_features,
)
from benchmarks.tasks import TaskError, TaskSpec
from evaluation import Region
from leaderboard import (
    Results,
    append_rows,
    build_results,
    load_results,
    load_table,
    rows_from_results,
    validate_table,
    write_results,
)
from nuwa.io import atomic_write_text, sha256_file

Values = dict[str, Measurement]  # quantity -> value, details, bootstrap interval


@dataclass
class RunOutcome:
    """What a run left behind (rank 0; other ranks get ``results=None``)."""

    results: Results | None = None
    path: Path | None = None
    rows_added: int = 0
    reused: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)  # which features stood in, and why


@dataclass(frozen=True)
class Identity:
    """How a run is named on the leaderboard (defaults come from the pipeline and the task)."""

    model: str = ""
    checkpoint: str = "bundled"
    setting: str | None = None
    paper_ref: str | None = None


@dataclass
class _Run:
    """Everything fixed before generation starts; builds the results file from the values."""

    spec: TaskSpec
    config: EvalConfig
    pipeline: Pipeline
    identity: Identity
    real: RealSet
    jobs: list[Job]
    ranks: Ranks

    @property
    def comparable(self) -> bool:
        """Real data, the task's full sample count and no definition override: the run itself
        allows paper comparison (each metric still needs the paper's features)."""
        config = self.config
        full = config.n == self.spec.profile(config.profile).n
        return config.profile == "real" and full and not changed_definition(config)

    @property
    def paper_ref(self) -> str:
        spec, config = self.spec, self.config
        if self.identity.paper_ref is not None or not spec.paper_table:
            return self.identity.paper_ref or ""
        ref = f"{spec.paper_table}/{spec.paper_method}"
        return f"{ref}/{run_setting(config).split(';')[0]}" if config.kind == "outpaint" else ref

    @property
    def protocol(self) -> str:
        config, changed = self.config, changed_definition(self.config)
        frames = f", {config.frames} frames" if config.kind in ("animate", "t2v") else ""
        return (
            f"{self.spec.label} (ours): {config.profile} profile, canvas {config.height}x"
            f"{config.width}{frames}, n={config.n}, measured on the {describe_measured(config)}"
            + (f"; overrides {changed}" if changed else "")
        )

    def metrics(self, values: Values) -> list[dict[str, Any]]:
        """The results file's metric entries (ids extended with the task's inputs), each with
        its bootstrap interval, or null and the reason there is none."""
        entries = []
        for job in self.jobs:
            for quantity in job.ids:
                metric_id = task_metric_id(job, quantity)
                measured = values[quantity]
                interval = measured.interval
                entries.append(
                    {
                        "id": metric_id.digest,
                        "name": metric_name(job, quantity),
                        "base": quantity,
                        "value": float(measured.value),
                        "better": METRICS[quantity].better,
                        "paper_comparable": metric_id.paper_comparable and self.comparable,
                        "features": job.extractor,
                        "config": metric_id.config,
                        "stderr": None,
                        "interval": None if interval is None else interval.to_json(),
                        **({"no_interval": measured.no_interval} if interval is None else {}),
                    }
                )
        return entries

    def results(
        self, values: Values, samples_sha256: str, wall: dict[str, float], extra: dict[str, Any]
    ) -> Results:
        """The validated results dict of this run."""
        config, pipeline, identity, real = self.config, self.pipeline, self.identity, self.real
        metrics = self.metrics(values)
        labels = {
            metric_name(job, q): task_metric_id(job, q).label for job in self.jobs for q in job.ids
        }
        gpu = f" ({torch.cuda.get_device_name(0)})" if config.device.startswith("cuda") else ""
        seeds = {"task": config.seed}
        if real.first_seed is not None:
            seeds["procedural_first_seed"] = real.first_seed
        return build_results(
            task={
                "name": self.spec.name,
                "version": self.spec.version,
                "config": self.spec.to_dict(),
            },
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
            seeds=seeds,
            config={
                "run": config.to_dict(),
                "model_id": pipeline.model_id,
                "checkpoint_files": dict(pipeline.checkpoint_sha256),
                "sampling_code_sha256": code_digest(),
                "data_source": real.source,
                "world_size": self.ranks.world_size,
                # matmul summation order, and so the sampled canvases, depend on it
                "torch_threads": torch.get_num_threads(),
                "batch_seed": "int(sha256(f'{seed}/{stream}/{batch_index}')[:8 bytes]) >> 1",
            },
            device=f"{config.device}{gpu} x{self.ranks.world_size}",
            wall_time_s=wall,
            paper_ref=self.paper_ref,
            protocol=self.protocol,
            artifacts={"sample_grid": "grid.png"},
            extra={
                "metric_details": {m["name"]: values[m["base"]].details for m in metrics},
                "metric_labels": labels,
                **extra,
            },
        )

    def check_columns(self, table: Path) -> None:
        """Refuse, before any work, a run whose metric ids would clash with the table's columns
        (the values are placeholders and never written; only ids and names are checked)."""
        placeholder = {q: Measurement(0.0, {}) for job in self.jobs for q in job.ids}
        provisional = self.results(placeholder, "0" * 64, {"total": 0.0}, {})
        validate_table(load_table(table, missing_ok=True) + rows_from_results(provisional))


def _check_model(spec: TaskSpec, config: EvalConfig, pipeline: Pipeline) -> None:
    """Refuse a model that cannot do the task: no text tower for a text task, an image model
    (temporal extent 0, every frame blind to the others) for a video task."""
    needs_text = config.kind in ("t2i", "t2v") or (config.kind == "outpaint" and config.text)
    if needs_text and not getattr(pipeline, "text_conditioned", True):
        hint = " (run it with --no-text)" if config.kind == "outpaint" else ""
        raise TaskError(
            f"{spec.label} needs a text-conditioned model; {pipeline.model_id} has no text tower"
            + hint
        )
    patch = getattr(pipeline, "patch_px", None)
    if config.kind == "outpaint":
        boxes = outpaint_regions(config.direction, config.height, config.width)
    else:
        boxes = (Region(0, 0, config.height, config.width),)
    if patch and any(side % patch for box in boxes for side in (box.height, box.width)):
        part = "each half of the canvas" if config.kind == "outpaint" else "the canvas"
        raise TaskError(
            f"canvas {config.canvas}: {part} must be a whole number of {pipeline.model_id}'s "
            f"{patch}-px patches; choose sides that are multiples of {patch}"
            + (" (twice that along the outpainting direction)" if config.kind == "outpaint" else "")
        )
    extent = getattr(getattr(pipeline, "model", None), "extent", None)
    if config.kind in ("animate", "t2v") and extent is not None and extent.f == 0:
        raise TaskError(
            f"{spec.label} needs a video model (temporal extent > 0); {pipeline.model_id} is an "
            "image model, whose frames would not see each other"
        )


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
    show = progress and ranks.is_main
    check_metrics(config)
    _check_model(spec, config, pipeline)
    if ranks.is_main and table is not None:
        load_table(table, missing_ok=True)  # a table that cannot be read stops before any work
    features, notices = resolve_features(config.features, config.metrics, config.profile)
    config = replace(config, features=features)
    real = prepare_real(config, out / "cache" / "real", ranks, show)
    nominal_n = spec.profile(config.profile).n
    jobs = build_jobs(config, nominal_n, out / "cache" / "features", config.device)
    run = _Run(spec, config, pipeline, identity, real, jobs, ranks)
    model_sha = checkpoint_digest(pipeline)
    key = {"task": spec.digest(), "config": config.to_dict(), "checkpoint": model_sha}
    key.update(real=real.manifest_sha256, identity=asdict(identity))
    key.update(bootstrap=sorted({job.bootstrap for job in jobs}))  # (replicates, seed)
    results_path = out / "runs" / spec.label / digest(key)[:16] / "results.json"
    with _one_run_at_a_time(results_path, ranks, show):
        if results_path.exists():
            return _reuse(results_path, table, ranks)
        return _execute(run, results_path, out, table, show, start, notices)


def _execute(
    run: _Run,
    results_path: Path,
    out: Path,
    table: Path | None,
    show: bool,
    start: float,
    notices: list[str],
) -> RunOutcome:
    """Generate, measure, and write the results file (with its digest) and leaderboard rows."""
    config, pipeline, real, jobs, ranks = run.config, run.pipeline, run.real, run.jobs, run.ranks
    model_sha = checkpoint_digest(pipeline)
    if ranks.is_main and table is not None:
        run.check_columns(table)

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

    write_grid(results_path.parent / "grid.png", config, samples["canvas"], real)
    wall = {
        "real_data": start_gen - start,
        "generation": start_metrics - start_gen,
        "metrics": end - start_metrics,
        "total": end - start,
    }
    hashes = [ref.sha256 for stream in samples.values() for ref in stream]
    results = run.results(values, list_hash(hashes), wall, {"cache": counts, "notices": notices})
    write_results(results_path, results)
    atomic_write_text(_digest_path(results_path), f"{sha256_file(results_path)}  results.json\n")
    added = append_rows(rows_from_results(results, results_path), table) if table else 0
    return RunOutcome(results, results_path, added, counts=counts, notices=notices)


def _digest_path(results_path: Path) -> Path:
    return results_path.with_name("results.json.sha256")


@contextmanager
def _one_run_at_a_time(results_path: Path, ranks: Ranks, show: bool) -> Iterator[None]:
    """Hold a lock on one run's folder, so a second identical evaluation sharing ``--out``
    waits and then reuses the first one's results. Under torchrun the ranks coordinate through
    barriers instead, and no lock is taken."""
    if ranks.world_size > 1:
        yield
        return
    results_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(results_path.with_name("run.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if show:
            print(f"waiting for another run of this evaluation to finish ({lock.lock_file})")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _reuse(path: Path, table: Path | None, ranks: Ranks) -> RunOutcome:
    """A finished run asked again: its results as they are (rows re-added only if missing),
    once the file is shown to be byte for byte what the run wrote."""
    outcome = RunOutcome(path=path, reused=True)
    if ranks.is_main:
        digest_path = _digest_path(path)
        try:
            recorded = digest_path.read_text(encoding="utf-8").split()[0]
        except (OSError, IndexError):
            recorded = None
        if recorded != sha256_file(path):
            raise TaskError(
                f"{path} is not the file this run wrote (its SHA-256 differs from "
                f"{digest_path.name}): delete the folder {path.parent} to measure again"
            )
        outcome.results = load_results(path)
        outcome.notices = list(outcome.results["extra"].get("notices", []))
        rows = rows_from_results(outcome.results, path)
        outcome.rows_added = append_rows(rows, table) if table else 0
    return outcome
