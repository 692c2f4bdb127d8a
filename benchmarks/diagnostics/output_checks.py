"""Output checks: does what a user gets back look like one image, keep their input, and move?

    python -m benchmarks.diagnostics.output_checks [--checkpoint bundled] [--n 8]
        [--checks given_region seams motion] [--split test|val] [--top-k K] [--temperature T]
        [--out outputs/output_checks]

Plain pixel arithmetic on held-out procedural scenes (the test split by default; choose sampler
settings on ``--split val`` and report them on test); no learned features, so no number here is
comparable to a paper's. The sampler is the pipeline's default (the paper's top-k fraction,
temperature 1) unless ``--top-k`` or ``--temperature`` say otherwise. Each value is a mean over
images with a bootstrap 95% interval (``evaluation.bootstrap``).

* **Given region (outpainting).** MAE (0-255) between the input and the output's given region,
  for each direction plus all around: by default (``keep_input``: the input's pixels, faded into
  the decode over ``nuwa.outpainting.BLEND_PX``) and raw (the decode of the whole canvas), next
  to the tokenizer's own reconstruction error of the input, which a raw decode cannot beat.
* **Seams.** :func:`seam_ratio`: mean |gradient| across boundary lines (columns and rows at
  multiples of the period) over the mean across all other lines. Real images give about 1; a
  decoder that treats tiles apart gives a step at every tile edge. Periods: the tokenizer tile
  (256 px) and the model patch (128 px), and where lines run both ways, vertical and horizontal
  lines apart. For real images, their reconstructions, and text-to-image and unconditional
  samples at ``--width`` x ``--height``.
* **Motion (video model).** Mean |frame t+1 - frame t| (0-255) of real held-out pans, of
  animations from their first frames and of text-to-video clips for their captions. A slideshow
  scores tens; a real pan about 1.

Writes ``output_checks.json`` and ``output_checks.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.diagnostics.report import summarise, write_report
from benchmarks.task_commands import load_pipeline
from nuwa.bundle import BundleMissingError
from nuwa.data.landscapes import render_landscape
from nuwa.data.loaders import PROCEDURAL_SEED_BASE
from nuwa.data.video import render_pan_video
from nuwa.errors import UserError
from nuwa.outpainting import given_region

SEED_OFFSET = 500  # clear of the sample grid's first seeds
CHECKS = ("given_region", "seams", "motion")
PERIODS = (256, 128)
OUTPAINT = {"right": 0.5, "left": 0.5, "down": 0.5, "up": 0.5, "all": 0.25}  # amount / side


def seam_ratio(images: np.ndarray, period: int, lines: str = "both") -> np.ndarray:
    """Per image, boundary over inside gradient energy of uint8 ``[N, H, W, 3]`` -> ``[N]``.

    A boundary line lies between pixel columns (rows) ``c - 1`` and ``c`` with ``c`` a positive
    multiple of ``period``; every other adjacent pair is inside. ``lines``: ``vertical`` (between
    columns: where left and right patches meet), ``horizontal`` (between rows) or ``both``.
    """
    x = images.astype(np.float64).mean(axis=-1)
    directions = {
        "vertical": np.abs(np.diff(x, axis=2)).mean(axis=1),  # [N, W - 1]
        "horizontal": np.abs(np.diff(x, axis=1)).mean(axis=2),  # [N, H - 1]
    }
    chosen = list(directions) if lines == "both" else [lines]
    energy, boundary = [], []
    for direction in chosen:
        per_line = directions[direction]
        at = np.zeros(per_line.shape[1], dtype=bool)
        at[np.arange(period, per_line.shape[1] + 1, period) - 1] = True
        energy.append(per_line)
        boundary.append(at)
    energy, boundary = np.concatenate(energy, axis=1), np.concatenate(boundary)
    if not boundary.any():
        which = "" if lines == "both" else f"{lines} "
        raise ValueError(f"images of {images.shape[1:3]} px have no {which}{period}-px boundary")
    return energy[:, boundary].mean(axis=1) / energy[:, ~boundary].mean(axis=1)


def frame_mae(videos: np.ndarray) -> np.ndarray:
    """Mean |frame t+1 - frame t| (0-255) per clip of uint8 ``[N, F, H, W, 3]`` -> ``[N]``."""
    steps = np.abs(np.diff(videos.astype(np.float64), axis=1))
    return steps.mean(axis=(1, 2, 3, 4))


def region_mae(
    outputs: np.ndarray, inputs: np.ndarray, box: tuple[int, int, int, int]
) -> np.ndarray:
    """Per image MAE (0-255) between ``inputs [N, h, w, 3]`` and ``box`` of ``outputs``."""
    top, left, h, w = box
    given = outputs[:, top : top + h, left : left + w].astype(np.float64)
    return np.abs(given - inputs.astype(np.float64)).mean(axis=(1, 2, 3))


def given_region_checks(pipe, n: int, size: int, first_seed: int, sampler: dict) -> dict:
    """Outpainting MAE of the given region: default, raw, and the tokenizer's own error."""
    scenes = [render_landscape(first_seed + i, size, size) for i in range(n)]
    real = np.stack([s.image for s in scenes])
    captions = [s.caption for s in scenes] if pipe.text_conditioned else None
    results = {}
    for direction, fraction in OUTPAINT.items():
        amount = int(size * fraction)
        inputs = _input_crop(real, direction, amount)
        box = given_region(direction, *inputs.shape[1:3], amount)
        recon = pipe.tokenizer.decode(pipe.tokenizer.encode(inputs)).numpy()
        row = {"tokenizer_reconstruction": summarise(region_mae(recon, inputs, (0, 0, *box[2:])))}
        for mode, keep in (("default", True), ("raw", False)):
            out = pipe.outpaint(list(inputs), direction=direction, amount_px=amount, texts=captions,
                                keep_input=keep, progress=False, seed=1, **sampler)  # fmt: skip
            row[mode] = summarise(region_mae(np.stack(out), inputs, box))
        results[direction] = row
    return results


