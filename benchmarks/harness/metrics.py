"""The metrics of a task run: which evaluation metrics, on what, under which names and ids.

Each metric id is the evaluation registry's id extended with what the task feeds it (canvas
size, frames, which region is measured), because the same protocol on a 512-px and a 1024-px
canvas measures different things and must not share a leaderboard column. Readable names carry
the extractor and the canvas, e.g. ``Block-FID [inception_v3.surrogate_seed0@1 · 512x512]``.

Samples are fed in chunks of ``evaluation.extraction.CHUNK_ITEMS`` items aligned to the sample
order, which is how the evaluation feature cache keys them: under torchrun every rank first
extracts the features of its own chunks into the shared cache, then rank 0 reduces all chunks in
order (cache hits only), so the values equal a single-process run bit for bit.

Every quantity comes with a seeded bootstrap 95% interval over samples (BOOTSTRAP_REPLICATES
resamples, BOOTSTRAP_SEED) when the run has at least ``MIN_INTERVAL_SAMPLES`` samples; with fewer
its interval is None and ``Measurement.no_interval`` says why. Replicates and seed are part of the
value cache's key but not of any metric id (they move the interval, never the value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from benchmarks.harness.cache import SampleRef, ValueCache, digest, list_hash
from benchmarks.harness.config import (
    PROCEDURAL,
    EvalConfig,
    Features,
    describe_measured,
    measured_region,
)
from benchmarks.harness.data import RealSet
from benchmarks.harness.distributed import Ranks
from benchmarks.tasks import TaskError
from evaluation import (
    FVD,
    LANDSCAPE_FEATURES,
    PAPER_CLIP,
    PAPER_I3D,
    PAPER_INCEPTION,
    SURROGATE_CLIP,
    SURROGATE_INCEPTION,
    SURROGATE_VIDEO,
    SWD,
    BlockFID,
    CLIPSim,
    InceptionScore,
    MetricId,
    Region,
    RowProfileL1,
    get_extractor_spec,
)
from evaluation.attribute_agreement import AttributeAgreement
from evaluation.bootstrap import MIN_INTERVAL_SAMPLES, Interval
from evaluation.extraction import CHUNK_ITEMS
from evaluation.motion_fd import LAGS as MOTION_LAGS
from evaluation.motion_fd import MotionFD

CHOICES = {  # feature kind -> (the paper's extractor, the surrogate)
    "image": (PAPER_INCEPTION, SURROGATE_INCEPTION),
    "clip": (PAPER_CLIP, SURROGATE_CLIP),
    "video": (PAPER_I3D, SURROGATE_VIDEO),
}
# On the procedural set, image metrics default to the network trained on it: surrogate Inception
# features cannot see layout (an upside-down set moves their FID less than mild noise does).
PROCEDURAL_DEFAULT = {"image": LANDSCAPE_FEATURES}


def resolve_features(
    features: Features, metrics: list[str], profile: str = "real"
) -> tuple[Features, list[str]]:
    """Registry names for "auto"/"paper"/"surrogate"/"offline" choices, and a notice for each
    surrogate that "auto" picked for one of ``metrics`` because the paper's weights are not here.
    On the procedural profile "auto" and "offline" pick PROCEDURAL_DEFAULT where it has an entry;
    elsewhere "offline" is the surrogate (it never depends on which weights a machine has)."""
    used = {METRICS[m].features for m in metrics if METRICS[m].features}
    resolved, notices = {}, []
    for kind, (paper, surrogate) in CHOICES.items():
        choice = getattr(features, kind)
        if choice in ("auto", "offline") and profile == PROCEDURAL and kind in PROCEDURAL_DEFAULT:
            choice = PROCEDURAL_DEFAULT[kind]
        elif choice == "offline":
            choice = surrogate
        elif choice == "auto":
            present = get_extractor_spec(paper).weights.find() is not None
            choice = paper if present else surrogate
            if not present and kind in used:
                notices.append(
                    f"{kind} features: {surrogate} (the weights of {paper} are not on this "
                    "machine, see `nuwa-eval weights list`); these numbers are not paper-comparable"
                )
        elif choice in ("paper", "surrogate"):
            choice = paper if choice == "paper" else surrogate
        get_extractor_spec(choice)  # unknown names fail here, before any work
        resolved[kind] = choice
    return Features(**resolved), notices


@dataclass
class Chunk:
    """Loaded samples of items [start, stop): generated per stream, real, captions."""

    generated: dict[str, list[np.ndarray]]
    real: list[np.ndarray]
    captions: list[str] | None


BOOTSTRAP_REPLICATES = 200
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Measurement:
    """One quantity of a run: its value, details and bootstrap interval over samples (None when
    there is none; ``no_interval`` then says why, e.g. "n=4 < 8")."""

    value: float
    details: dict[str, Any]
    interval: Interval | None = None
    no_interval: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON-able record (the value cache stores these)."""
        interval = None if self.interval is None else self.interval.to_json()
        return {
            "value": self.value,
            "details": self.details,
            "interval": interval,
            "no_interval": self.no_interval,
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Measurement:
        """Inverse of ``to_json``."""
        interval = record["interval"]
        return cls(
            record["value"],
            record["details"],
            None if interval is None else Interval.from_json(interval),
            record["no_interval"],
        )


Collected = dict[str, Measurement]  # what a job's collect returns: quantity -> its measurement


@dataclass
class Job:
    """One evaluation metric object and the leaderboard quantities it yields. ``bootstrap`` is
    the (replicates, seed) its metric is built with, ``no_interval`` why there is no interval
    when replicates is 0 (both set by ``build_jobs``)."""

    name: str
    ids: dict[str, MetricId]  # quantity -> evaluation metric id
    make: Callable[[], Any]
    feed: Callable[[Any, Chunk], None]
    collect: Callable[[Any], Collected]
    streams: tuple[str, ...] = ("canvas",)
    real: bool = True
    captions: bool = False
    features: bool = True  # uses an extractor, so its features are cached and shardable
    extractor: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    bootstrap: tuple[int, int] = (0, 0)
    no_interval: str = ""


@dataclass(frozen=True)
class _Context:
    """What every job builder needs: the run config, extractor options and the canvas cut."""

    config: EvalConfig
    nominal_n: int
    common: dict[str, Any]

    @property
    def region(self) -> Region | None:
        return measured_region(self.config)

    def measured(self) -> str:
        return describe_measured(self.config)

    def cut(self, sample: np.ndarray) -> np.ndarray:
        return sample if self.region is None else np.ascontiguousarray(self.region.crop(sample))


def _generated_vs_real(stream: str) -> Callable[[Any, Chunk], None]:
    def feed(metric, chunk: Chunk) -> None:
        metric.update(chunk.generated[stream], real=False)
        metric.update(chunk.real, real=True)

    return feed


def _block_fid_job(ctx: _Context) -> Job:
    image = ctx.config.features.image

    def make() -> BlockFID:
        return BlockFID(image, region=ctx.region, **ctx.common)

    def collect(metric: BlockFID) -> Collected:
        result = metric.compute()
        mean, pooled = result.position_mean, result.pooled
        return {
            "block_fid": Measurement(
                mean.value, {"per_position": result.per_position}, mean.interval
            ),
            "block_fid_pooled": Measurement(pooled.value, pooled.details, pooled.interval),
        }

    probe = make()
    ids = {"block_fid": probe.metric_id, "block_fid_pooled": probe.pooled_id}
    inputs = {"canvas": ctx.config.canvas, "measured": ctx.measured()}
    return Job(
        "block_fid",
        ids,
        make,
        _generated_vs_real("canvas"),
        collect,
        extractor=image,
        inputs=inputs,
    )


def _block_fid_x4_job(ctx: _Context) -> Job:
    image, config = ctx.config.features.image, ctx.config

    def make() -> BlockFID:
        return BlockFID(image, **ctx.common)

    def collect(metric: BlockFID) -> Collected:
        pooled = metric.compute().pooled
        return {"block_fid_x4": Measurement(pooled.value, pooled.details, pooled.interval)}

    inputs = {
        "canvas": [config.height, 4 * config.width],
        "real_canvas": config.canvas,
        "measured": "pooled blocks of the whole x4 canvas against the real canvases' blocks",
    }
    ids = {"block_fid_x4": make().pooled_id}
    return Job(
        "block_fid_x4",
        ids,
        make,
        _generated_vs_real("x4"),
        collect,
        streams=("x4",),
        extractor=image,
        inputs=inputs,
    )


def _is_job(ctx: _Context) -> Job:
    image = ctx.config.features.image
    if "logits_unbiased" not in get_extractor_spec(image).outputs:
        # IS needs Inception's class logits: the Inception "auto" would pick on real data.
        image = resolve_features(Features(image="auto"), [])[0].image

    def make() -> InceptionScore:
        return InceptionScore(image, **ctx.common)

    def feed(metric: InceptionScore, chunk: Chunk) -> None:
        metric.update(chunk.generated["canvas"])

    inputs = {"canvas": ctx.config.canvas, "measured": "whole canvas"}
    return _single_job("is", make, feed, real=False, extractor=image, inputs=inputs)


def _clip_sim_job(ctx: _Context) -> Job:
    clip_name, config = ctx.config.features.clip, ctx.config
    video = config.kind in ("animate", "t2v")

    def make() -> CLIPSim:
        return CLIPSim(clip_name, **ctx.common)

    def feed(metric: CLIPSim, chunk: Chunk) -> None:
        samples = chunk.generated["canvas"]
        if video:  # every frame against its clip's caption; the interval resamples clips
            frames = [frame for clip in samples for frame in clip]
            captions = [text for text in chunk.captions for _ in range(config.frames)]
            metric.update(frames, captions, images_per_sample=config.frames)
        else:
            metric.update(samples, chunk.captions)

    inputs = {"canvas": config.canvas, "measured": "every frame" if video else "whole canvas"}
    return _single_job(
        "clip_sim", make, feed, real=False, captions=True, extractor=clip_name, inputs=inputs
    )


def _attribute_agreement_job(ctx: _Context) -> Job:
    def make() -> AttributeAgreement:
        return AttributeAgreement(LANDSCAPE_FEATURES, **ctx.common)

    def feed(metric: AttributeAgreement, chunk: Chunk) -> None:
        metric.update(chunk.generated["canvas"], chunk.captions)

    def collect(metric: AttributeAgreement) -> Collected:
        result = metric.compute()
        details = result.details
        baseline = details["shuffled_captions_interval"]
        return {
            "attr_agree": Measurement(result.value, details, result.interval),
            "attr_agree_shuffled": Measurement(
                details["shuffled_captions"],
                {"baseline_of": "attr_agree"},
                None if baseline is None else Interval.from_json(baseline),
            ),
        }

    probe = make().metric_id
    inputs = {"canvas": ctx.config.canvas, "measured": "whole canvas"}
    return Job(
        "attr_agree",
        {"attr_agree": probe, "attr_agree_shuffled": probe.variant("shuffled captions")},
        make,
        feed,
        collect,
        real=False,
        captions=True,
        extractor=LANDSCAPE_FEATURES,
        inputs=inputs,
    )


def _swd_job(ctx: _Context) -> Job:
    def feed(metric: SWD, chunk: Chunk) -> None:
        metric.update([ctx.cut(sample) for sample in chunk.generated["canvas"]], real=False)
        metric.update([ctx.cut(sample) for sample in chunk.real], real=True)

    def make() -> SWD:
        return SWD(bootstrap=ctx.common["bootstrap"], bootstrap_seed=ctx.common["bootstrap_seed"])

    inputs = {"canvas": ctx.config.canvas, "measured": ctx.measured()}
    return _single_job("swd", make, feed, features=False, inputs=inputs)


def _layout_job(ctx: _Context) -> Job:
    def make() -> RowProfileL1:
        return RowProfileL1(
            bootstrap=ctx.common["bootstrap"], bootstrap_seed=ctx.common["bootstrap_seed"]
        )

    def feed(metric: RowProfileL1, chunk: Chunk) -> None:
        generated = [ctx.cut(sample) for sample in chunk.generated["canvas"]]
        metric.update(generated, [ctx.cut(sample) for sample in chunk.real])

    inputs = {"canvas": ctx.config.canvas, "measured": ctx.measured()}
    return _single_job("layout", make, feed, features=False, inputs=inputs)


def _clip_distance_job(
    ctx: _Context, quantity: str, make: Callable[[], Any], extractor: str
) -> Job:
    """A distance between generated and real clips (FVD, Motion FD) over the first frames."""
    inputs = {"canvas": ctx.config.canvas, "frames": ctx.config.frames}
    return _single_job(
        quantity, make, _generated_vs_real("canvas"), extractor=extractor, inputs=inputs
    )


def _fvd_job(ctx: _Context) -> Job:
    video, frames = ctx.config.features.video, ctx.config.frames
    return _clip_distance_job(
        ctx, "fvd", lambda: FVD(video, frames=frames, clips=ctx.nominal_n, **ctx.common), video
    )


def _motion_fd_job(ctx: _Context) -> Job:
    frames = ctx.config.frames
    return _clip_distance_job(
        ctx,
        "motion_fd",
        lambda: MotionFD(LANDSCAPE_FEATURES, frames=frames, **ctx.common),
        LANDSCAPE_FEATURES,
    )


def _single_job(
    quantity: str, make: Callable[[], Any], feed: Callable[[Any, Chunk], None], **fields: Any
) -> Job:
    """The job of a metric that yields one quantity, named after it (``fields``: Job's)."""

    def collect(metric) -> Collected:
        result = metric.compute()
        return {quantity: Measurement(result.value, dict(result.details), result.interval)}

    return Job(quantity, {quantity: make().metric_id}, make, feed, collect, **fields)


@dataclass(frozen=True)
class TaskMetric:
    """Everything about one quantity a task may ask for, in one record.

    Attributes:
        label: the readable name (``metric_name`` adds the extractor and canvas).
        build: the job builder that computes it (one job may yield several quantities).
        better: "lower" or "higher".
        features: the extractor kind it needs ("image", "clip", "video"), None for none.
        min_samples: the fewest samples it is defined on.
    """

    label: str
    build: Callable[[_Context], Job]
    better: str = "lower"
    features: str | None = None
    min_samples: int = 1


METRICS: dict[str, TaskMetric] = {
    "block_fid": TaskMetric("Block-FID", _block_fid_job, features="image", min_samples=2),
    "block_fid_pooled": TaskMetric(
        "Block-FID pooled", _block_fid_job, features="image", min_samples=2
    ),
    "block_fid_x4": TaskMetric(
        "Block-FID (×4)", _block_fid_x4_job, features="image", min_samples=2
    ),
    "is": TaskMetric("IS", _is_job, better="higher", features="image", min_samples=10),
    "clip_sim": TaskMetric("CLIP-SIM", _clip_sim_job, better="higher", features="clip"),
    "attr_agree": TaskMetric(
        "Attribute agreement", _attribute_agreement_job, better="higher", min_samples=2
    ),
    "attr_agree_shuffled": TaskMetric(
        "Attribute agreement, shuffled captions",
        _attribute_agreement_job,
        better="higher",
        min_samples=2,
    ),
    "swd": TaskMetric("SWD ×1e3", _swd_job),
    "layout": TaskMetric("Layout row-profile L1", _layout_job, min_samples=2),
    "fvd": TaskMetric("FVD", _fvd_job, features="video", min_samples=2),
    "motion_fd": TaskMetric("Motion FD", _motion_fd_job, min_samples=2),
}


def check_metrics(config: EvalConfig) -> None:
    """Raise TaskError (one line) if a metric of ``config`` cannot be computed on its samples."""
    for name in config.metrics:
        fewest = METRICS[name].min_samples
        if config.n < fewest:
            raise TaskError(f"{name} needs n >= {fewest}; got n={config.n}")
    if "motion_fd" in config.metrics and config.frames <= max(MOTION_LAGS):
        raise TaskError(
            f"motion_fd needs clips of more than {max(MOTION_LAGS)} frames; got {config.frames}"
        )


def build_jobs(config: EvalConfig, nominal_n: int, cache_dir: Path, device: str) -> list[Job]:
    """The jobs computing ``config.metrics`` with the extractors in ``config.features`` (resolved
    names). ``nominal_n`` is the task's sample count, which the FVD protocol names. Metrics get
    bootstrap intervals when the run has at least MIN_INTERVAL_SAMPLES samples."""
    replicates = BOOTSTRAP_REPLICATES if config.n >= MIN_INTERVAL_SAMPLES else 0
    common = {"cache_dir": cache_dir, "device": device, "progress": False}
    common.update(bootstrap=replicates, bootstrap_seed=BOOTSTRAP_SEED)
    ctx = _Context(config, nominal_n, common)
    builders = dict.fromkeys(METRICS[quantity].build for quantity in config.metrics)
    jobs = [builder(ctx) for builder in builders]
    for job in jobs:  # keep only the quantities asked for (Block-FID yields two)
        job.ids = {q: i for q, i in job.ids.items() if q in config.metrics}
        job.bootstrap = (replicates, BOOTSTRAP_SEED)
        job.no_interval = "" if replicates else f"n={config.n} < {MIN_INTERVAL_SAMPLES}"
    return jobs


def metric_name(job: Job, quantity: str) -> str:
    """Readable column name: quantity, extractor (if any), canvas and frames."""
    height, width = job.inputs["canvas"]
    where = f"{height}x{width}" + (f" · {job.inputs['frames']}f" if "frames" in job.inputs else "")
    return f"{METRICS[quantity].label} [{job.extractor + ' · ' if job.extractor else ''}{where}]"


def task_metric_id(job: Job, quantity: str) -> MetricId:
    """The evaluation metric id extended with the task's inputs (canvas, frames, region)."""
    base = job.ids[quantity]
    config = {**base.config, "task_inputs": job.inputs}
    return MetricId(base.name, base.extractor, config, base.paper_comparable)


def _job_key(job: Job, samples: dict[str, list[SampleRef]], real: RealSet) -> str:
    return digest(
        {
            "ids": {q: task_metric_id(job, q).digest for q in sorted(job.ids)},
            "generated": {s: list_hash([r.sha256 for r in samples[s]]) for s in job.streams},
            "real": real.manifest_sha256 if job.real else None,
            "captions": list_hash([item.text or "" for item in real.items])
            if job.captions
            else None,
            "bootstrap": list(job.bootstrap),
        }
    )


def _load_chunk(
    items: range, jobs: list[Job], samples: dict[str, list[SampleRef]], real: RealSet
) -> Chunk:
    streams = sorted({s for job in jobs for s in job.streams})
    return Chunk(
        generated={s: [samples[s][i].load() for i in items] for s in streams},
        real=[real.items[i].load() for i in items] if any(job.real for job in jobs) else [],
        captions=[real.items[i].text for i in items] if any(job.captions for job in jobs) else None,
    )


def _chunks(n: int) -> list[range]:
    return [range(start, min(start + CHUNK_ITEMS, n)) for start in range(0, n, CHUNK_ITEMS)]


def pending_jobs(
    jobs: list[Job], samples: dict[str, list[SampleRef]], real: RealSet, values: ValueCache
) -> list[Job]:
    """The jobs whose values are not cached for exactly these samples."""
    return [job for job in jobs if values.get(_job_key(job, samples, real)) is None]


def warm_features(
    jobs: list[Job],
    samples: dict[str, list[SampleRef]],
    real: RealSet,
    ranks: Ranks,
    progress: bool = True,
) -> None:
    """Under torchrun: extract the features of this rank's chunks into the shared feature cache
    (every ``world_size``-th chunk), then wait for all ranks. Nothing to do in one process."""
    featured = [job for job in jobs if job.features]
    if ranks.world_size == 1 or not featured:
        return
    desc = f"features [rank {ranks.rank}]"
    for items in tqdm(ranks.mine(_chunks(len(real.items))), desc=desc, disable=not progress):
        chunk = _load_chunk(items, featured, samples, real)
        for job in featured:
            job.feed(job.make(), chunk)  # the values are dropped; the cached features stay
    ranks.barrier()


def compute(
    jobs: list[Job],
    samples: dict[str, list[SampleRef]],
    real: RealSet,
    values: ValueCache,
    progress: bool = True,
) -> tuple[dict[str, Measurement], dict[str, int]]:
    """Every job's values over all samples in sample order: ({quantity: Measurement}, counts).
    Runs in one process (rank 0 after ``warm_features``); cached values are reused."""
    pending = pending_jobs(jobs, samples, real, values)
    metrics = {job.name: job.make() for job in pending}
    chunks = _chunks(len(real.items)) if pending else []
    with tqdm(
        total=len(chunks) * len(pending),
        desc="metrics",
        unit="chunk",
        disable=not progress or not pending,
    ) as bar:
        for items in chunks:
            chunk = _load_chunk(items, pending, samples, real)
            for job in pending:
                job.feed(metrics[job.name], chunk)
                bar.update()
    for job in pending:
        collected = job.collect(metrics[job.name])
        record = {q: _measurement(job, entry).to_json() for q, entry in collected.items()}
        values.put(_job_key(job, samples, real), record)
    out: dict[str, Measurement] = {}
    for job in jobs:
        cached = values.get(_job_key(job, samples, real))
        out.update({q: Measurement.from_json(record) for q, record in cached.items()})
    return out, {"computed": len(pending), "cached": len(jobs) - len(pending)}


def _measurement(job: Job, measured: Measurement) -> Measurement:
    """A collected measurement as stored: a float value, and why it has no interval."""
    why = "" if measured.interval is not None else job.no_interval or "the metric gives no interval"
    return replace(measured, value=float(measured.value), no_interval=why)
