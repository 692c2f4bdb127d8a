"""The sample grid a run leaves beside its results: generated samples next to the real ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.harness.cache import SampleRef
from benchmarks.harness.config import EvalConfig, outpaint_regions
from benchmarks.harness.data import RealSet
from nuwa.data.contact_sheet import write_contact_sheet

BOUNDARY = np.array([255, 0, 255], dtype=np.uint8)  # marks where the given region ends


def _mark_boundary(canvas: np.ndarray, config: EvalConfig) -> np.ndarray:
    """A copy of an outpainted canvas with a 2-px line along the edge of the generated region."""
    _, region = outpaint_regions(config.direction, config.height, config.width)
    marked = canvas.copy()
    edge = {
        "up": (slice(region.height - 1, region.height + 1), slice(None)),
        "down": (slice(region.top - 1, region.top + 1), slice(None)),
        "left": (slice(None), slice(region.width - 1, region.width + 1)),
        "right": (slice(None), slice(region.left - 1, region.left + 1)),
    }[config.direction]
    marked[edge] = BOUNDARY
    return marked


def _frames(clip: np.ndarray, count: int = 4) -> np.ndarray:
    """``count`` evenly spaced frames of [F, H, W, 3] side by side -> [H, count * W, 3]."""
    picks = np.linspace(0, len(clip) - 1, count).round().astype(int)
    return np.concatenate([clip[i] for i in picks], axis=1)


def write_grid(
    path: Path, config: EvalConfig, samples: list[SampleRef], real: RealSet, count: int = 8
) -> None:
    """Write a PNG with the first ``count`` generated samples, each followed by its real one
    (outpainting: the generated region's edge drawn in magenta; videos: 4 frames per clip)."""
    images, captions = [], []
    for index in range(min(count, len(samples))):
        generated, reference = samples[index].load(), real.items[index].load()
        if config.kind == "outpaint":
            generated = _mark_boundary(generated, config)
        elif generated.ndim == 4:
            generated, reference = _frames(generated), _frames(reference)
        text = real.items[index].text if config.kind != "outpaint" or config.text else None
        images += [generated, reference]
        captions += [f"#{index} generated" + (f": {text}" if text else ""), f"#{index} real"]
    video = config.kind in ("animate", "t2v")
    write_contact_sheet(
        path,
        images,
        captions=captions,
        columns=2 if video else 4,
        thumb_width=512 if video else 256,
    )
