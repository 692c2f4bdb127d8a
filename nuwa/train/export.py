"""Make the bundled model directory (``nuwa/bundled/``) from a finished transformer run.

    python -m nuwa.train.export --run RUN_DIR --tokenizer TOKENIZER --out nuwa/bundled \\
        [--earlier-run PHASE_DIR ...] [--val-shards DIR] [--name NAME] [--decode-margin N]
        [--video-run RUN_DIR [--video-val-shards DIR]]
    python -m nuwa.train.export --base-bundle BUNDLE_DIR --tokenizer TOKENIZER --out NEW_DIR ...

``--base-bundle`` takes the image model from an exported bundle instead of a run: its weights (the
same values, saved under ``--name``), its training curve and its training and held-out metrics.
That is how a bundle gets a new video model or decoding halo without its image run folder; the
video model comes from ``--video-run`` only.

Writes to ``--out``:

* ``model.safetensors``: the run's exported weights (EMA when on) stored in float16, so the file
  fits in git; loading upcasts them into the float32 model.
* ``tokenizer.safetensors``: the tokenizer copied byte for byte (or re-saved with another
  ``--decode-margin``). It must make the tokens of the run's shards: the same file, or one with
  the same encoder and codebook (a decoder fine-tune).
* ``video_model.safetensors`` (with ``--video-run``): the video model, float16, over the same
  tokenizer; ``samples.png`` then ends with animation and text-to-video strips.
* ``training_curve.png``: training loss and lr per optimizer step, from the ``log.csv`` of the run
  and of the ``--earlier-run`` phases it continued.
* ``samples.png``: held-out procedural scenes (test-split seeds), half given: outpainting right,
  left, down, up and all around, then text-to-image for their captions (``Pipeline.from_bundled``).
* ``metrics.json``: training summary, the run's ``eval.json``, and the held-out loss of the
  float16-stored weights next to the float32 ones (``--val-shards``).
* ``SHA256SUMS``: ``sha256sum`` lines for every file above.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nuwa.adc import make_plan
from nuwa.bundle import BUNDLE_FILES, read_sha256sums, tokenizer_identity
from nuwa.checkpoint import CheckpointError, read_metadata
from nuwa.data import DATASET_NAME, render_landscape
from nuwa.data.loaders import PROCEDURAL_SEED_BASE
from nuwa.data.shards import TokenShards
from nuwa.data.video import render_pan_video
from nuwa.io import (
    atomic_open,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    sha256_file,
)
from nuwa.layout import PatchGrid
from nuwa.model.checkpoint import load_model, save_model
from nuwa.sampling import PAPER_TOP_K_FRACTION
from nuwa.tokenizer import load_tokenizer, save_tokenizer
from nuwa.train.heldout import heldout_loss
from nuwa.train.log import read_log

# The grid's settings (recorded in metrics.json): the pipeline's defaults. top-k keeps the paper's
# fraction of the codebook, 768 of 16384 codes (a commented-out line of the paper's source), which
# is 48 of our 1024: on 32 held-out
# scenes it lowered the layout error (benchmarks.diagnostics.layout_score) for
# right/left/text-to-image by 3-4 against top-k 100.
SAMPLER = {"top_k_fraction": PAPER_TOP_K_FRACTION, "temperature": 1.0, "seed": 0}


def export_model(source: Path, out: Path, name: str) -> dict:
    """float16 copy of the model file ``source`` at ``out`` with a readable name; returns its
    metadata. A float16 source (a bundle's) keeps its values exactly."""
    meta = read_metadata(source, expected_kind="nuwa-model")
    model = load_model(source).half()
    keep = {k: v for k, v in meta.items() if k not in ("kind", "config", "git_commit")}
    save_model(model, out, {**keep, "name": name, "stored_as": "float16"})
    return meta


def check_tokenizer(path: Path, data: dict, source: Path) -> None:
    """CheckpointError unless ``path`` makes the tokens of the shards ``source`` trained on (same
    encoder and codebook; the decoder may be a fine-tune), or, for runs that predate codes
    digests, is the very file that made them."""
    recorded, ours = tokenizer_identity(data, load_tokenizer(path, kind="vqgan"), sha256_file(path))
    if recorded != ours:
        raise CheckpointError(f"{path} is not the tokenizer of {source}'s shards")


def copy_tokenizer(src: Path, dst: Path, decode_margin: int | None) -> None:
    """Copy the tokenizer byte for byte, or re-save it with another decoding halo (tokens and
    weights unchanged; ``benchmarks.perf.tokenizer_throughput --halos`` measures the halo)."""
    if decode_margin is None:
        with atomic_open(dst, "wb") as f, open(src, "rb") as source:
            shutil.copyfileobj(source, f)
        return
    meta = read_metadata(src)
    model = load_tokenizer(src, kind="vqgan")
    model.config.decode_margin = decode_margin
    extra = {k: v for k, v in meta.items() if k not in ("kind", "preset", "model", "step")}
    save_tokenizer(dst, model, preset=meta["preset"], step=meta["step"], **extra)


def training_curve(runs: list[Path], out: Path) -> None:
    """PNG of training loss (and lr) against optimizer steps over the ``runs`` (training phases,
    each started from the previous one's weights), from their ``log.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    lr = ax.twinx()
    offset = 0
    for phase, run in enumerate(runs, 1):
        rows = read_log(run / "log.csv")
        steps = [offset + int(r["optimizer_step"]) for r in rows]
        label = f"phase {phase}" if len(runs) > 1 else "training loss"
        ax.plot(steps, [r["loss"] for r in rows], label=label)
        lr.plot(steps, [r["lr"] for r in rows], color="tab:gray", linestyle="--")
        offset = steps[-1]
    ax.set_xlabel("optimizer step (one per patch: render-and-optimize)")
    ax.set_ylabel("training loss (nats/token)")
    ax.set_title("cross-entropy with label smoothing 0.1; lr dashed", fontsize=9)
    ax.grid(True, alpha=0.3)
    lr.set_ylabel("learning rate")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out, png.getvalue())


def training_summary(runs: list[Path]) -> dict:
    """Batches, optimizer steps and seconds summed over the phases, and each phase's recipe."""
    metas = [read_metadata(run / "model.safetensors", expected_kind="nuwa-model") for run in runs]
    summary = {k: sum(m[k] for m in metas) for k in ("batches", "optimizer_steps", "elapsed_s")}
    return summary | {
        "phases": [
            {"run": run.name, "recipe": m["recipe"]} for run, m in zip(runs, metas, strict=True)
        ]
    }


def heldout_fp16_vs_fp32(exported: Path, stored: Path, val_shards: Path) -> dict:
    """Held-out loss of the float32 export and of its float16-stored copy, same canvases."""
    fp32, fp16 = load_model(exported), load_model(stored)
    recipe = read_metadata(exported)["recipe"]
    grid = PatchGrid(*recipe["canvas"], recipe["frames"])
    plans = {o: make_plan(grid, fp32.extent, o) for o in recipe["orders"]}
    val = TokenShards(val_shards)
    return {
        "float32": heldout_loss(fp32, val, plans),
        "float16_stored": heldout_loss(fp16, val, plans),
    }


def sample_grid(bundled: Path, out: Path, count: int = 4, size: int = 512) -> dict:
    """PNG of the LHQC protocol on held-out ``size`` px scenes (shown at half size).

    Rows: the tokenizer's reconstruction of each scene (the reference); outpainting right, left,
    down and up, each from the scene's opposite half (a white line marks it), as in the paper's
    LHQC table; all around from its central half; text-to-image from the caption; with a video
    model in the bundle, :func:`video_strips`. Returns the seeds, captions and sampler used.
    """
    from nuwa.pipeline import Pipeline

    pipe = Pipeline.from_bundled(directory=bundled)
    seeds = range(PROCEDURAL_SEED_BASE["test"], PROCEDURAL_SEED_BASE["test"] + count)
    scenes = [render_landscape(s, size, size) for s in seeds]
    images, captions = [s.image for s in scenes], [s.caption for s in scenes]
    half, quarter = size // 2, size // 4
    given = {
        "right": lambda im: im[:, :half],
        "left": lambda im: im[:, half:],
        "down": lambda im: im[:half],
        "up": lambda im: im[half:],
        "all": lambda im: im[quarter:-quarter, quarter:-quarter],
    }
    rows = [[pipe.tokenizer.decode(pipe.tokenizer.encode(im)).numpy() for im in images]]
    for direction, cut in given.items():
        amount = quarter if direction == "all" else half
        outs = pipe.outpaint(
            [cut(im) for im in images],
            direction=direction,
            amount_px=amount,
            texts=captions,
            progress=False,
            **SAMPLER,
        )
        top, left, h, w = outs.given_region
        rows.append([_outline(o, top, left, h, w) for o in outs])
    rows.append(pipe.text_to_image(captions, width=size, height=size, progress=False, **SAMPLER))
    report = {"seeds": list(seeds), "captions": captions, "sampler": SAMPLER, "scene_px": size}
    if (bundled / "video_model.safetensors").is_file():
        video_rows, report["video"] = video_strips(
            Pipeline.from_bundled(directory=bundled, video=True)
        )
        rows += video_rows
    atomic_write_bytes(out, _tile([[_half_size(i) for i in row] for row in rows]))
    return report


def video_strips(pipe, count: int = 2, frames: int = 8, size: int = 256) -> tuple[list, dict]:
    """Rows of frames: animations of ``count`` held-out pans' first frames, then text-to-video
    for their captions (``size`` px frames)."""
    seeds = range(PROCEDURAL_SEED_BASE["test"], PROCEDURAL_SEED_BASE["test"] + count)
    pans = [render_pan_video(s, size, size, frames) for s in seeds]
    animated = pipe.animate([p.frames[0] for p in pans], frames, progress=False, **SAMPLER)
    captions = [p.caption for p in pans]
    clips = pipe.text_to_video(captions, frames, size, size, progress=False, **SAMPLER)
    rows = [list(video) for video in [*animated, *clips]]
    return rows, {"seeds": list(seeds), "captions": captions, "frames": frames, "frame_px": size}


def _half_size(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w // 2, h // 2), Image.BICUBIC))


def _outline(image: np.ndarray, top: int, left: int, h: int, w: int) -> np.ndarray:
    image = image.copy()
    image[top, left : left + w] = image[top + h - 1, left : left + w] = 255
    image[top : top + h, left] = image[top : top + h, left + w - 1] = 255
    return image


def _tile(rows: list[list[np.ndarray]], gap: int = 8) -> bytes:
    """PNG of image rows on a white background (images of a row may differ in size)."""
    height = sum(max(i.shape[0] for i in r) for r in rows) + gap * (len(rows) + 1)
    width = max(sum(i.shape[1] for i in r) + gap * (len(r) + 1) for r in rows)
    canvas = Image.new("RGB", (width, height), "white")
    y = gap
    for row in rows:
        x = gap
        for image in row:
            canvas.paste(Image.fromarray(image), (x, y))
            x += image.shape[1] + gap
        y += max(i.shape[0] for i in row) + gap
    png = io.BytesIO()
    canvas.save(png, format="PNG")
    return png.getvalue()


def write_sums(out: Path) -> None:
    names = sorted(p.name for p in out.iterdir() if p.is_file() and p.name != "SHA256SUMS")
    atomic_write_text(out / "SHA256SUMS", "".join(f"{sha256_file(out / n)}  {n}\n" for n in names))


def export_run(
    phases: list[Path], out_file: Path, name: str, tokenizer: Path, val_shards: Path | None
) -> dict:
    """float16 export of the last of ``phases`` (its shards checked against ``tokenizer``) at
    ``out_file``; returns its training summary, its run's eval and, with ``val_shards``, the
    held-out loss in float16 against float32."""
    run = phases[-1]
    meta = export_model(run / "model.safetensors", out_file, name)
    check_tokenizer(tokenizer, meta["data"], run)
    metrics = {
        "training": training_summary(phases),
        "run_eval": json.loads((run / "eval.json").read_text(encoding="utf-8")),
    }
    if val_shards:
        metrics["heldout"] = heldout_fp16_vs_fp32(run / "model.safetensors", out_file, val_shards)
    return metrics


def image_model(args: argparse.Namespace) -> dict:
    """Write the image model, its training curve and metrics from ``--run`` (with its earlier
    phases and ``--val-shards``) or from ``--base-bundle``; returns the metrics."""
    model_out = args.out / "model.safetensors"
    if args.base_bundle is not None:
        base = args.base_bundle
        if base.resolve() == args.out.resolve():
            raise ValueError(f"--out must be a new folder, not --base-bundle {base}")
        meta = export_model(base / "model.safetensors", model_out, args.name)
        check_tokenizer(args.tokenizer, meta["data"], base / "model.safetensors")
        curve = (base / "training_curve.png").read_bytes()
        atomic_write_bytes(args.out / "training_curve.png", curve)
        kept = json.loads((base / "metrics.json").read_text(encoding="utf-8"))
        return {k: kept[k] for k in ("training", "run_eval", "heldout") if k in kept} | {
            "image_model_from": meta["name"]
        }
    phases = [*args.earlier_run, args.run]
    metrics = export_run(phases, model_out, args.name, args.tokenizer, args.val_shards)
    training_curve(phases, args.out / "training_curve.png")
    return metrics


def video_model(args: argparse.Namespace) -> dict:
    """Write ``--video-run``'s model beside the image model; returns its metrics."""
    if read_metadata(args.video_run / "model.safetensors")["config"]["extent"][2] < 1:
        raise ValueError(f"--video-run {args.video_run} is an image model (extent f = 0)")
    video_out = args.out / "video_model.safetensors"
    name = f"{args.name}-video"
    return export_run([args.video_run], video_out, name, args.tokenizer, args.video_val_shards)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nuwa.train.export", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a finished transformer run_dir")
    source.add_argument(
        "--base-bundle", type=Path, help="an exported bundle whose image model the new one keeps"
    )
    parser.add_argument(
        "--earlier-run",
        type=Path,
        action="append",
        default=[],
        help="a training phase that --run continued (init=), oldest first; repeatable",
    )
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--val-shards", type=Path, default=None)
    parser.add_argument("--name", default=f"nuwa-small-{DATASET_NAME}")
    parser.add_argument(
        "--video-run", type=Path, default=None, help="a finished video-model run (extent f > 0)"
    )
    parser.add_argument("--video-val-shards", type=Path, default=None)
    parser.add_argument(
        "--decode-margin", type=int, default=None, help="store the tokenizer with this halo"
    )
    args = parser.parse_args(argv)
    if args.base_bundle is not None and (args.earlier_run or args.val_shards):
        parser.error("--earlier-run and --val-shards describe a --run, not a --base-bundle")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        metrics = {"name": args.name, **image_model(args)}
        if args.video_run:
            metrics["video"] = video_model(args)
        copy_tokenizer(args.tokenizer, args.out / "tokenizer.safetensors", args.decode_margin)
        write_sums(args.out)  # Pipeline.from_bundled checks the weights against it
        metrics["samples_png"] = sample_grid(args.out, args.out / "samples.png")
        atomic_write_json(args.out / "metrics.json", metrics)
        write_sums(args.out)
    except (CheckpointError, ValueError, FileNotFoundError, KeyError) as err:
        sys.exit(f"nuwa.train.export: error: {err}")
    total = sum(p.stat().st_size for p in args.out.iterdir())
    names = ", ".join(sorted(p.name for p in args.out.iterdir()))
    print(f"wrote {args.out} ({total / 1e6:.1f} MB): {names}")
    sums = read_sha256sums(args.out / "SHA256SUMS")
    pinned = [f'    "{name}": "{sums[name]}",' for name in BUNDLE_FILES.values() if name in sums]
    print(
        "to ship it as nuwa/bundled, pin these in nuwa/bundle.py PINNED_SHA256:", *pinned, sep="\n"
    )
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
