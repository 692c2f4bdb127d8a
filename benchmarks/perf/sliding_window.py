"""NCP sampling against a taming-style sliding-window sampler with the same weights, same run.

    python -m benchmarks.perf.sliding_window [--preset small] [--batch-sizes 1 8 32]
        [--tokens N] [--patches 2] [--patch-size P] [--device cpu|cuda] [--threads N]
        [--out-dir outputs/perf] [--quick]

The standard public way to sample an image larger than the training size (taming-transformers'
``sample_conditional`` windows) keeps no cache: for every token it crops the window of
``P x P`` tokens around it (P = the model's patch side, the size it was trained on: 16 for the
paper presets, 8 for ``small``), clamped to the canvas, runs the transformer over the whole
window and reads the logits at the token's place in it. :func:`sliding_window_sample` is that
sampler on our model: the window goes through ``Nuwa.forward_patch`` as one patch with no
context, so it is the same weights and the same block code as the NCP sampler.

A sliding-window token costs the same wherever it is (always one full window), so its per-patch
time is the mean time per token over ``--tokens`` generated tokens times ``P * P``. The NCP
per-patch time is measured on steady-state patches (full context), as in sampling_throughput.
``speedup`` = sliding-window time per patch / NCP time per patch, process CPU time on CPU and
wall time on CUDA. Goals: >= 50x at batch 8 and >= 100x at batch 32.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.perf.common import (
    DEFAULT_OUT,
    PROMPT,
    Stamp,
    batch_panels,
    best,
    build_model,
    per_patch,
    run_info,
    set_threads,
    strip_plan,
    timed_sample,
    write_results,
)
from nuwa.adc import make_plan
from nuwa.layout import PatchGrid
from nuwa.model import Nuwa
from nuwa.sampling import pick
from nuwa.text import tokenize

NAME = "sliding_window"


def window_origin(position: int, side: int, length: int) -> int:
    """First index of the ``side``-long window around ``position`` on an axis of ``length``
    (centred where possible, clamped to the canvas; taming's ``i - 8`` rule for side 16)."""
    return min(max(position - side // 2, 0), max(length - side, 0))


@torch.inference_mode()
def sliding_window_sample(
    model: Nuwa,
    canvas: torch.Tensor,
    tokens: int,
    *,
    text: torch.Tensor | None = None,
    top_k: int | None = 100,
    temperature: float = 1.0,
    seed: int = 0,
) -> torch.Tensor:
    """Generate the first ``tokens`` tokens of ``canvas`` in raster order, one window pass each.

    Args:
        canvas: ``[B, H, W]`` token grid (``H, W >= P``), overwritten in raster order.
        text: CLIP ids ``[B, 77]`` for text models.
    Returns ``canvas``. Each token's logits come from ``forward_patch`` over the ``P x P``
    window around it (tokens it has not generated yet sit behind it in the window's raster order,
    so the causal mask hides them).
    """
    side = model.cfg.patch_size
    batch, height, width = canvas.shape
    text_states = model.encode_text(text) if text is not None else None
    pool = model.new_pool(make_plan(PatchGrid(1, 1), (0, 0, 0)), batch)  # one patch, no context
    generator = torch.Generator(canvas.device).manual_seed(seed)
    for index in range(tokens):
        row, col = divmod(index, width)
        top, left = window_origin(row, side, height), window_origin(col, side, width)
        window = canvas[:, top : top + side, left : left + side].reshape(batch, -1)
        logits = model.forward_patch(window, pool, 0, text=text_states, write=False)
        here = logits[:, (row - top) * side + (col - left)]
        uniform = torch.rand(batch, generator=generator, device=canvas.device, dtype=torch.float64)
        canvas[:, row, col] = pick(
            here, temperature=temperature, top_k=top_k, top_p=None, uniform=uniform
        )
    return canvas


def measure(model: Nuwa, batch: int, tokens: int, patches: int, top_k: int | None) -> dict:
    """Per-patch time of both samplers at ``batch``."""
    device = model.tok_emb.weight.device
    t, side = model.tokens_per_patch, model.cfg.patch_size
    text = tokenize([PROMPT] * batch).to(device) if model.text is not None else None
    canvas = torch.zeros(batch, side, side * 4, dtype=torch.long, device=device)
    sliding_window_sample(model, canvas.clone(), 2, text=text, top_k=top_k)  # warm-up
    start = Stamp.now(device)
    sliding_window_sample(model, canvas, tokens, text=text, top_k=top_k)
    window = Stamp.now(device) - start
    window_patch = window.seconds(device) / tokens * t
    warm = model.extent.w
    run = timed_sample(model, strip_plan(1, warm + patches, model.extent), batch, top_k)
    ncp_patch = best(per_patch(run, first=warm)).seconds(device)
    return {
        "batch": batch,
        "sliding_window_tokens_timed": tokens,
        "sliding_window_ms_per_token": 1000 * window.seconds(device) / tokens,
        "sliding_window_ms_per_patch": 1000 * window_patch,
        "ncp_ms_per_patch": 1000 * ncp_patch,
        "speedup": window_patch / ncp_patch,
        "sliding_window_ms_per_token_wall": 1000 * window.wall / tokens,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="small")
    parser.add_argument("--patch-size", type=int, help="override the preset's patch side")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--tokens", type=int, help="sliding-window tokens timed (default: P*P)")
    parser.add_argument("--patches", type=int, default=2, help="steady-state NCP patches timed")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="default: bf16 on CUDA")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT))
    parser.add_argument("--quick", action="store_true", help="8 sliding-window tokens, 1 patch")


def run(args: argparse.Namespace) -> dict:
    set_threads(args.threads)
    overrides = {"patch_size": args.patch_size} if args.patch_size else {}
    dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    model = build_model(args.preset, args.device, **overrides).to(getattr(torch, dtype))
    t = model.tokens_per_patch
    tokens = 8 if args.quick else (args.tokens or t)
    patches = 1 if args.quick else args.patches
    clock = "wall" if args.device.startswith("cuda") else "process CPU"
    print(
        f"sliding window vs NCP: preset {args.preset} (patch {model.cfg.patch_size}x"
        f"{model.cfg.patch_size} tokens = the window), {args.device} {dtype},"
        f" threads {torch.get_num_threads()}; {clock} time; sliding window timed on {tokens}"
        f" tokens, NCP on {patches} steady patch(es)"
    )
    print(
        f"{'batch':>5} {'window ms/token':>15} {'window ms/patch':>15} {'NCP ms/patch':>13} speedup"
    )
    rows = []
    for batch in args.batch_sizes:
        row = measure(model, batch, tokens, patches, args.top_k)
        rows.append(row)
        print(
            f"{batch:>5} {row['sliding_window_ms_per_token']:>15.2f}"
            f" {row['sliding_window_ms_per_patch']:>15.1f} {row['ncp_ms_per_patch']:>13.1f}"
            f" {row['speedup']:>7.1f}x"
        )
    payload = {
        "benchmark": NAME,
        "preset": args.preset,
        "config": model.cfg.to_dict(),
        "window_tokens": t,
        "dtype": dtype,
        "clock": clock,
        **run_info(args, args.device),
        "rows": rows,
    }
    panels = batch_panels(
        rows,
        "ms per patch",
        {"sliding window": "sliding_window_ms_per_patch", "NCP": "ncp_ms_per_patch"},
        "speedup (x)",
        ("NCP over sliding window", "speedup"),
    )
    side = model.cfg.patch_size
    title = f"Sliding window ({side}x{side}) vs NCP ({args.preset}, {args.device})"
    write_results(args.out_dir, NAME, payload, panels, title)
    return payload


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
