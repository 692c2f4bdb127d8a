"""Generation: fixed global batches, one seed per batch index, resumable and shardable.

The samples of a run are cut into global batches of ``batch_size`` (the last may be shorter)
before anything runs; batch ``b`` is sampled with ``batch_seed(seed, stream, b)`` and is stored
under a key over everything it depends on, the sampling code's hash included. A finished batch
is never generated again, and batch ``b`` goes to rank ``b % world_size``, so one process and N
ranks produce the same bytes.

A "stream" is one kind of canvas a task generates: ``canvas`` (the task's canvas) and, for
``lhqc-t2i --x4``, ``x4`` (four times wider).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

import nuwa
from benchmarks.harness.cache import SampleRef, SampleStore, digest
from benchmarks.harness.config import DTYPES, EvalConfig, generated_px, outpaint_regions
from benchmarks.harness.data import RealSet
from benchmarks.harness.distributed import Ranks
from benchmarks.tasks import TaskError
from nuwa.bundle import files_digest

GENERATION_VERSION = 1  # bump when the batch key's meaning changes
# Packages of nuwa that never run while sampling; every other nuwa source file is in the key.
NOT_SAMPLING = ("data", "train", "conf")


class Pipeline(Protocol):
    """The part of ``nuwa.pipeline.Pipeline`` the harness uses."""

    model_id: str
    checkpoint_sha256: dict[str, str]

    def text_to_image(
        self, texts: list[str], width: int, height: int, **opts: Any
    ) -> list[np.ndarray]: ...

    def outpaint(
        self,
        images: list[np.ndarray],
        *,
        direction: str,
        amount_px: int,
        texts: list[str] | None = None,
        keep_input: bool = True,
        **opts: Any,
    ) -> list[np.ndarray]: ...

    def animate(
        self, first_frames: list[np.ndarray], frames: int, **opts: Any
    ) -> list[np.ndarray]: ...

    def text_to_video(
        self, texts: list[str], frames: int, width: int, height: int, **opts: Any
    ) -> list[np.ndarray]: ...

    def to(self, dtype: torch.dtype) -> Pipeline: ...


@dataclass(frozen=True)
class Stream:
    """One kind of generated canvas: its name and size in px."""

    name: str
    height: int
    width: int


def streams(config: EvalConfig) -> list[Stream]:
    """The canvases a run generates: always ``canvas``; ``x4`` too when an x4 metric is asked."""
    out = [Stream("canvas", config.height, config.width)]
    if any(metric.endswith("_x4") for metric in config.metrics):
        out.append(Stream("x4", config.height, 4 * config.width))
    return out


def batch_ranges(n: int, batch_size: int) -> list[range]:
    """Sample indices of each global batch: [0, bs), [bs, 2 bs), ..., the last may be shorter."""
    return [range(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def batch_seed(seed: int, stream: str, index: int) -> int:
    """The sampler seed of global batch ``index`` of ``stream`` (63-bit, from SHA-256)."""
    text = f"{seed}/{stream}/{index}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


@functools.cache
def code_digest() -> str:
    """SHA-256 over the sampling code (the nuwa sources outside data/ and train/): a generated
    batch is only reused by the code that made it."""
    root = Path(nuwa.__file__).parent
    files = sorted(
        p for p in root.rglob("*.py") if p.relative_to(root).parts[0] not in NOT_SAMPLING
    )
    hasher = hashlib.sha256()
    for path in files:
        hasher.update(f"{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes())
    return hasher.hexdigest()


def checkpoint_digest(pipeline: Pipeline) -> str:
    """One SHA-256 for a model's files (``nuwa.bundle.files_digest``), the one its id shows."""
    return files_digest(dict(pipeline.checkpoint_sha256))


@dataclass(frozen=True)
class _Batch:
    stream: Stream
    index: int
    items: range
    key: str
    seed: int


def _inputs(config: EvalConfig, real: RealSet, items: range) -> dict[str, Any]:
    """What one batch is conditioned on: given image regions / first frames, and captions."""
    selected = [real.items[i] for i in items]
    inputs: dict[str, Any] = {}
    if config.kind in ("t2i", "t2v") or (config.kind == "outpaint" and config.text):
        inputs["texts"] = [item.text for item in selected]
        if not all(inputs["texts"]):
            real.captions()  # raises the one-line error naming the first uncaptioned item
    if config.kind in ("outpaint", "animate"):
        inputs["given"] = [item.sha256 for item in selected]
    return inputs


