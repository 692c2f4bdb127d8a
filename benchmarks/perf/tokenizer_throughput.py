"""Tokenizer throughput: encode and decode images/s at 256² and 1024², tiled vs whole decode.

    python -m benchmarks.perf.tokenizer_throughput [--preset small | --checkpoint FILE]
        [--sizes 256 1024] [--images 4] [--repeats 3] [--threads N] [--out FILE.json]

Encode and decode go through the canvas API (fixed 256-px tiles; decode windows of one patch
plus ``decode_margin`` tokens of neighbours). The baseline in the same run is *whole* decoding:
the decoder applied once to the full token grid, which is what tiling replaces. ``tiled/whole``
is the cost ratio (>1 means tiling costs more), and ``seam`` the mean/max absolute pixel
difference between the two decodes (0-255): the price of a canvas-size-independent decoder.
Times are process CPU time per image (steadier than wall time on a shared machine) and wall time.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from nuwa.checkpoint import git_commit
from nuwa.io import atomic_write_json
from nuwa.tokenizer import VQGAN, build_vqgan, load_tokenizer
from nuwa.tokenizer.tiling import to_uint8


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Best-of-``repeats`` (process CPU seconds, wall seconds) of ``fn`` and its last result."""
    best_cpu = best_wall = float("inf")
    result = None
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        result = fn()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall, result


def landscapes(n: int, size: int) -> np.ndarray:
    from nuwa.data.landscapes import render_landscape

    return np.stack([render_landscape(2_000_000 + i, size, size).image for i in range(n)])


@torch.no_grad()
def bench_size(model: VQGAN, size: int, images: int, repeats: int) -> dict:
    pixels = landscapes(images, size)
    enc_cpu, enc_wall, tokens = timed(lambda: model.encode(pixels), repeats)
    dec_cpu, dec_wall, tiled = timed(lambda: model.decode(tokens), repeats)
    whole_cpu, whole_wall, whole = timed(
        lambda: to_uint8(model.decode_codes(tokens.to(model.device))), repeats
    )
    seam = (tiled.float() - whole.float()).abs()
    return {
        "size": size,
        "images": images,
        "encode_images_per_s_cpu": images / enc_cpu,
        "encode_images_per_s_wall": images / enc_wall,
        "decode_tiled_images_per_s_cpu": images / dec_cpu,
        "decode_tiled_images_per_s_wall": images / dec_wall,
        "decode_whole_images_per_s_cpu": images / whole_cpu,
        "tiled_over_whole_cost_cpu": dec_cpu / whole_cpu,
        "seam_mean_abs": float(seam.mean()),
        "seam_max_abs": float(seam.max()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", default="small", help="random weights of this preset")
    source.add_argument("--checkpoint", help="a trained tokenizer .safetensors")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = load_tokenizer(args.checkpoint) if args.checkpoint else build_vqgan(args.preset)
    model = getattr(model, "vqgan", model).eval()  # a PG-VQGAN file: time its VQGAN
    rows = [bench_size(model, s, args.images, args.repeats) for s in args.sizes]
    print(f"tokenizer {args.checkpoint or args.preset} (margin {model.config.decode_margin}),"
          f" {torch.get_num_threads()} threads, CPU-time images/s:")  # fmt: skip
    print(f"{'size':>6} {'encode':>8} {'dec tiled':>10} {'dec whole':>10} {'tiled/whole':>12}"
          f" {'seam mean/max':>14}")  # fmt: skip
    for r in rows:
        print(
            f"{r['size']:>6} {r['encode_images_per_s_cpu']:>8.2f}"
            f" {r['decode_tiled_images_per_s_cpu']:>10.2f}"
            f" {r['decode_whole_images_per_s_cpu']:>10.2f}"
            f" {r['tiled_over_whole_cost_cpu']:>12.2f}"
            f" {r['seam_mean_abs']:>7.2f}/{r['seam_max_abs']:<6.0f}"
        )
    if args.out:
        atomic_write_json(
            args.out,
            {
                "benchmark": "tokenizer_throughput",
                "tokenizer": args.checkpoint or f"preset:{args.preset} (random weights)",
                "decode_margin": model.config.decode_margin,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "machine": platform.machine(),
                "git_commit": git_commit(),
                "rows": rows,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
