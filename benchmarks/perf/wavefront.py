"""Wavefront against sequential patch decoding, same model, same canvases, same run.

    python -m benchmarks.perf.wavefront [--preset small] [--canvases 1x16 4x16 8x32]
        [--count 8x152] [--batch 1] [--device cpu|cuda] [--threads N] [--out-dir outputs/perf]
        [--quick]

Sequential decoding runs a plan's patches one after another; wavefront decoding
(``nuwa.schedule.wavefront``) runs every patch whose context is complete as one batch, so an
omega canvas of R x C patches at extent e takes about R + (e + 1) C sequential waves instead of
R C steps. The canvases are the same either way (``tests/test_wavefront.py``); only the cost moves.

Each (canvas, method) runs in its own subprocess, so its peak RSS (``VmHWM``, reset after the
warm-up where the kernel allows) and, on CUDA, its peak allocated GPU memory belong to that run.
Per canvas it reports the sequential steps of each method, ms per patch (whole canvas, process CPU
time on CPU and wall time on CUDA; the wall time beside it), the wavefront/sequential time ratio on
both clocks, peak memory, and pool occupancy in patches (peak and capacity: counted, not timed).
``--count`` canvases (default the paper's 8 x 152) are scheduled and counted, not sampled: their
time is extrapolated from the wall ms per patch of the widest timed canvas of the same height
(the same shape of waves) and named as such.

Goals: wall-time ratio >= 2 at 8 x 32 patches and batch 1; peak memory within 1.3x of sequential.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.perf.common import (
    PROMPT,
    Stamp,
    add_run_arguments,
    build_model,
    memory_kib,
    reset_peak_rss,
    run_info,
    run_worker,
    set_threads,
    strip_plan,
    worker_main,
    write_results,
)
from nuwa.model import preset
from nuwa.sampling import SamplerOptions, sample
from nuwa.schedule import sequential, wavefront

NAME = "wavefront"
METHODS = ("sequential", "wavefront")


def parse_canvas(text: str) -> tuple[int, int]:
    """``"8x32"`` -> ``(8, 32)`` (rows x columns of patches)."""
    try:
        rows, cols = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"canvas {text!r}: expected ROWSxCOLS, e.g. 8x32"
        ) from None
    if rows < 1 or cols < 1:
        raise argparse.ArgumentTypeError(f"canvas {text!r}: rows and columns must be >= 1")
    return rows, cols


def measure(
    preset: str,
    method: str,
    rows: int,
    cols: int,
    batch: int = 1,
    device: str = "cpu",
    dtype: str = "float32",
) -> dict:
    """Sample one ``rows x cols`` omega canvas with ``method``; time, memory, pool counts."""
    model = build_model(preset, device).to(getattr(torch, dtype))
    waves = method == "wavefront"
    text = [PROMPT] * batch if model.text is not None else None
    drawn = SamplerOptions(top_k=48, wavefront=waves, progress=False)
    options = dict(text=text, batch_size=batch, options=drawn)
    warm_up = strip_plan(min(rows, 3), 2, model.extent)  # kernels, allocator
    sample(model, warm_up, **options)
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    peak_reset = reset_peak_rss()
    plan = strip_plan(rows, cols, model.extent)
    start = Stamp.now(device)
    sampled = sample(model, plan, **options)
    elapsed = Stamp.now(device) - start
    _, rss_peak = memory_kib()
    return {
        "method": method,
        "patches": plan.num_steps,
        "sequential_steps": sampled.waves,
        "max_wave": sampled.max_wave,
        "ms_per_patch": 1000 * elapsed.seconds(device) / plan.num_steps,
        "ms_per_patch_wall": 1000 * elapsed.wall / plan.num_steps,
        "seconds_wall": elapsed.wall,
        "pool_capacity": sampled.capacity,
        "pool_peak_occupancy": sampled.peak_occupancy,
        "cache_mb": sampled.cache_bytes / 2**20,
        "peak_rss_mb": rss_peak / 1024,
        "peak_rss_reset_after_warmup": peak_reset,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


def count(preset_name: str, rows: int, cols: int, timed: list[dict] = ()) -> dict:
    """Steps and pool capacity of both schedules of an omega canvas, without sampling; with
    ``timed`` canvases, each method's wall time extrapolated from the wall ms per patch of the
    widest timed canvas of the same height (the same shape of waves)."""
    plan = strip_plan(rows, cols, preset(preset_name).extent)
    steps, fronts = sequential(plan), wavefront(plan)
    row = {
        "rows": rows,
        "cols": cols,
        "patches": plan.num_steps,
        "sequential": {"sequential_steps": steps.num_waves, "pool_capacity": steps.capacity},
        "wavefront": {
            "sequential_steps": fronts.num_waves,
            "pool_capacity": fronts.capacity,
            "max_wave": fronts.max_wave,
        },
        "step_ratio": steps.num_waves / fronts.num_waves,
    }
    same_height = [canvas for canvas in timed if canvas["rows"] == rows]
    source = max(same_height, key=lambda canvas: canvas["cols"], default=None)
    if source:
        row["extrapolated_from"] = f"{source['rows']}x{source['cols']}"
        for method in METHODS:
            ms = source[method]["ms_per_patch_wall"]
            row[method]["extrapolated_wall_s"] = ms * plan.num_steps / 1000
    return row


def counted_line(row: dict) -> str:
    """One printed line for a :func:`count` row."""
    seq, wave = row["sequential"], row["wavefront"]
    line = (
        f"{row['rows']}x{row['cols']} (counted): {seq['sequential_steps']} steps ->"
        f" {wave['sequential_steps']} waves (x{row['step_ratio']:.2f}); pool"
        f" {seq['pool_capacity']} -> {wave['pool_capacity']} patches"
    )
    if "extrapolated_from" in row:
        line += (
            f"; extrapolated from {row['extrapolated_from']}'s wall ms/patch:"
            f" {seq['extrapolated_wall_s']:.0f} s -> {wave['extrapolated_wall_s']:.0f} s"
        )
    return line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="small")
    parser.add_argument(
        "--canvases", type=parse_canvas, nargs="+", default=[(1, 16), (4, 16), (8, 32)]
    )
    parser.add_argument("--count", type=parse_canvas, nargs="*", default=[(8, 152)])
    parser.add_argument("--batch", type=int, default=1)
    add_run_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="only canvases up to 64 patches")


def compare(args: argparse.Namespace, rows: int, cols: int, dtype: str, memory_key: str) -> dict:
    """Both methods on one ``rows x cols`` canvas (each in its own process unless
    ``--in-process``), and their time and memory ratios."""
    row: dict = {"rows": rows, "cols": cols}
    for method in METHODS:
        spec = dict(
            preset=args.preset, method=method, rows=rows, cols=cols, batch=args.batch,
            device=args.device, dtype=dtype,
        )  # fmt: skip
        if args.in_process:
            row[method] = measure(**spec)
        else:  # __spec__.name: this module's name, also under python -m
            row[method] = run_worker(__spec__.name, spec, args.threads)
    seq, wave = row["sequential"], row["wavefront"]
    row["time_ratio"] = seq["ms_per_patch"] / wave["ms_per_patch"]
    row["wall_time_ratio"] = seq["ms_per_patch_wall"] / wave["ms_per_patch_wall"]
    row["memory_ratio"] = wave[memory_key] / seq[memory_key]
    return row


def run(args: argparse.Namespace) -> dict:
    set_threads(args.threads)
    if args.quick:
        args.canvases = [c for c in args.canvases if c[0] * c[1] <= 64] or args.canvases[:1]
    dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    cuda = args.device.startswith("cuda")
    clock = "wall" if cuda else "process CPU"
    memory_key = "peak_gpu_mb" if cuda else "peak_rss_mb"
    print(
        f"wavefront: preset {args.preset}, omega canvases, batch {args.batch}, {args.device}"
        f" {dtype}, threads {torch.get_num_threads()}; ms/patch = {clock} time over the canvas"
        f" (wall beside it); peak MB = {'GPU memory allocated' if cuda else 'process RSS'}"
    )
    head = f"{'canvas':>7} | {'steps':>5} {'waves':>5} | {'ms/patch seq':>12} {'wave':>7}"
    print(f"{head} | {'ratio':>5} {'wall':>5} | {'peak MB seq':>11} {'wave':>6} | pool seq wave")
    rows = []
    for r, c in args.canvases:
        rows.append(compare(args, r, c, dtype, memory_key))
        seq, wave = rows[-1]["sequential"], rows[-1]["wavefront"]
        print(
            f"{f'{r}x{c}':>7} | {seq['sequential_steps']:>5} {wave['sequential_steps']:>5} |"
            f" {seq['ms_per_patch']:>12.1f} {wave['ms_per_patch']:>7.1f} |"
            f" {rows[-1]['time_ratio']:>5.2f} {rows[-1]['wall_time_ratio']:>5.2f} |"
            f" {seq[memory_key]:>11.0f} {wave[memory_key]:>6.0f} |"
            f" {seq['pool_peak_occupancy']:>4} {wave['pool_peak_occupancy']:>4}"
        )
    counted = [count(args.preset, r, c, timed=rows) for r, c in args.count]
    for row in counted:
        print(counted_line(row))
    goal = next((row for row in rows if (row["rows"], row["cols"]) == (8, 32)), None)
    if goal:
        print(
            f"8x32, batch {args.batch}: wall-time ratio x{goal['wall_time_ratio']:.2f}"
            f" ({clock} x{goal['time_ratio']:.2f}; goal >= 2), peak memory"
            f" x{goal['memory_ratio']:.2f} (goal <= 1.3)"
        )
    payload = {
        "benchmark": NAME,
        "preset": args.preset,
        "config": preset(args.preset).to_dict(),
        "batch": args.batch,
        "dtype": dtype,
        "clock": clock,
        **run_info(args, args.device),
        "canvases": rows,
        "counted": counted,
    }
    title = f"wavefront vs sequential decoding ({args.preset}, batch {args.batch}, {args.device})"
    write_results(args.out_dir, NAME, payload, panels(rows, memory_key), title)
    return payload


def panels(rows: list[dict], memory_key: str) -> list[dict]:
    """Per canvas (x = patches): sequential steps, ms per patch, peak memory of both methods."""
    patches = [row["rows"] * row["cols"] for row in rows]

    def series(key: str) -> dict:
        return {method: (patches, [row[method][key] for row in rows]) for method in METHODS}

    memory_label = "peak GPU memory (MB)" if memory_key == "peak_gpu_mb" else "peak RSS (MB)"
    return [
        {"x": "patches", "y": "sequential steps", "logx": True, "logy": True,
         "series": series("sequential_steps")},
        {"x": "patches", "y": "ms per patch", "logx": True, "series": series("ms_per_patch")},
        {"x": "patches", "y": memory_label, "logx": True, "series": series(memory_key)},
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    worker_main(__doc__, add_arguments, run, measure, argv)


if __name__ == "__main__":
    main()
