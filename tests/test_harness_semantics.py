"""What the harness hands the model and what it measures, seen through a recording pipeline that
shares no geometry code with the harness: every box below is written out by hand."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from harness_fakes import TINY_FEATURES, register_tiny_extractors

from benchmarks.harness.config import resolve_config
from benchmarks.harness.run import Identity, evaluate
from benchmarks.tasks import get_task
from evaluation.block_fid import BlockFID
from nuwa.data.loaders import ProceduralRecords

register_tiny_extractors()
N, BATCH = 4, 2


class RecordingPipeline:
    """Returns the given image where the model keeps it and a flat grey where it generates, and
    writes down every call."""

    patch_px = 128
    text_conditioned = True
    model_id = "recording@1"
    checkpoint_sha256 = {"model": "0" * 64}

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.dtype = torch.float32

    def to(self, dtype):
        self.dtype = dtype
        return self

    def outpaint(self, images, *, direction, amount_px, texts=None, seed=0, **opts):
        self.calls.append({"images": [np.array(i) for i in images], "direction": direction,
                           "amount": amount_px, "texts": texts, "seed": seed})  # fmt: skip
        out = []
        for given in images:
            h, w = given.shape[:2]
            grey_rows = np.full((amount_px, w, 3), 128, np.uint8)
            grey_cols = np.full((h, amount_px, 3), 128, np.uint8)
            out.append(
                {
                    "up": np.concatenate([grey_rows, given], axis=0),
                    "down": np.concatenate([given, grey_rows], axis=0),
                    "left": np.concatenate([grey_cols, given], axis=1),
                    "right": np.concatenate([given, grey_cols], axis=1),
                }[direction]
            )
        return out

    def text_to_image(self, texts, width, height, *, seed=0, **opts):
        self.calls.append({"texts": list(texts), "seed": seed, "size": (height, width)})
        rng = np.random.default_rng(seed % 2**32)
        return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in texts]


def run(task: str, tmp_path, monkeypatch) -> tuple[RecordingPipeline, list, dict]:
    """Evaluate ``task`` on the procedural set; returns the pipeline, the (region, canvases)
    every BlockFID.update saw, and the config."""
    seen = []
    update = BlockFID.update

    def spy(self, canvases, real):
        seen.append((self.region, real, np.array(canvases)))
        return update(self, canvases, real)

    monkeypatch.setattr(BlockFID, "update", spy)
    spec = get_task(task)
    config = resolve_config(spec, data="procedural", n=N, batch_size=BATCH,
                            overrides=[*TINY_FEATURES, "metrics=[block_fid]"])  # fmt: skip
    pipeline = RecordingPipeline()
    evaluate(spec, config, pipeline, out=tmp_path, identity=Identity(checkpoint="rec"),
             progress=False)  # fmt: skip
    return pipeline, seen, config


def batch_seed(seed: int, stream: str, index: int) -> int:
    """The documented per-batch seed: int(sha256(f'{seed}/{stream}/{index}')[:8 bytes]) >> 1."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{stream}/{index}".encode()).digest()[:8]) >> 1


@pytest.mark.parametrize("direction", ["up", "down", "left", "right"])
def test_outpainting_gives_the_kept_half_and_measures_the_other(direction, tmp_path, monkeypatch):
    pipeline, seen, config = run(f"lhqc_outpaint_{direction}", tmp_path, monkeypatch)
    h, w = config.height, config.width
    real = [r.image for r in ProceduralRecords(N, w, h, "test")]
    kept = {  # the paper's Up Extend keeps the lower half and generates the upper one
        "up": lambda x: x[h // 2 :],
        "down": lambda x: x[: h // 2],
        "left": lambda x: x[:, w // 2 :],
        "right": lambda x: x[:, : w // 2],
    }[direction]
    given = [image for call in pipeline.calls for image in call["images"]]
    assert len(given) == N
    for image, canvas in zip(given, real, strict=True):
        np.testing.assert_array_equal(image, kept(canvas))
    amount = h // 2 if direction in ("up", "down") else w // 2
    assert {(c["direction"], c["amount"]) for c in pipeline.calls} == {(direction, amount)}
    generated_box = {
        "up": (0, 0, h // 2, w),
        "down": (h // 2, 0, h // 2, w),
        "left": (0, 0, h, w // 2),
        "right": (0, w // 2, h, w // 2),
    }[direction]
    regions = {tuple(region.as_list()) if region else None for region, _, _ in seen}
    assert regions == {generated_box}  # measured on the generated half, on both sides
    assert [call["seed"] for call in pipeline.calls] == [
        batch_seed(config.seed, "canvas", index) for index in range(N // BATCH)
    ]


def test_text_to_image_gets_each_caption_and_its_own_seed(tmp_path, monkeypatch):
    pipeline, seen, config = run("lhqc_t2i", tmp_path, monkeypatch)
    captions = [r.text for r in ProceduralRecords(N, config.width, config.height, "test")]
    assert all(captions) and len(set(captions)) > 1
    assert [text for call in pipeline.calls for text in call["texts"]] == captions
    seeds = [call["seed"] for call in pipeline.calls]
    assert seeds == [batch_seed(config.seed, "canvas", i) for i in range(N // BATCH)]
    assert {call["size"] for call in pipeline.calls} == {(config.height, config.width)}
    assert {region for region, _, _ in seen} == {None}  # text-to-image measures whole canvases
