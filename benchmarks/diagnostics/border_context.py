"""Border context: does the model continue a neighbouring patch across the line where they meet?

    python -m benchmarks.diagnostics.border_context [--checkpoint bundled] [--n 32]
        [--split val|test] [--out outputs/border_context]

Teacher-forced next-token loss (nats) of one patch of a 2x2-patch canvas, line by line inside the
patch, computed twice: with one neighbour already processed (in the Nearby Context Pool, paper
Sec. 3.2) and with the patch processed first, without context. For the left neighbour the lines
are the patch's token columns, for the one above its token rows; line 0 touches the neighbour. A
model that continues its neighbour makes line 0 about as easy as the lines inside the patch, and
what the neighbour saves on line 0 is how much of it the model uses. A line-0 loss well above the
inside's, with little saved, predicts seams along that side of every patch in samples (compare
``output_checks``' vertical and horizontal seam ratios).

Held-out procedural scenes (the val split by default) rendered at ``--size`` (the training
canvas), their centre 2x2 patches encoded with the checkpoint's tokenizer, with their captions for
text models; each value is a mean over scenes with a bootstrap 95% interval. Writes
``border_context.json`` and ``border_context.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.diagnostics.output_checks import SEED_OFFSET
from benchmarks.diagnostics.report import summarise, write_report
from benchmarks.task_commands import load_pipeline
from nuwa.adc import ExtentWarning, make_plan
from nuwa.data.landscapes import render_landscape
from nuwa.data.loaders import PROCEDURAL_SEED_BASE
from nuwa.errors import UserError
from nuwa.layout import PatchGrid
from nuwa.model import Nuwa
from nuwa.text import tokenize

GRID = PatchGrid(2, 2, 1)  # patch ids 0 1 / 2 3
# neighbour -> (target patch, order with only that neighbour before it, order with it first)
NEIGHBOURS = {"left": (1, (0, 1, 2, 3), (1, 0, 2, 3)), "above": (2, (0, 2, 1, 3), (2, 0, 1, 3))}


@torch.no_grad()
def line_losses(
    model: Nuwa, tokens: torch.Tensor, text_ids: torch.Tensor | None, order: tuple[int, ...]
) -> torch.Tensor:
    """Per-token loss of every patch of 2x2-patch canvases ``tokens [N, 1, H, W]`` processed in
    ``order`` -> ``[4, N, p, p]`` by patch id (p = tokens per patch side)."""
    with warnings.catch_warnings():  # the 2x2 grid bounds a larger extent: intended
        warnings.simplefilter("ignore", ExtentWarning)
        plan = make_plan(GRID, model.extent, order)
    p = model.layout.patch_size
    patches = model.layout.patchify(tokens)[:, list(plan.order)]
    pool = model.new_pool(plan, len(tokens))
    text = None if text_ids is None else model.encode_text(text_ids)
    losses = torch.empty(GRID.num_patches, len(tokens), p, p)
    for step, patch in enumerate(plan.order):
        logits = model.forward_patch(patches[:, step], pool, step, text=text)
        loss = F.cross_entropy(logits.flatten(0, 1), patches[:, step].flatten(), reduction="none")
        losses[patch] = loss.view(len(tokens), p, p).float()
    return losses


def border_report(model: Nuwa, tokens: torch.Tensor, text_ids: torch.Tensor | None) -> dict:
    """For each neighbour: line-0 and inside losses with and without it, what it saves on line 0,
    and the loss of every line with it (``[p]`` means over scenes)."""
    report = {}
    for neighbour, (target, with_it, without_it) in NEIGHBOURS.items():
        line_axis = 1 if neighbour == "left" else 2  # average over rows -> one value per column
        per_line = {}
        for name, order in (("with", with_it), ("without", without_it)):
            loss = line_losses(model, tokens, text_ids, order)[target]  # [N, p, p]
            per_line[name] = loss.mean(dim=line_axis).numpy().astype(np.float64)  # [N, p]
        report[neighbour] = {
            "line0_with": summarise(per_line["with"][:, 0]),
            "line0_without": summarise(per_line["without"][:, 0]),
            "inside_with": summarise(per_line["with"][:, 1:].mean(axis=1)),
            "saved_on_line0": summarise(per_line["without"][:, 0] - per_line["with"][:, 0]),
            "per_line_with": per_line["with"].mean(axis=0).tolist(),
            "per_line_without": per_line["without"].mean(axis=0).tolist(),
        }
    return report


def markdown(report: dict) -> str:
    def cell(v: dict) -> str:
        return f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"

    lines = [
        f"{report['model_id']}, {report['split']} split, n = {report['n']} scenes; "
        "teacher-forced loss, nats/token",
        "",
        "| neighbour | line 0, with it | line 0, without | saved on line 0 | inside, with it |",
        "|---|---:|---:|---:|---:|",
    ]
    for neighbour, row in report["neighbours"].items():
        lines.append(f"| {neighbour} | {cell(row['line0_with'])} | {cell(row['line0_without'])} | "
                     f"{cell(row['saved_on_line0'])} | {cell(row['inside_with'])} |")  # fmt: skip
    lines += ["", "Per line (0 touches the neighbour), with it / without it:", ""]
    for neighbour, row in report["neighbours"].items():
        for name in ("with", "without"):
            values = " ".join(f"{v:.2f}" for v in row[f"per_line_{name}"])
            lines.append(f"- {neighbour}, {name}: {values}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.diagnostics.border_context", description=__doc__
    )
    parser.add_argument("--checkpoint", default="bundled")
    parser.add_argument("--tokenizer", default=None)
    parser.add_argument("--n", type=int, default=32, help="scenes, >= 8")
    parser.add_argument("--split", choices=("test", "val"), default="val")
    parser.add_argument("--size", type=int, default=512, help="scene side (the training canvas)")
    parser.add_argument("--out", type=Path, default=Path("outputs/border_context"))
    args = parser.parse_args(argv)
    if args.n < 8:
        parser.error("--n must be at least 8 (the bootstrap interval needs 8 items)")
    start = time.perf_counter()
    try:
        pipe = load_pipeline(args.checkpoint, args.tokenizer, None, "cpu")
    except (UserError, OSError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    model = pipe.model.float().eval()
    side = 2 * model.layout.patch_pixels
    if args.size < side:
        parser.error(f"--size must be at least {side} px (2x2 patches of this model)")
    first_seed = PROCEDURAL_SEED_BASE[args.split] + SEED_OFFSET + 200
    scenes = [render_landscape(first_seed + i, args.size, args.size) for i in range(args.n)]
    top = (args.size - side) // 2 // 16 * 16  # the centre, on the token grid
    images = np.stack([s.image[top : top + side, top : top + side] for s in scenes])
    tokens = pipe.tokenizer.encode(images)[:, None]  # [N, 1, H, W]
    text_ids = tokenize([s.caption for s in scenes]) if model.text is not None else None
    report = {
        "checkpoint": args.checkpoint,
        "model_id": pipe.model_id,
        "split": args.split,
        "n": args.n,
        "size": args.size,
        "neighbours": border_report(model, tokens, text_ids),
        "seconds": time.perf_counter() - start,
    }
    write_report(args.out, "border_context", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