def _input_crop(real: np.ndarray, direction: str, amount: int) -> np.ndarray:
    """The given part of each full scene ``[N, S, S, 3]`` for an outpainting of ``amount``."""
    return {
        "right": lambda: real[:, :, : real.shape[2] - amount],
        "left": lambda: real[:, :, amount:],
        "down": lambda: real[:, : real.shape[1] - amount],
        "up": lambda: real[:, amount:],
        "all": lambda: real[:, amount:-amount, amount:-amount],
    }[direction]().copy()


def seam_checks(pipe, n: int, width: int, height: int, first_seed: int, sampler: dict) -> dict:
    """Seam ratios of real images, reconstructions, text-to-image and unconditional samples."""
    scenes = [render_landscape(first_seed + 100 + i, width, height) for i in range(n)]
    sets = {"real": np.stack([s.image for s in scenes])}
    sets["reconstruction"] = pipe.tokenizer.decode(pipe.tokenizer.encode(sets["real"])).numpy()
    captions = [s.caption for s in scenes]
    if pipe.text_conditioned:
        sets["text_to_image"] = np.stack(
            pipe.text_to_image(captions, width, height, progress=False, seed=2, **sampler)
        )
    sets["unconditional"] = np.stack(
        pipe.unconditional(n, width, height, progress=False, seed=3, **sampler)
    )
    report = {}
    for name, images in sets.items():
        for period in (p for p in PERIODS if p < max(width, height)):
            report[f"{name}@{period}px"] = summarise(seam_ratio(images, period))
            if period < min(width, height):  # lines both ways: which way do the seams run?
                for lines in ("vertical", "horizontal"):
                    ratio = seam_ratio(images, period, lines)
                    report[f"{name}@{period}px {lines}"] = summarise(ratio)
    return report


def motion_checks(pipe, n: int, size: int, frames: int, first_seed: int, sampler: dict) -> dict:
    """Consecutive-frame MAE of real pans, animations of their first frames, and T2V clips."""
    videos = [render_pan_video(first_seed + 200 + i, size, size, frames) for i in range(n)]
    real = np.stack([v.frames for v in videos])
    results = {"real": summarise(frame_mae(real))}
    animated = pipe.animate(list(real[:, 0]), frames, progress=False, seed=4, **sampler)
    results["animation"] = summarise(frame_mae(np.stack(animated)))
    if pipe.text_conditioned:
        clips = pipe.text_to_video([v.caption for v in videos], frames, size, size,
                                   progress=False, seed=5, **sampler)  # fmt: skip
        results["text_to_video"] = summarise(frame_mae(np.stack(clips)))
    return results


