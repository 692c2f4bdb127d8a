"""Vertical layout of generated landscapes: do sky, ridges and ground land at the right heights?

    python -m benchmarks.diagnostics.layout_score [--checkpoint DIR | MODEL --tokenizer TOK]
        [--n 32] [--size 512] [--out FILE.json]

Held-out procedural scenes (test split, procedural-landscapes-v1) have a known ground truth. For
each LHQC direction the model generates one half of a scene from the other half, and for
text-to-image the whole scene from its caption. The score is the **row-profile L1**: the mean
absolute difference (0-255 scale) between the mean colour of each pixel row of the generated
region and of the same region of the real scene. Continuing clouds below a horizon, or ground
above it, scores high. The score is a proxy with no learned weights, on procedural data only,
never a paper metric.

Two references come from the same run. A **shuffled-scene** baseline scores each scene's own
region against the next scene's, the level of a model that paints a plausible landscape whose
layout ignores its input. The tokenizer's **reconstruction** is the best a sample can reach.
Each score is a mean over scenes ± its standard error.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.harness.config import Region, outpaint_regions
from benchmarks.task_commands import load_pipeline
from evaluation.layout import profile_l1, row_profiles
from nuwa.data.landscapes import render_landscape
from nuwa.data.loaders import PROCEDURAL_SEED_BASE
from nuwa.errors import UserError
from nuwa.io import atomic_write_json
from nuwa.outpainting import SIDES
from nuwa.train.export import SAMPLER


def row_profile_l1(generated: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Per-image L1 between row-mean colours: uint8 ``[N, H, W, 3]`` twice -> float ``[N]``
    (``evaluation.layout``, the harness metric ``layout``)."""
    return profile_l1(row_profiles(generated), row_profiles(real))


def summary(scores: np.ndarray) -> dict:
    """Mean and standard error over scenes of a ``[N]`` score."""
    return {"mean": float(scores.mean()), "sem": float(scores.std(ddof=1) / np.sqrt(len(scores)))}


def score(
    generated: np.ndarray, real: np.ndarray, region: Region, reconstructed: np.ndarray
) -> dict:
    """Model, shuffled-scene and reconstruction scores on ``region`` of uint8 ``[N, H, W, 3]``."""
    real_part = region.crop(real)
    return {
        "model": summary(row_profile_l1(region.crop(generated), real_part)),
        "shuffled_scene": summary(row_profile_l1(np.roll(real_part, 1, axis=0), real_part)),
        "reconstruction": summary(row_profile_l1(region.crop(reconstructed), real_part)),
    }


@torch.no_grad()
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", default="bundled", help="'bundled', a checkpoint folder or a model file"
    )
    parser.add_argument("--tokenizer", help="the tokenizer of a --checkpoint model file")
    parser.add_argument("--n", type=int, default=32, help="held-out scenes (at least 2)")
    parser.add_argument("--size", type=int, default=512, help="scene side in px (multiple of 256)")
    parser.add_argument(
        "--top-k", type=int, default=None, help="default: the paper's fraction; 0: no top-k"
    )
    parser.add_argument("--temperature", type=float, default=SAMPLER["temperature"])
    parser.add_argument("--out", help="write the results here as JSON")
    args = parser.parse_args(argv)
    if args.n < 2 or args.size < 256 or args.size % 256:
        parser.error("--n must be at least 2 and --size a positive multiple of 256")
    if (args.top_k is not None and args.top_k < 0) or args.temperature <= 0:
        parser.error("--top-k must be >= 0 and --temperature > 0")
    sampler = {**SAMPLER, "temperature": args.temperature}
    if args.top_k is not None:
        sampler |= {"top_k": args.top_k or None, "top_k_fraction": None}

    try:
        pipe = load_pipeline(args.checkpoint, args.tokenizer, None, "cpu")
    except (UserError, OSError) as error:
        parser.error(str(error))
    seeds = range(PROCEDURAL_SEED_BASE["test"], PROCEDURAL_SEED_BASE["test"] + args.n)
    scenes = [render_landscape(seed, args.size, args.size) for seed in seeds]
    real = np.stack([scene.image for scene in scenes])
    captions = [scene.caption for scene in scenes]
    reconstructed = pipe.tokenizer.decode(pipe.tokenizer.encode(real)).numpy()

    results = dict(checkpoint=args.checkpoint, scenes=args.n, size=args.size, sampler=sampler)
    for direction in SIDES:
        given, generated = outpaint_regions(direction, args.size, args.size)
        outputs = pipe.outpaint(
            [given.crop(image) for image in real],
            direction=direction,
            amount_px=args.size // 2,
            texts=captions,
            progress=True,
            **sampler,
        )
        results[direction] = score(np.stack(outputs), real, generated, reconstructed)
    images = pipe.text_to_image(captions, args.size, args.size, progress=True, **sampler)
    whole = Region(0, 0, args.size, args.size)
    results["text_to_image"] = score(np.stack(images), real, whole, reconstructed)

    print(f"row-profile L1 (0-255, lower is better) on {args.n} procedural {args.size}² scenes")
    print(f"{'task':15s} {'model':>13s} {'shuffled scene':>15s} {'reconstruction':>15s}")
    for task in (*SIDES, "text_to_image"):
        cells = [f"{r['mean']:6.1f} ± {r['sem']:4.1f}" for r in results[task].values()]
        print(f"{task:15s} {cells[0]:>13s} {cells[1]:>15s} {cells[2]:>15s}")
    if args.out:
        atomic_write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
