"""Sampling cost versus canvas width: the Nearby Context Pool against full context, same run.

    python -m benchmarks.perf.canvas_scaling [--preset small] [--widths 4 16 64 256] [--rows 1]
        [--batch 1] [--device cpu|cuda] [--threads N] [--out-dir outputs/perf] [--quick]

For each width W it samples a ``rows x W`` patch canvas in omega order (column by column) twice
with the same architecture: with the NCP at the preset's extent, and with a full-context baseline
whose extent covers the whole canvas (every earlier patch is context: plain AR decoding of the
whole image with a KV cache). Each (method, width) runs in its own subprocess, so its peak RSS
(``VmHWM``, reset after the warm-up where the kernel allows) and, on CUDA, its peak allocated GPU
memory belong to that run alone. Per run it reports ms per patch (the median over the canvas's
patches, process CPU time on CPU and wall time on CUDA; small canvases are sampled several times
so every width times at least ``--min-patches`` patches), the most keys any query attended to and
the pool occupancy (both counted, not timed), the K/V cache bytes (pool + attention windows) and
the peak memory. Weights are random: cost does not depend on them.

Goals: NCP ms/patch at the widest canvas within 1.15x of the narrowest, and peak memory
within 1.1x. The full-context columns show the growth that the NCP avoids.
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch

from benchmarks.perf.common import (
    add_run_arguments,
    build_model,
    memory_kib,
    per_patch,
    reset_peak_rss,
    run_info,
    run_worker,
    set_threads,
    strip_plan,
    timed_sample,
    worker_main,
    write_results,
)
from nuwa.model import preset
from nuwa.model.blocks import attention_probe

NAME = "canvas_scaling"
METHODS = ("ncp", "full_context")
MEMORY_LABELS = {"peak_rss_mb": "peak RSS (MB)", "peak_gpu_mb": "peak GPU memory (MB)"}


def measure(
    preset: str,
    method: str,
    rows: int,
    cols: int,
    batch: int = 1,
    device: str = "cpu",
    dtype: str = "float32",
    min_patches: int = 16,
) -> dict:
    """Sample a ``rows x cols`` canvas with ``method``; costs, counted invariants and memory."""
    extent = {} if method == "ncp" else {"extent": (rows - 1, cols - 1, 0)}
    model = build_model(preset, device, **extent).to(getattr(torch, dtype))
    timed_sample(model, strip_plan(rows, 2, model.extent), batch)  # warm-up: kernels, allocator
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    peak_reset = reset_peak_rss()
    rss_before, _ = memory_kib()
    plan = strip_plan(rows, cols, model.extent)
    repeats = math.ceil(min_patches / plan.num_steps)
    times, runs, most_keys = [], [], [0]
    with attention_probe() as calls:

        def fold_probe() -> None:  # keep the probe's record short: it is not sampling memory
            most_keys[0] = max([most_keys[0], *(keys for _, keys in calls)])
            calls.clear()

        for _ in range(repeats):
            runs.append(timed_sample(model, plan, batch, after_patch=fold_probe))
            times += per_patch(runs[-1])
    _, rss_peak = memory_kib()
    sampled = runs[-1]["sampled"]
    clock = [t.seconds(device) for t in times]
    return {
        "method": method,
        "cols": cols,
        "patches": plan.num_steps,
        "repeats": repeats,
        "ms_per_patch": 1000 * statistics.median(clock),
        "ms_per_patch_mean": 1000 * statistics.fmean(clock),
        "ms_per_patch_wall_median": 1000 * statistics.median(t.wall for t in times),
        "keys_per_query_max": most_keys[0],
        "pool_capacity": sampled.capacity,
        "pool_peak_occupancy": sampled.peak_occupancy,
        "cache_mb": sampled.cache_bytes / 2**20,
        "peak_rss_mb": rss_peak / 1024,
        "rss_before_sampling_mb": rss_before / 1024,
        "sampling_rss_growth_mb": (rss_peak - rss_before) / 1024,
        "peak_rss_reset_after_warmup": peak_reset,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="small")
    parser.add_argument("--widths", type=int, nargs="+", default=[4, 16, 64, 256])
    parser.add_argument("--rows", type=int, default=1, help="canvas height in patches")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--min-patches", type=int, default=16, help="per width, by repeating")
    add_run_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="widths 4 16 64")


def run(args: argparse.Namespace) -> dict:
    set_threads(args.threads)
    if args.quick:
        args.widths = [w for w in args.widths if w <= 64] or args.widths[:1]
    dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    clock = "wall" if args.device.startswith("cuda") else "process CPU"
    print(
        f"canvas scaling: preset {args.preset}, {args.rows} x W patches, batch {args.batch},"
        f" {args.device} {dtype}, threads {torch.get_num_threads()}; ms/patch = median {clock}"
        " time over the canvas's patches; peak MB = peak "
        + ("GPU memory allocated" if args.device.startswith("cuda") else "process RSS")
    )
    part = "{:>9} {:>7} {:>5} {:>9} {:>9}"
    print(f"{'':>5} | {'NCP':^43} | {'full context':^43} |")
    names = ("ms/patch", "keys/q", "pool", "cache MB", "peak MB")
    print(f"{'cols':>5} | {part.format(*names)} | {part.format(*names)} | full/NCP")
    rows = []
    for cols in args.widths:
        row = {"cols": cols}
        for method in METHODS:
            spec = dict(
                preset=args.preset, method=method, rows=args.rows, cols=cols, batch=args.batch,
                device=args.device, dtype=dtype, min_patches=args.min_patches,
            )  # fmt: skip
            if args.in_process:
                row[method] = measure(**spec)
            else:  # __spec__.name: this module's name, also under python -m
                row[method] = run_worker(__spec__.name, spec, args.threads)
        row["full_over_ncp"] = row["full_context"]["ms_per_patch"] / row["ncp"]["ms_per_patch"]
        rows.append(row)
        cells = [f"{cols:>5}"]
        for method in METHODS:
            r = row[method]
            peak = r["peak_gpu_mb"] if r["peak_gpu_mb"] is not None else r["peak_rss_mb"]
            cells.append(
                f"| {r['ms_per_patch']:>9.1f} {r['keys_per_query_max']:>7} {r['pool_capacity']:>5}"
                f" {r['cache_mb']:>9.2f} {peak:>9.0f}"
            )
        print(" ".join([*cells, f"| {row['full_over_ncp']:>8.2f}"]))
    summary = summarise(rows)
    for line in summary["lines"]:
        print(line)
    payload = {
        "benchmark": NAME,
        "preset": args.preset,
        "config": preset(args.preset).to_dict(),
        "canvas_rows": args.rows,
        "batch": args.batch,
        "dtype": dtype,
        "clock": clock,
        **run_info(args, args.device),
        "widths": rows,
        "summary": {k: v for k, v in summary.items() if k != "lines"},
    }
    title = (
        f"1 x W canvases, NCP vs full context ({args.preset}, batch {args.batch}, {args.device})"
    )
    write_results(args.out_dir, NAME, payload, panels(rows), title)
    return payload


def summarise(rows: list[dict]) -> dict:
    """Widest-vs-narrowest ratios of the NCP (the goals) and of the baseline."""
    narrow, wide = rows[0], rows[-1]
    out: dict = {"narrow_cols": narrow["cols"], "wide_cols": wide["cols"], "lines": []}
    memory_key = "peak_gpu_mb" if wide["ncp"]["peak_gpu_mb"] is not None else "peak_rss_mb"
    for method in METHODS:
        time_ratio = wide[method]["ms_per_patch"] / narrow[method]["ms_per_patch"]
        memory_ratio = wide[method][memory_key] / narrow[method][memory_key]
        out[method] = {"ms_per_patch_ratio": time_ratio, f"{memory_key}_ratio": memory_ratio}
        goals = " (goals <= 1.15 and <= 1.10)" if method == "ncp" else ""
        growth = [r[method]["sampling_rss_growth_mb"] for r in (narrow, wide)]
        out["lines"].append(
            f"{method}: {wide['cols']} vs {narrow['cols']} columns: ms/patch x{time_ratio:.2f},"
            f" {memory_key} x{memory_ratio:.2f}{goals}; RSS added by sampling"
            f" {growth[0]:.1f} -> {growth[1]:.1f} MB"
        )
    return out


def panels(rows: list[dict]) -> list[dict]:
    """Plot panels against canvas width: ms per patch, peak memory, keys per query."""
    cols = [r["cols"] for r in rows]

    def series(key: str) -> dict:
        names = {"ncp": "NCP", "full_context": "full context"}
        return {names[m]: (cols, [r[m][key] for r in rows]) for m in METHODS}

    memory_key = "peak_gpu_mb" if rows[0]["ncp"]["peak_gpu_mb"] is not None else "peak_rss_mb"
    return [
        {
            "x": "canvas width (patches)",
            "y": "ms per patch",
            "logx": True,
            "logy": True,
            "series": series("ms_per_patch"),
        },
        {
            "x": "canvas width (patches)",
            "y": MEMORY_LABELS[memory_key],
            "logx": True,
            "series": series(memory_key),
        },
        {
            "x": "canvas width (patches)",
            "y": "keys per query (max)",
            "logx": True,
            "logy": True,
            "series": series("keys_per_query_max"),
        },
    ]


def main(argv: list[str] | None = None) -> None:
    worker_main(__doc__, add_arguments, run, measure, argv)


if __name__ == "__main__":
    main()
