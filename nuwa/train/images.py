"""Training images for the tokenizers: in-memory pools, random crops, reconstruction grids.

Images come from ``nuwa.data.loaders.load_records(source, size=..., split=...)`` (the
procedural landscapes are ``source="procedural"``); videos from
``nuwa.data.video.render_pan_video`` over the same disjoint per-split seed ranges.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from nuwa.data.loaders import PROCEDURAL_SEED_BASE, load_records
from nuwa.data.video import render_pan_video
from nuwa.io import atomic_open
from nuwa.train.config import DataConfig

PROCEDURAL_VIDEO = "pan_videos"


def image_pool(data: DataConfig, split: str) -> np.ndarray:
    """uint8 [N, size, size, 3]: ``train_items`` or ``val_items`` images of ``data.source``."""
    count = data.train_items if split == "train" else data.val_items
    if data.source == PROCEDURAL_VIDEO:
        return video_pool(data, split).reshape(-1, data.size, data.size, 3)
    source = f"procedural:{count}" if data.source == "procedural" else data.source
    records = load_records(source, size=data.size, split=split)
    bar = tqdm(islice(records, count), total=count, desc=f"load {split} images", leave=False)
    images = [r.image for r in bar]
    if not images:
        raise ValueError(f"data source {data.source!r} has no {split!r} images")
    return np.stack(images)


def video_pool(data: DataConfig, split: str) -> np.ndarray:
    """uint8 [N, frames, size, size, 3] procedural panning videos."""
    if data.source != PROCEDURAL_VIDEO:
        raise ValueError(f"PG-VQGAN trains on videos: use data=pan_videos, not {data.source!r}")
    count = data.train_items if split == "train" else data.val_items
    first = PROCEDURAL_SEED_BASE[split]
    seeds = tqdm(range(first, first + count), desc=f"render {split} videos", leave=False)
    return np.stack([render_pan_video(s, data.size, data.size, data.frames).frames for s in seeds])


def random_crops(
    pool: np.ndarray, batch: int, crop: int, generator: torch.Generator
) -> torch.Tensor:
    """``batch`` random crops with random horizontal flips from pool uint8 [N, ..., H, W, 3].

    Returns float [B, ..., 3, crop, crop] in [-1, 1]; leading axes (e.g. frames) share a crop.
    """
    n, *lead, h, w, _ = pool.shape
    out = []
    for _ in range(batch):
        i = int(torch.randint(n, (1,), generator=generator))
        y = int(torch.randint(h - crop + 1, (1,), generator=generator))
        x = int(torch.randint(w - crop + 1, (1,), generator=generator))
        item = torch.from_numpy(pool[i, ..., y : y + crop, x : x + crop, :])
        if torch.rand((), generator=generator) < 0.5:
            item = item.flip(-2)
        out.append(item)
    x = torch.stack(out).movedim(-1, -3).float()
    return x.div(127.5).sub(1.0)


def save_grid(path: str | Path, rows: list[np.ndarray | torch.Tensor]) -> None:
    """PNG with one row per uint8 [N, H, W, 3] array (e.g. originals, reconstructions)."""
    strips = [np.concatenate(list(np.asarray(r)), axis=1) for r in rows]
    with atomic_open(path, "wb") as f:
        Image.fromarray(np.concatenate(strips, axis=0)).save(f, format="PNG")
