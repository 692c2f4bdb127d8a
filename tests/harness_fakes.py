"""Test doubles for the harness: a fake pipeline with the nuwa.pipeline API, tiny seeded feature
extractors registered under test-only (surrogate) names, and a command line that runs one task
with them (used by the kill/resume and torchrun tests as a subprocess).

The fake pipeline is deterministic in (inputs, seed), like the real one: outpainting mirrors the
given half into the generated half and adds seeded noise; ``quality=0`` returns pure noise there
(the "degraded model" of the regression test). Every call is appended to ``calls`` and, when
``log`` is set, to a file, so tests can see exactly which batches were generated.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.harness.config import outpaint_regions  # noqa: E402
from evaluation.extractors import ExtractorSpec, list_extractors, register_extractor  # noqa: E402

TINY_IMAGE = "tiny_cnn.surrogate_seed0@test"
TINY_CLIP = "tiny_clip.surrogate_seed0@test"
TINY_VIDEO = "tiny_c3d.surrogate_seed0@test"
TINY_FEATURES = [
    f"features.image={TINY_IMAGE}",
    f"features.clip={TINY_CLIP}",
    f"features.video={TINY_VIDEO}",
]


def _seed_of(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "big")


class FakePipeline:
    """Deterministic stand-in for ``nuwa.pipeline.Pipeline`` (same method names and shapes)."""

    patch_px = 128
    text_conditioned = True

    def __init__(self, quality: float = 1.0, log: str | Path | None = None, delay_s: float = 0.0):
        self.quality, self.log, self.delay_s = quality, log, delay_s
        self.model_id = f"fake-nuwa@{'good' if quality == 1.0 else 'bad'}"
        self.checkpoint_sha256 = {"model": hashlib.sha256(f"fake-{quality}".encode()).hexdigest()}
        self.calls: list[dict] = []
        self.dtype = torch.float32

    def to(self, dtype: torch.dtype) -> FakePipeline:
        self.dtype = dtype
        return self

    def _record(self, method: str, batch: int, seed: int) -> None:
        call = {"method": method, "batch": batch, "seed": seed, "pid": os.getpid()}
        self.calls.append(call)
        if self.log:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(call) + "\n")
        time.sleep(self.delay_s)

    def _noise(self, shape, seed: int, index: int) -> np.ndarray:
        return np.random.default_rng(_seed_of(seed, index)).normal(0, 1, shape)

    def outpaint(self, images, *, direction, amount_px, texts=None, seed=0, **opts):
        self._record("outpaint", len(images), seed)
        out = []
        for index, given in enumerate(images):
            h, w = given.shape[:2]
            height, width = (
                (h + amount_px, w) if direction in ("up", "down") else (h, w + amount_px)
            )
            given_region, generated = outpaint_regions(direction, height, width)
            canvas = np.zeros((height, width, 3), np.float64)
            flip = given[::-1] if direction in ("up", "down") else given[:, ::-1]
            noise = self._noise(flip.shape, seed, index)
            fill = self.quality * (flip + 12 * noise) + (1 - self.quality) * (128 + 90 * noise)
            canvas[
                given_region.top : given_region.top + h, given_region.left : given_region.left + w
            ] = given
            canvas[
                generated.top : generated.top + generated.height,
                generated.left : generated.left + generated.width,
            ] = fill
            out.append(np.clip(canvas, 0, 255).round().astype(np.uint8))
        return out

    def text_to_image(self, texts, width, height, *, seed=0, **opts):
        self._record("text_to_image", len(texts), seed)
        out = []
        for index, text in enumerate(texts):
            rng = np.random.default_rng(_seed_of(text))
            base = rng.uniform(40, 220, 3)
            ramp = np.linspace(0, 60, height)[:, None, None]
            image = base + ramp + 20 * self._noise((height, width, 3), seed, index)
            out.append(np.clip(image, 0, 255).round().astype(np.uint8))
        return out

    def animate(self, first_frames, frames, *, seed=0, **opts):
        self._record("animate", len(first_frames), seed)
        return [
            np.stack(
                [
                    np.clip(
                        np.roll(first, 3 * t, axis=1)
                        + 10 * self._noise(first.shape, seed, 100 * index + t),
                        0,
                        255,
                    )
                    .round()
                    .astype(np.uint8)
                    for t in range(frames)
                ]
            )
            for index, first in enumerate(first_frames)
        ]

    def text_to_video(self, texts, frames, width, height, *, seed=0, **opts):
        self._record("text_to_video", len(texts), seed)
        images = self.text_to_image(texts, width, height, seed=seed)
        self.calls.pop()
        return [
            np.stack([np.roll(image, 2 * t, axis=1) for t in range(frames)]) for image in images
        ]


class _TinyImage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, kernel_size=13, stride=13)
        self.head = nn.Linear(16, 10, bias=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = torch.relu(self.conv(x / 128.0 - 1.0)).mean(dim=(2, 3))
        return {"pool": pooled, "logits_unbiased": self.head(pooled)}


class _TinyClip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=16, stride=16)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image_embed": torch.tanh(self.conv(x)).mean(dim=(2, 3))}

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor(
            [[((_seed_of(t) >> k) & 255) / 255.0 - 0.5 for k in range(8)] for t in texts]
        )


class _TinyVideo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 12, kernel_size=(2, 16, 16), stride=(1, 16, 16))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pool": torch.relu(self.conv(x / 128.0 - 1.0)).mean(dim=(2, 3, 4))}


def _seeded(module_cls):
    def build(spec) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.surrogate_seed)
            return module_cls()

    return build


def register_tiny_extractors() -> None:
    """Register the test-only extractors (once per process)."""
    known = {spec.name for spec in list_extractors()}
    specs = [
        (
            TINY_IMAGE,
            "image",
            "clean-pil-bicubic-299",
            {"pool": 16, "logits_unbiased": 10},
            "pool",
            _TinyImage,
        ),
        (TINY_CLIP, "image", "openai-clip-224", {"image_embed": 8}, "image_embed", _TinyClip),
        (TINY_VIDEO, "video", "stylegan-v-i3d-input", {"pool": 12}, "pool", _TinyVideo),
    ]
    for name, modality, preprocessing, outputs, default, module_cls in specs:
        if name not in known:
            register_extractor(
                ExtractorSpec(
                    name=name,
                    modality=modality,
                    architecture=f"test-only {module_cls.__name__}",
                    weights=None,
                    surrogate_seed=0,
                    paper_weights=False,
                    preprocessing=preprocessing,
                    input="test",
                    outputs=outputs,
                    default_output=default,
                    build=_seeded(module_cls),
                )
            )


def run_fake(
    task: str,
    out: Path,
    *,
    n: int,
    batch_size: int,
    table: Path | None,
    quality: float = 1.0,
    log: Path | None = None,
    delay_s: float = 0.0,
    overrides: list[str] | None = None,
    setting: str | None = None,
    data: str = "procedural",
):
    """Run ``task`` on ``data`` (default: the procedural set) with the fake pipeline and the
    tiny extractors."""
    from benchmarks.harness.config import resolve_config
    from benchmarks.harness.distributed import close_ranks, init_ranks
    from benchmarks.harness.run import Identity, evaluate
    from benchmarks.tasks import get_task

    register_tiny_extractors()
    ranks = init_ranks()
    try:
        spec = get_task(task)
        config = resolve_config(
            spec,
            data=data,
            n=n,
            batch_size=batch_size,
            overrides=TINY_FEATURES + list(overrides or []),
        )
        pipeline = FakePipeline(quality=quality, log=log, delay_s=delay_s)
        identity = Identity(checkpoint="fake", setting=setting)
        return evaluate(
            spec,
            config,
            pipeline,
            out=out,
            table=table,
            identity=identity,
            ranks=ranks,
            progress=False,
        ), pipeline
    finally:
        close_ranks()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num-samples", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--call-log", type=Path)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--override", action="append", default=[], help="key=value (repeatable)")
    args = parser.parse_args()
    outcome, _ = run_fake(
        args.task,
        args.out,
        n=args.num_samples,
        batch_size=args.batch_size,
        table=None,
        log=args.call_log,
        delay_s=args.delay,
        overrides=args.override,
    )
    if outcome.results is not None:
        print(json.dumps({"path": str(outcome.path), "counts": outcome.counts}))


if __name__ == "__main__":
    main()
