"""Held-out reconstruction quality of a trained VQGAN against the equal-bits palette baseline.

    python -m benchmarks.diagnostics.tokenizer_quality CHECKPOINT [--n 64] [--wide-n 16]
        [--square-n 16] [--out FILE.json] [--grid FILE.png]

Images are procedural landscapes (procedural-landscapes-v1) from the val split, never seen in
training: 256x256 crops, plus 256x1024 wide and 512x512 canvases encoded and decoded in tiles.
Reports PSNR (dB, mean per image), SWD x1e3 (evaluation.swd, no weights needed) and, on the
tiled canvases, the seam ratio at the 256-px tile lines
(``benchmarks.diagnostics.output_checks.seam_ratio``: about 1 for real images). The baseline spends
the same bits per 16x16 block: area down-sampling, a k-means palette of the codebook's size, bicubic
up-sampling. ``--grid`` writes the first 8 held-out 256x256 images over their VQGAN and baseline
reconstructions, to look at.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from benchmarks.diagnostics.output_checks import seam_ratio
from evaluation.swd import SWD
from nuwa.data.landscapes import render_landscape
from nuwa.data.loaders import load_records
from nuwa.errors import run_reporting
from nuwa.io import atomic_write_json
from nuwa.tokenizer import load_tokenizer
from nuwa.tokenizer.baseline import PaletteBaseline
from nuwa.train.images import save_grid
from nuwa.train.tokenizer import psnr

VAL_SEED = 1_000_000  # the val split of the procedural source starts here
TILE_SEAM_PX = 256  # the tokenizer's tile
GRID = 8  # images in the --grid PNG


def swd_x1e3(real: np.ndarray, fake: np.ndarray) -> float:
    """SWD@1 (reported x1e3 by evaluation.swd) between two uint8 [N, H, W, 3] image sets."""
    metric = SWD()
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return metric.compute().value


@torch.no_grad()
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--n", type=int, default=64, help="held-out 256x256 images")
    parser.add_argument("--wide-n", type=int, default=16, help="held-out 256x1024 canvases")
    parser.add_argument("--square-n", type=int, default=16, help="held-out 512x512 canvases")
    parser.add_argument(
        "--train-n", type=int, default=512, help="training images the baseline's palette fits"
    )
    parser.add_argument("--out", help="write the results here as JSON")
    parser.add_argument("--grid", help="write originals / VQGAN / baseline rows here as PNG")
    args = parser.parse_args(argv)

    model = load_tokenizer(args.checkpoint, kind="vqgan")
    train = np.stack(
        [r.image for r in load_records(f"procedural:{args.train_n}", size=256, split="train")]
    )
    val = np.stack([r.image for r in load_records(f"procedural:{args.n}", size=256, split="val")])
    wide = np.stack([render_landscape(VAL_SEED + i, 1024, 256).image for i in range(args.wide_n)])
    square = np.stack(
        [render_landscape(VAL_SEED + i, 512, 512).image for i in range(args.square_n)]
    )
    baseline = PaletteBaseline.fit(train, model.config.codebook_size, seed=0)

    results = {}
    sets = [("val_256x256", val), ("val_256x1024_tiled", wide), ("val_512x512_tiled", square)]
    for name, images in sets:
        batches = [images[i : i + 8] for i in range(0, len(images), 8)]
        recon = torch.cat([model.decode(model.encode(batch)) for batch in batches]).numpy()
        baseline_recon = baseline.decode(baseline.encode(images))
        row = {
            "images": len(images),
            "psnr": psnr(images, recon),
            "baseline_psnr": psnr(images, baseline_recon),
            "swd_x1e3": swd_x1e3(images, recon),
            "baseline_swd_x1e3": swd_x1e3(images, baseline_recon),
        }
        seams = ""
        if max(images.shape[1:3]) > TILE_SEAM_PX:
            row["seam_ratio"] = float(seam_ratio(recon, TILE_SEAM_PX).mean())
            row["seam_ratio_real"] = float(seam_ratio(images, TILE_SEAM_PX).mean())
            seams = f"  seams {row['seam_ratio']:.2f} (real {row['seam_ratio_real']:.2f})"
        results[name] = row
        if args.grid and name == "val_256x256":
            save_grid(args.grid, [images[:GRID], recon[:GRID], baseline_recon[:GRID]])
        print(
            f"{name:20s} PSNR {row['psnr']:.2f} dB (baseline {row['baseline_psnr']:.2f})  "
            f"SWDx1e3 {row['swd_x1e3']:.1f} (baseline {row['baseline_swd_x1e3']:.1f}){seams}"
        )
    if args.out:
        atomic_write_json(args.out, results)
    return results


def _command() -> None:
    main()


if __name__ == "__main__":  # a missing or corrupt checkpoint is one line, not a traceback
    sys.exit(run_reporting("tokenizer_quality", _command))
