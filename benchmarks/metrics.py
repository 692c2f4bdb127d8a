"""The metrics of a task run: which evaluation metrics, on what, under which names and ids.

Each metric id is the evaluation registry's id extended with what the task feeds it (canvas
size, frames, which region is measured), because the same protocol on a 512-px and a 1024-px
canvas measures different things and must not share a leaderboard column. Readable names carry
the extractor and the canvas, e.g. ``Block-FID [inception_v3.surrogate_seed0@1 · 512x512]``.

Samples are fed in chunks of ``evaluation.extraction.CHUNK_ITEMS`` items aligned to the sample
order, which is how the evaluation feature cache keys them: under torchrun every rank first
extracts the features of its own chunks into the shared cache, then rank 0 reduces all chunks in
order (cache hits only), so the values equal a single-process run bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from benchmarks.cache import SampleRef, ValueCache, digest, list_hash
from benchmarks.config import EvalConfig, Features, crop, describe_measured, measured_region
from benchmarks.data import RealSet
from benchmarks.distributed import Ranks
from evaluation import (
    FVD,
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
    get_extractor_spec,
)
from evaluation.extraction import CHUNK_ITEMS

LABELS = {
    "block_fid": "Block-FID",
    "block_fid_pooled": "Block-FID pooled",
    "block_fid_x4": "Block-FID (×4)",
    "is": "IS",
    "clip_sim": "CLIP-SIM",
    "swd": "SWD ×1e3",
    "fvd": "FVD",
}
BETTER = {"is": "higher", "clip_sim": "higher"}  # every other metric: lower is better
CHOICES = {  # feature kind -> (the paper's extractor, the surrogate)
    "image": (PAPER_INCEPTION, SURROGATE_INCEPTION),
    "clip": (PAPER_CLIP, SURROGATE_CLIP),
    "video": (PAPER_I3D, SURROGATE_VIDEO),
}


FEATURE_KIND = {"block_fid": "image", "block_fid_pooled": "image", "block_fid_x4": "image",
                "is": "image", "clip_sim": "clip", "fvd": "video"}  # fmt: skip


def resolve_features(features: Features, metrics: list[str]) -> tuple[Features, list[str]]:
    """Registry names for "auto"/"paper"/"surrogate" choices, and a notice for each surrogate
    that "auto" picked for one of ``metrics`` because the paper's weights are not here."""
    used = {FEATURE_KIND[m] for m in metrics if m in FEATURE_KIND}
    resolved, notices = {}, []
    for kind, (paper, surrogate) in CHOICES.items():
        choice = getattr(features, kind)
        if choice == "auto":
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


@dataclass
class Job:
    """One evaluation metric object and the leaderboard quantities it yields."""

    name: str
    ids: dict[str, MetricId]  # quantity -> evaluation metric id
    make: Callable[[], Any]
    feed: Callable[[Any, Chunk], None]
    collect: Callable[[Any], dict[str, tuple[float, dict]]]  # quantity -> (value, details)
    streams: tuple[str, ...] = ("canvas",)
    real: bool = True
    captions: bool = False
    features: bool = True  # uses an extractor, so its features are cached and shardable
    extractor: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)


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
        return sample if self.region is None else np.ascontiguousarray(crop(sample, self.region))


def _generated_vs_real(stream: str) -> Callable[[Any, Chunk], None]:
    def feed(metric, chunk: Chunk) -> None:
        metric.update(chunk.generated[stream], real=False)
        metric.update(chunk.real, real=True)

    return feed


