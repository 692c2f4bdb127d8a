"""Sampling cost versus canvas width: the Nearby Context Pool against full context, same run.

    python -m benchmarks.perf.canvas_scaling [--preset small] [--rows 3] [--widths 4 8 16 32 64]
        [--batch-sizes 1 8] [--device cpu|cuda] [--threads N] [--out FILE.json]

For each width it samples a ``rows x width`` patch canvas in omega order (column by column) twice
with the same architecture: with the NCP at the preset's extent, and with a full-context baseline
whose extent covers the whole canvas (every earlier patch is context, as in plain AR decoding of
the whole image with a KV cache). It reports ms per patch (over the whole canvas and over its last
column; on CPU also its process CPU time, steadier than wall time on a shared machine), the K/V
cache size (pool + attention windows, exact from the tensors: CPU peak memory cannot be reset per
run) and, on CUDA, the peak allocated memory. ``ratio`` = baseline / NCP time per patch of the last
column (CPU time on CPU, wall time on CUDA). Then sampled tokens/s with the NCP at each batch
size. Weights are random: cost does not depend on them.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace

import torch

from nuwa.adc import make_plan
from nuwa.io import atomic_write_json
from nuwa.layout import PatchGrid
from nuwa.model import Nuwa, preset
from nuwa.sampling import sample

PROMPT = "a mountain lake under a cloudy sky"


def run_canvas(model: Nuwa, rows: int, cols: int, batch: int = 1) -> dict:
    """Sample one ``rows x cols`` canvas: per-patch wall and process-CPU times, cache and memory."""
    device = model.tok_emb.weight.device
    plan = make_plan(PatchGrid(rows, cols), model.extent, "omega")
    text = [PROMPT] * batch if model.text is not None else None
    stamps: list[tuple[float, float]] = []
    stats: dict = {}
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def on_patch(patch: int, tokens: torch.Tensor) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append((time.perf_counter(), time.process_time()))

    start = (time.perf_counter(), time.process_time())
    sample(
        model,
        plan,
        text=text,
        batch_size=batch,
        top_k=100,
        seed=0,
        progress=False,
        on_patch=on_patch,
        stats=stats,
    )
    n, (wall, cpu) = len(stamps), stamps[-1]
    (last_wall, last_cpu) = stamps[-rows - 1]  # the last column's patches are the final `rows`
    return {
        "patches": n,
        "ms_per_patch": 1000 * (wall - start[0]) / n,
        "ms_per_patch_last_column": 1000 * (wall - last_wall) / rows,
        "cpu_ms_per_patch_last_column": 1000 * (cpu - last_cpu) / rows,
        "tokens_per_s": batch * n * model.tokens_per_patch / (wall - start[0]),
        "pool_capacity": stats["capacity"],
        "cache_mb": stats["cache_bytes"] / 2**20,
        "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--widths", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--throughput-cols", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    cfg = preset(args.preset)
    model = Nuwa(cfg).to(args.device).eval()
    run_canvas(model, args.rows, 3)  # warm-up
    print(
        f"preset {args.preset}: {cfg.n_layer}L d{cfg.d_model}, {cfg.tokens_per_patch} tokens/patch,"
        f" extent {cfg.extent}, rows {args.rows}, device {args.device},"
        f" threads {torch.get_num_threads()}"
    )
    # On a shared CPU, process CPU time is steadier than wall time, so the ratio uses it there.
    timer = "ms_per_patch_last_column" if args.device == "cuda" else "cpu_ms_per_patch_last_column"
    header = ("cols", "NCP ms/patch", "last col", "(cpu)", "cache MB")
    header += ("full ms/patch", "last col", "(cpu)", "cache MB", "ratio")
    print(("{:>5} " + "{:>13} " * 9).format(*header))
    scaling = []
    for cols in args.widths:
        ncp = run_canvas(model, args.rows, cols)
        full_cfg = replace(cfg, extent=(args.rows - 1, cols - 1, 0))
        full = run_canvas(Nuwa(full_cfg).to(args.device).eval(), args.rows, cols)
        ratio = full[timer] / ncp[timer]
        scaling.append({"cols": cols, "ncp": ncp, "full_context": full, "ratio": ratio})
        cells = [f"{cols:>5}"]
        for run in (ncp, full):
            cells += [f"{run[k]:>13.1f}" for k in ("ms_per_patch", "ms_per_patch_last_column")]
            cells += [f"{run['cpu_ms_per_patch_last_column']:>13.1f}", f"{run['cache_mb']:>13.2f}"]
        print(" ".join([*cells, f"{ratio:>13.2f}"]))
    throughput = []
    for batch in args.batch_sizes:
        run = run_canvas(model, args.rows, args.throughput_cols, batch)
        throughput.append({"batch": batch, **run})
        print(
            f"batch {batch}: {run['tokens_per_s']:.0f} sampled tokens/s "
            f"({args.rows}x{args.throughput_cols} patches, NCP)"
        )
    if args.out:
        atomic_write_json(
            args.out,
            {
                "preset": args.preset,
                "config": cfg.to_dict(),
                "rows": args.rows,
                "device": args.device,
                "platform": platform.platform(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "scaling": scaling,
                "throughput": throughput,
            },
        )


if __name__ == "__main__":
    main()
