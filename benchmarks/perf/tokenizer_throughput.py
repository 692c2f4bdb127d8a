"""Tokenizer throughput: encode and decode images/s at 256² and 1024², tiled vs whole decode.

    python -m benchmarks.perf.tokenizer_throughput [--preset small | --checkpoint FILE]
        [--sizes 256 1024] [--images 4] [--repeats 3] [--threads N] [--out FILE.json]
        [--halos 0 1 2 3 4 6] [--memory-patches 8 64]

Encode and decode go through the canvas API (fixed 256-px tiles; decode windows of one patch
plus ``decode_margin`` tokens of neighbours, the halo). The baseline in the same run is *whole*
decoding: the decoder applied once to the full token grid, which is what tiling replaces.
``tiled/whole`` is the cost ratio (>1 means tiling costs more), and ``seam`` the mean/max
absolute pixel difference between the two decodes (0-255). ``--halos`` repeats that comparison
for each halo width on the largest size: with the local decoder the difference falls to float
rounding once the halo covers what a pixel's value still depends on. ``--memory-patches``
measures the peak RSS of streamed decoding of 1 x N patch canvases, each in a fresh process.
Times are process CPU time per image (steadier than wall time on a shared machine) and wall time.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
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


@torch.no_grad()
def halo_sweep(model: VQGAN, size: int, images: int, halos: list[int]) -> list[dict]:
    """Streamed-vs-whole difference and cost ratio for each halo width (tokens)."""
    tokens = model.encode(landscapes(images, size))
    whole_cpu, _, whole = timed(lambda: to_uint8(model.decode_codes(tokens.to(model.device))), 1)
    saved, rows = model.config.decode_margin, []
    try:
        for halo in halos:
            model.config.decode_margin = halo
            cpu, _, streamed = timed(lambda: model.decode(tokens), 1)
            diff = (streamed.float() - whole.float()).abs()
            rows.append(
                {
                    "halo_tokens": halo,
                    "size": size,
                    "streamed_vs_whole_mean_abs": float(diff.mean()),
                    "streamed_vs_whole_max_abs": float(diff.max()),
                    "pixels_differing": float((diff > 0).float().mean()),
                    "streamed_over_whole_cost_cpu": cpu / whole_cpu,
                }
            )
    finally:
        model.config.decode_margin = saved
    return rows


def decode_memory(checkpoint: str | None, preset: str, patches: int) -> dict:
    """Peak RSS of streamed decoding of a 1 x ``patches`` tile canvas, in a fresh process."""
    code = (
        "import json, torch\n"
        "from benchmarks.perf.common import memory_kib, reset_peak_rss\n"
        "from nuwa.tokenizer import build_vqgan, load_tokenizer\n"
        f"m = load_tokenizer({checkpoint!r}) if {checkpoint!r} else build_vqgan({preset!r})\n"
        "m = getattr(m, 'vqgan', m).eval()\n"
        "side = m.config.tile_tokens\n"
        "warm = m.decode(torch.zeros(side, side, dtype=torch.long))\n"
        f"tokens = torch.randint(m.config.codebook_size, (side, side * {patches}))\n"
        "reset_peak_rss(); before, _ = memory_kib()\n"
        "canvas = m.decode(tokens)\n"
        "_, peak = memory_kib()\n"
        "print(json.dumps({'before_mb': before / 1024, 'peak_mb': peak / 1024,"
        " 'canvas_mb': canvas.numel() / 2**20}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return {"patches": patches, **result, "growth_mb": result["peak_mb"] - result["before_mb"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", default="small", help="random weights of this preset")
    source.add_argument("--checkpoint", help="a trained tokenizer .safetensors")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--halos", type=int, nargs="*", default=[], help="halo widths to sweep")
    parser.add_argument("--memory-patches", type=int, nargs="*", default=[])
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
    halos = halo_sweep(model, max(args.sizes), args.images, args.halos) if args.halos else []
    if halos:
        print(f"halo sweep at {max(args.sizes)}² (streamed vs one whole decode):")
        print(f"{'halo':>5} {'mean abs':>9} {'max abs':>8} {'differing':>10} {'cost':>6}")
    for r in halos:
        print(
            f"{r['halo_tokens']:>5} {r['streamed_vs_whole_mean_abs']:>9.4f}"
            f" {r['streamed_vs_whole_max_abs']:>8.0f} {r['pixels_differing']:>10.2%}"
            f" {r['streamed_over_whole_cost_cpu']:>6.2f}"
        )
    memory = [decode_memory(args.checkpoint, args.preset, n) for n in args.memory_patches]
    for r in memory:
        print(
            f"streamed decode of 1x{r['patches']} patches: peak RSS {r['peak_mb']:.0f} MB "
            f"(+{r['growth_mb']:.0f} MB while decoding; the canvas itself {r['canvas_mb']:.0f} MB)"
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
                "halo_sweep": halos,
                "decode_memory": memory,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