def markdown(report: dict) -> str:
    def cell(v: dict) -> str:
        return f"{v['mean']:.2f} [{v['low']:.2f}, {v['high']:.2f}]"

    sampler = ", ".join(f"{k} {v}" for k, v in report["sampler"].items()) or "default"
    lines = [f"{report['split']} split, n = {report['n']}, sampler: {sampler}", ""]
    if "given_region" in report:
        lines += ["## Given region MAE (0-255): default / raw / tokenizer reconstruction", ""]
        lines += ["| direction | default | raw | tokenizer |", "|---|---:|---:|---:|"]
        for direction, row in report["given_region"].items():
            lines.append(f"| {direction} | {cell(row['default'])} | {cell(row['raw'])} | "
                         f"{cell(row['tokenizer_reconstruction'])} |")  # fmt: skip
        lines.append("")
    if "seams" in report:
        lines += ["## Seam ratio (boundary / inside gradient energy)", ""]
        lines += ["| images | ratio |", "|---|---:|"]
        lines += [f"| {name} | {cell(v)} |" for name, v in report["seams"].items()]
        lines.append("")
    if "motion" in report:
        lines += ["## Consecutive-frame MAE (0-255)", "", "| clips | MAE |", "|---|---:|"]
        lines += [f"| {name} | {cell(v)} |" for name, v in report["motion"].items()]
        lines.append("")
    return "\n".join(lines)


def motion_report(args: argparse.Namespace, first_seed: int, sampler: dict) -> dict:
    """The motion check with the checkpoint's video model, or why it was skipped."""
    try:
        video = load_pipeline(args.checkpoint, args.tokenizer, None, "cpu", video=True)
    except BundleMissingError as err:
        return {"motion_skipped": str(err)}
    if video.model.extent.f == 0:
        return {"motion_skipped": f"{video.model_id} is an image model"}
    motion = motion_checks(video, args.n, 256, args.frames, first_seed, sampler)
    return {"video_model_id": video.model_id, "motion": motion}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.diagnostics.output_checks", description=__doc__
    )
    parser.add_argument("--checkpoint", default="bundled")
    parser.add_argument("--tokenizer", default=None)
    parser.add_argument("--n", type=int, default=8, help="images (and clips) per check, >= 8")
    parser.add_argument("--checks", nargs="+", choices=CHECKS, default=list(CHECKS))
    parser.add_argument("--split", choices=("test", "val"), default="test")
    parser.add_argument("--top-k", type=int, default=None, help="default: the paper's fraction")
    parser.add_argument("--temperature", type=float, default=None, help="default 1; 0: greedy")
    parser.add_argument("--size", type=int, default=512, help="outpainting scene side, px")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("outputs/output_checks"))
    args = parser.parse_args(argv)
    if args.n < 8:
        parser.error("--n must be at least 8 (the bootstrap interval needs 8 items)")
    if (args.top_k is not None and args.top_k < 1) or (args.temperature or 0) < 0:
        parser.error("--top-k must be >= 1 and --temperature >= 0 (0: greedy)")
    chosen = (("top_k", args.top_k), ("temperature", args.temperature))
    sampler = {k: v for k, v in chosen if v is not None}
    first_seed = PROCEDURAL_SEED_BASE[args.split] + SEED_OFFSET
    start = time.perf_counter()
    report = {"checkpoint": args.checkpoint, "n": args.n, "split": args.split, "sampler": sampler}
    try:
        if "given_region" in args.checks or "seams" in args.checks:
            pipe = load_pipeline(args.checkpoint, args.tokenizer, None, "cpu")
            report["model_id"] = pipe.model_id
        if "given_region" in args.checks:
            report["given_region"] = given_region_checks(
                pipe, args.n, args.size, first_seed, sampler
            )
        if "seams" in args.checks:
            report["seams"] = seam_checks(
                pipe, args.n, args.width, args.height, first_seed, sampler
            )
        if "motion" in args.checks:
            report |= motion_report(args, first_seed, sampler)
    except (UserError, OSError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    report["seconds"] = time.perf_counter() - start
    write_report(args.out, "output_checks", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