def _block_fid_job(ctx: _Context) -> Job:
    image = ctx.config.features.image

    def make() -> BlockFID:
        return BlockFID(image, region=ctx.region, **ctx.common)

    def collect(metric: BlockFID) -> dict[str, tuple[float, dict]]:
        result = metric.compute()
        return {
            "block_fid": (result.position_mean.value, {"per_position": result.per_position}),
            "block_fid_pooled": (result.pooled.value, result.pooled.details),
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

    def collect(metric: BlockFID) -> dict[str, tuple[float, dict]]:
        pooled = metric.compute().pooled
        return {"block_fid_x4": (pooled.value, pooled.details)}

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

    def make() -> InceptionScore:
        return InceptionScore(image, **ctx.common)

    def feed(metric: InceptionScore, chunk: Chunk) -> None:
        metric.update(chunk.generated["canvas"])

    inputs = {"canvas": ctx.config.canvas, "measured": "whole canvas"}
    return Job(
        "is",
        {"is": make().metric_id},
        make,
        feed,
        _single("is"),
        real=False,
        extractor=image,
        inputs=inputs,
    )


def _clip_sim_job(ctx: _Context) -> Job:
    clip_name, config = ctx.config.features.clip, ctx.config
    video = config.kind in ("animate", "t2v")

    def make() -> CLIPSim:
        return CLIPSim(clip_name, **ctx.common)

    def feed(metric: CLIPSim, chunk: Chunk) -> None:
        samples = chunk.generated["canvas"]
        if video:  # every frame against its clip's caption
            frames = [frame for clip in samples for frame in clip]
            metric.update(frames, [text for text in chunk.captions for _ in range(config.frames)])
        else:
            metric.update(samples, chunk.captions)

    inputs = {"canvas": config.canvas, "measured": "every frame" if video else "whole canvas"}
    return Job(
        "clip_sim",
        {"clip_sim": make().metric_id},
        make,
        feed,
        _single("clip_sim"),
        real=False,
        captions=True,
        extractor=clip_name,
        inputs=inputs,
    )


def _swd_job(ctx: _Context) -> Job:
    def feed(metric: SWD, chunk: Chunk) -> None:
        metric.update([ctx.cut(sample) for sample in chunk.generated["canvas"]], real=False)
        metric.update([ctx.cut(sample) for sample in chunk.real], real=True)

    inputs = {"canvas": ctx.config.canvas, "measured": ctx.measured()}
    return Job(
        "swd", {"swd": SWD().metric_id}, SWD, feed, _single("swd"), features=False, inputs=inputs
    )


def _fvd_job(ctx: _Context) -> Job:
    video, config = ctx.config.features.video, ctx.config

    def make() -> FVD:
        return FVD(video, frames=config.frames, clips=ctx.nominal_n, **ctx.common)

    inputs = {"canvas": config.canvas, "frames": config.frames}
    return Job(
        "fvd",
        {"fvd": make().metric_id},
        make,
        _generated_vs_real("canvas"),
        _single("fvd"),
        extractor=video,
        inputs=inputs,
    )


def _single(quantity: str) -> Callable[[Any], dict[str, tuple[float, dict]]]:
    def collect(metric) -> dict[str, tuple[float, dict]]:
        result = metric.compute()
        return {quantity: (result.value, dict(result.details))}

    return collect


JOB_BUILDERS: dict[str, Callable[[_Context], Job]] = {  # quantity -> the job that computes it
    "block_fid": _block_fid_job,
    "block_fid_pooled": _block_fid_job,
    "block_fid_x4": _block_fid_x4_job,
    "is": _is_job,
    "clip_sim": _clip_sim_job,
    "swd": _swd_job,
    "fvd": _fvd_job,
}


def build_jobs(config: EvalConfig, nominal_n: int, cache_dir: Path, device: str) -> list[Job]:
    """The jobs computing ``config.metrics`` with the extractors in ``config.features`` (resolved
    names). ``nominal_n`` is the task's sample count, which the FVD protocol names."""
    ctx = _Context(config, nominal_n, {"cache_dir": cache_dir, "device": device, "progress": False})
    builders = dict.fromkeys(JOB_BUILDERS[quantity] for quantity in config.metrics)
    jobs = [builder(ctx) for builder in builders]
    for job in jobs:  # keep only the quantities asked for (Block-FID yields two)
        job.ids = {q: i for q, i in job.ids.items() if q in config.metrics}
    return jobs


def metric_name(job: Job, quantity: str) -> str:
    """Readable column name: quantity, extractor (if any), canvas and frames."""
    height, width = job.inputs["canvas"]
    where = f"{height}x{width}" + (f" · {job.inputs['frames']}f" if "frames" in job.inputs else "")
    return f"{LABELS[quantity]} [{job.extractor + ' · ' if job.extractor else ''}{where}]"


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
) -> tuple[dict[str, tuple[float, dict]], dict[str, int]]:
    """Every job's values over all samples in sample order: ({quantity: (value, details)},
    counts). Runs in one process (rank 0 after ``warm_features``); cached values are reused."""
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
        values.put(_job_key(job, samples, real), {q: [v, d] for q, (v, d) in collected.items()})
    out: dict[str, tuple[float, dict]] = {}
    for job in jobs:
        out.update({q: (v, d) for q, (v, d) in values.get(_job_key(job, samples, real)).items()})
    return out, {"computed": len(pending), "cached": len(jobs) - len(pending)}