def plan_batches(config: EvalConfig, real: RealSet, model_sha256: str) -> list[_Batch]:
    """Every global batch of the run, in order (stream, then batch index)."""
    batches = []
    for stream in streams(config):
        for index, items in enumerate(batch_ranges(config.n, config.batch_size)):
            seed = batch_seed(config.seed, stream.name, index)
            key = digest(
                {
                    "v": GENERATION_VERSION,
                    "code": code_digest(),
                    "checkpoint": model_sha256,
                    "kind": config.kind,
                    "stream": asdict(stream),
                    "frames": config.frames,
                    "direction": config.direction,
                    "sampler": asdict(config.sampler),
                    "dtype": config.dtype,
                    "seed": seed,
                    "inputs": _inputs(config, real, items),
                }
            )
            batches.append(_Batch(stream, index, items, key, seed))
    return batches


def _sampler_options(config: EvalConfig, seed: int) -> dict[str, Any]:
    return {**asdict(config.sampler), "seed": seed, "progress": False}


def _generate_batch(
    pipeline: Pipeline, config: EvalConfig, real: RealSet, batch: _Batch
) -> list[np.ndarray]:
    """Call the pipeline for one batch and check what it returns."""
    selected = [real.items[i] for i in batch.items]
    texts = _inputs(config, real, batch.items).get("texts")
    opts = _sampler_options(config, batch.seed)
    height, width = batch.stream.height, batch.stream.width
    if config.kind == "t2i":
        out = pipeline.text_to_image(texts, width, height, **opts)
    elif config.kind == "outpaint":
        given, _ = outpaint_regions(config.direction, height, width)
        images = [np.ascontiguousarray(given.crop(item.load())) for item in selected]
        amount = generated_px(config.direction, height, width)
        out = pipeline.outpaint(
            images,
            direction=config.direction,
            amount_px=amount,
            texts=texts,
            keep_input=config.keep_input,
            **opts,
        )
    elif config.kind == "animate":
        first = [item.load()[0] for item in selected]
        out = pipeline.animate(first, config.frames, **opts)
    else:
        out = pipeline.text_to_video(texts, config.frames, width, height, **opts)
    expected = (
        (height, width, 3)
        if config.kind in ("t2i", "outpaint")
        else (config.frames, height, width, 3)
    )
    out = [np.asarray(sample) for sample in out]
    if len(out) != len(selected) or any(s.shape != expected or s.dtype != np.uint8 for s in out):
        shapes = sorted({(s.shape, str(s.dtype)) for s in out})
        raise TaskError(
            f"the pipeline returned {len(out)} samples {shapes} for a batch of {len(selected)}; "
            f"expected uint8 {expected}"
        )
    return out


def generate(
    pipeline: Pipeline | None,
    config: EvalConfig,
    real: RealSet,
    store: SampleStore,
    model_sha256: str,
    ranks: Ranks,
    progress: bool = True,
) -> tuple[dict[str, list[SampleRef]], dict[str, int]]:
    """Generate every missing batch of this rank, then return all samples per stream in order
    (after a barrier) and counts {"generated": batches made here, "cached": batches found}."""
    batches = plan_batches(config, real, model_sha256)
    mine = ranks.mine(batches)
    todo = [batch for batch in mine if store.lookup(batch.key) is None]
    counts = {"generated": len(todo), "cached": len(mine) - len(todo)}
    if todo and pipeline is None:
        raise TaskError(f"{len(todo)} batches are not cached and no pipeline was given")
    if todo:
        pipeline.to(DTYPES[config.dtype])
    with tqdm(
        total=sum(len(b.items) for b in mine),
        initial=sum(len(b.items) for b in mine if b not in todo),
        desc=f"generate {config.task}" + (f" [rank {ranks.rank}]" if ranks.world_size > 1 else ""),
        unit="sample",
        disable=not progress,
    ) as bar:
        for batch in todo:
            samples = _generate_batch(pipeline, config, real, batch)
            info = {
                "stream": batch.stream.name,
                "batch": batch.index,
                "seed": batch.seed,
                "items": [batch.items.start, batch.items.stop],
            }
            store.save(batch.key, samples, info)
            bar.update(len(batch.items))
    ranks.barrier()
    return _collect(batches, store, ranks), counts


def _collect(
    batches: Sequence[_Batch], store: SampleStore, ranks: Ranks
) -> dict[str, list[SampleRef]]:
    samples: dict[str, list[SampleRef]] = {}
    for batch in batches:
        refs = store.lookup(batch.key)
        if refs is None:
            owner = batch.index % ranks.world_size
            raise TaskError(
                f"batch {batch.index} of {batch.stream.name} (rank {owner}) is missing from "
                f"{store.root}; with several nodes, --out must be a shared folder"
            )
        samples.setdefault(batch.stream.name, []).extend(refs)
    return samples
