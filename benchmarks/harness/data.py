"""The real side of a task: test images or clips (with captions), stored once, losslessly.

Sources: ``procedural`` (the embedded set: landscapes for image tasks, camera pans over them for
video tasks, recorded under their own data set names) or a path to real data (LHQ/LHQC through
``nuwa.data.load_records`` with the LHQC-repro split; a folder of video files, with an optional
``metadata.jsonl`` of captions, for video tasks). Without ``--data``, a task looks in its
default folder and otherwise stops with a message saying where to put the data and how to use
the embedded set instead; it never swaps data sets silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmarks.harness.cache import digest, list_hash, read_sample, stored_intact, write_sample
from benchmarks.harness.config import PROCEDURAL, EvalConfig
from benchmarks.harness.distributed import Ranks
from benchmarks.tasks import TaskError, TaskSpec
from evaluation.cache import array_sha256, warn_changed
from evaluation.samples import VIDEO_SUFFIXES, read_video
from nuwa.data import DATASET_NAME, ProceduralRecords, render_pan_video
from nuwa.data.loaders import PROCEDURAL_SEED_BASE, load_records
from nuwa.data.splits import SPLIT_NAME
from nuwa.io import atomic_write_json

PROCEDURAL_VIDEO_NAME = "procedural-pan-videos-v1"  # pans over procedural-landscapes-v1 scenes
DATA_ENV = "NUWA_DATA_DIR"
DEFAULT_DATA_DIR = Path("~/.cache/nuwa-infinity/data")
# Default folder (under the data dir) and what goes in it, per paper data set.
DEFAULT_FOLDERS = {
    "LHQC": ("lhq_1024", "the LHQ1024 images (0000000.png ... 0089999.png)"),
    "LHQ-V": ("lhq_v", "the LHQ-V test clips (video files, 1024x1024)"),
    "": ("landscape_t2v", "test clips (video files) with a metadata.jsonl of captions"),
}
VIDEO_KINDS = ("animate", "t2v")


@dataclass(frozen=True)
class RealItem:
    """One real test sample on disk: id, file (image) or folder of frames (video), caption."""

    id: str
    path: Path
    sha256: str
    text: str | None

    def load(self) -> np.ndarray:
        return read_sample(self.path)


@dataclass(frozen=True)
class RealSet:
    """The real side of a run: its data set name, items in order and their manifest hash."""

    name: str
    items: list[RealItem]
    manifest_sha256: str
    source: str
    first_seed: int | None = None  # procedural sets: the seed of item 0

    def captions(self) -> list[str]:
        missing = [item.id for item in self.items if not item.text]
        if missing:
            raise TaskError(
                f"{len(missing)} test items have no caption (first: {missing[0]}); this task "
                "needs captions (LHQC captions in the data manifest or metadata.jsonl)"
            )
        return [item.text for item in self.items]


def default_data_path(spec: TaskSpec) -> Path:
    """Where a task looks for its real data when ``--data`` is not given."""
    root = Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR).expanduser()
    return root / DEFAULT_FOLDERS[spec.paper_data][0]


def choose_data(spec: TaskSpec, data: str | None) -> str:
    """The data source to use: ``data`` if given, else the default folder if it exists; otherwise
    a one-line TaskError saying where to put the data and how to run on the embedded set."""
    if data and data.startswith(f"{PROCEDURAL}:"):
        raise TaskError(f"--data {data}: write --data {PROCEDURAL} and set the count with --n")
    if data:
        return data
    path = default_data_path(spec)
    if path.exists():
        return str(path)
    what = DEFAULT_FOLDERS[spec.paper_data][1]
    name = spec.paper_data or "real"
    raise TaskError(
        f"{spec.label} needs the {name} test data, and {path} does not exist: put {what} there "
        f"(or set {DATA_ENV}, or pass --data PATH); to run on the embedded procedural set "
        f"instead, add --data {PROCEDURAL} (recorded as a procedural data set, never as {name})"
    )


def _source_identity(config: EvalConfig) -> dict:
    if config.profile == PROCEDURAL:
        return {"source": PROCEDURAL}
    path = Path(config.data).expanduser().resolve()
    if not path.exists():
        raise TaskError(f"--data {config.data}: no such file or folder")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    listing = [
        (str(p.relative_to(path.parent)), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    ]
    return {"source": str(path), "listing": list_hash([json.dumps(entry) for entry in listing])}


def _procedural_videos(config: EvalConfig) -> Iterator[tuple[str, np.ndarray, str]]:
    first = PROCEDURAL_SEED_BASE[config.split]
    for seed in range(first, first + config.n):
        video = render_pan_video(seed, config.width, config.height, config.frames)
        yield f"pan_{seed:07d}", video.frames, video.caption


def _video_folder(config: EvalConfig) -> Iterator[tuple[str, np.ndarray, str | None]]:
    folder = Path(config.data).expanduser()
    if not folder.is_dir():
        raise TaskError(f"--data {folder}: video tasks need a folder of video files")
    captions = {}
    metadata = folder / "metadata.jsonl"
    if metadata.exists():
        for line in metadata.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                captions[row["file_name"]] = row.get("text")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if len(files) < config.n:
        raise TaskError(f"{folder} holds {len(files)} video files; this run needs n={config.n}")
    for path in files[: config.n]:
        frames = read_video(path)
        if frames.shape[0] < config.frames or frames.shape[1:3] != tuple(config.canvas):
            raise TaskError(
                f"{path}: {frames.shape[0]} frames of {frames.shape[1]}x{frames.shape[2]}; this "
                f"task needs at least {config.frames} frames of {config.height}x{config.width}"
            )
        yield path.stem, frames[: config.frames], captions.get(path.name)


def _records(config: EvalConfig) -> Iterator[tuple[str, np.ndarray, str | None]]:
    """(id, uint8 sample, caption) of the real test items, in order."""
    if config.kind in VIDEO_KINDS:
        yield from (
            _procedural_videos(config) if config.profile == PROCEDURAL else _video_folder(config)
        )
        return
    if config.profile == PROCEDURAL:
        records = ProceduralRecords(config.n, config.width, config.height, config.split)
    else:
        if config.height != config.width:
            raise TaskError(f"real LHQ images are square; canvas {config.canvas} is not")
        records = load_records(config.data, size=config.height, split=config.split, limit=config.n)
    count = 0
    for record in records:
        count += 1
        yield record.id, record.image, record.text
    if count < config.n:
        raise TaskError(
            f"{config.data} has {count} {config.split} images; this run needs n={config.n}"
        )


def dataset_name(config: EvalConfig) -> str:
    """The name results are recorded under (never the paper's LHQC for procedural data)."""
    if config.profile == PROCEDURAL:
        return PROCEDURAL_VIDEO_NAME if config.kind in VIDEO_KINDS else DATASET_NAME
    if config.kind in VIDEO_KINDS:
        return f"video-folder:{Path(config.data).name}"
    return SPLIT_NAME


def _intact(manifest: Path) -> bool:
    """Whether a stored real set is complete and every item still has the pixels it was
    written with (a changed one: warn, and the caller writes the set again)."""
    try:
        stored = json.loads(manifest.read_text(encoding="utf-8"))["items"]
    except (OSError, ValueError, KeyError):
        return False
    for item in stored:
        path = manifest.parent / item["file"]
        if not stored_intact(path, item["sha256"]):
            warn_changed(f"real item {path} is missing or", "preparing the real set again")
            return False
    return True


def prepare_real(config: EvalConfig, root: Path, ranks: Ranks, progress: bool = True) -> RealSet:
    """The real items of ``config``, written once under ``root`` (rank 0 writes, others wait)."""
    frames = config.frames if config.kind in VIDEO_KINDS else 0
    key = digest(
        {
            "name": dataset_name(config),
            **_source_identity(config),
            "split": config.split,
            "canvas": config.canvas,
            "frames": frames,
            "n": config.n,
        }
    )
    folder = root / key[:16]
    manifest = folder / "manifest.json"
    if ranks.is_main and not _intact(manifest):
        items = []
        label = "procedural data" if config.profile == PROCEDURAL else "real data"
        bar = tqdm(_records(config), total=config.n, desc=label, unit="item", disable=not progress)
        for index, (item_id, sample, text) in enumerate(bar):
            path = write_sample(folder / f"{index:05d}_{item_id}", sample)
            items.append(
                {"id": item_id, "file": path.name, "sha256": array_sha256(sample), "text": text}
            )
        atomic_write_json(manifest, {"items": items})
    ranks.barrier()
    stored = json.loads(manifest.read_text(encoding="utf-8"))["items"]
    items = [RealItem(s["id"], folder / s["file"], s["sha256"], s["text"]) for s in stored]
    return RealSet(
        name=dataset_name(config),
        items=items,
        manifest_sha256=list_hash([f"{item.id}:{item.sha256}" for item in items]),
        source=config.data,
        first_seed=PROCEDURAL_SEED_BASE[config.split] if config.profile == PROCEDURAL else None,
    )
