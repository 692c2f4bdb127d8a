"""Sampling throughput against the weight-matmul roofline at the same batch size, same run.

    python -m benchmarks.perf.sampling_throughput [--preset small] [--batch-sizes 1 8 32]
        [--patches 3] [--top-k 100] [--device cpu|cuda] [--dtype float32|bfloat16]
        [--threads N] [--out-dir outputs/perf] [--quick]

*Actual*: sample a ``1 x (e_w + patches)`` canvas with the NCP and time each of its last
``patches`` patches, which have the full steady-state context; the fastest one counts (the mean is
in the JSON). One token step is one ``PatchDecoder.feed`` (``T + 1`` per patch: BOS plus every
token, the last one only to cache its K/V).
*Roofline*: the model's own weight matrices of one token step (per block: qkv, attention output,
cross-attention query and output for text models, GEGLU up and down; then the output head), each
applied to a ``[batch, d_in]`` input in sequence, timed in isolation in the same process with the
same threads (best of 3 rounds). At batch 1-8 these matmuls are memory-bound, so this is the speed
limit of any implementation that reads every weight once per token step. ``ratio`` = roofline time
per token step / actual time per token step (1.0 = nothing but the weight matmuls). ``sampling``
is the time of ``nuwa.sampling.pick`` at ``[batch, V]`` (top-k, softmax, draw) per step and
``attention`` that of the step's attention kernels (one query against the mean steady-state key
count per layer, plus the prompt's text keys), both measured alone the same way; ``other`` is what
is left: norms, activations, K/V copies, embedding and Python.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from benchmarks.perf.common import (
    DEFAULT_OUT,
    PROMPT,
    Stamp,
    batch_panels,
    best,
    build_model,
    mean,
    per_patch,
    run_info,
    set_threads,
    strip_plan,
    timed,
    timed_sample,
    write_results,
)
from nuwa.model import Nuwa
from nuwa.sampling import pick
from nuwa.text import tokenize

NAME = "sampling_throughput"


def step_weights(model: Nuwa) -> list[torch.Tensor]:
    """Every weight matrix one token step multiplies by, in execution order (``[out, in]``)."""
    weights = []
    for blk in model.blocks:
        weights += [blk.attn.qkv.weight, blk.attn.proj.weight]
        if blk.cross is not None:  # the text K/V projection runs once per text, not per token
            weights += [blk.cross.q.weight, blk.cross.proj.weight]
        weights += [blk.ff.up.weight, blk.ff.down.weight]
    return [*weights, model.tok_emb.weight[: model.codebook_size]]


@torch.no_grad()
def roofline(model: Nuwa, batch: int, repeats: int) -> dict:
    """Time of one token step's weight matmuls at ``batch`` rows, alone (no attention, no glue)."""
    weights = step_weights(model)
    like = weights[0]
    inputs = {w.shape[1]: like.new_empty(batch, w.shape[1]).normal_() for w in weights}

    def matmuls() -> None:
        for w in weights:
            F.linear(inputs[w.shape[1]], w)

    elapsed = timed(matmuls, repeats, like.device)
    flops = 2 * batch * sum(w.numel() for w in weights)
    return {"time": elapsed, "flops": flops, "matmuls": len(weights)}


@torch.no_grad()
def pick_time(model: Nuwa, batch: int, top_k: int | None, repeats: int) -> Stamp:
    """Per-call time of drawing one token per row from ``[batch, V]`` logits."""
    weight = model.tok_emb.weight
    logits = weight.new_empty(batch, model.codebook_size).normal_()
    uniform = torch.rand(batch, device=weight.device, dtype=torch.float64)  # drawn per patch
    return timed(
        lambda: pick(logits, temperature=1.0, top_k=top_k, top_p=None, uniform=uniform),
        repeats,
        weight.device,
    )


@torch.no_grad()
def attention_time(model: Nuwa, batch: int, keys: int, text_keys: int, repeats: int) -> Stamp:
    """One token step's attention kernels alone: per layer, one query against ``keys`` keys
    (self-attention) and, for text models, against ``text_keys`` text positions."""
    cfg = model.cfg
    like = model.tok_emb.weight
    head_dim = cfg.d_model // cfg.n_head
    q = like.new_empty(batch, cfg.n_head, 1, head_dim).normal_()
    k, v = like.new_empty(2, batch, cfg.n_head, keys, head_dim).normal_()
    tk, tv = like.new_empty(2, batch, cfg.n_head, text_keys, head_dim).normal_()

    def kernels() -> None:
        for _ in range(cfg.n_layer):
            F.scaled_dot_product_attention(q, k, v)
            if model.text is not None:
                F.scaled_dot_product_attention(q, tk, tv)

    return timed(kernels, repeats, like.device)


def measure(model: Nuwa, batch: int, patches: int, top_k: int | None, repeats: int) -> dict:
    """Actual and roofline time per token step at ``batch``; see the module docstring."""
    device = model.tok_emb.weight.device
    t = model.tokens_per_patch
    warm = model.extent.w  # the first e_w columns of a 1-row canvas have less context
    run = timed_sample(model, strip_plan(1, warm + patches, model.extent), batch, top_k)
    times = per_patch(run, first=warm)
    fastest, average = best(times).seconds(device), mean(times).seconds(device)
    steps = t + 1  # token steps per patch
    roof = roofline(model, batch, repeats)
    roof_step = roof["time"].seconds(device)
    mean_keys = model.extent.w * t + (t + 2) // 2  # steady context + half the patch, on average
    text_keys = int((tokenize([PROMPT]) != 0).sum())  # the decoder drops the padding
    attention = attention_time(model, batch, mean_keys, text_keys, repeats).seconds(device)
    drawing = pick_time(model, batch, top_k, repeats).seconds(device)
    return {
        "batch": batch,
        "tokens_per_s": batch * t / fastest,
        "tokens_per_s_mean": batch * t / average,
        "tokens_per_s_wall_mean": batch * t / mean(times).wall,
        "step_ms": 1000 * fastest / steps,
        "step_ms_mean": 1000 * average / steps,
        "roofline_step_ms": 1000 * roof_step,
        "roofline_gflops": roof["flops"] / roof_step / 1e9,
        "achieved_gflops": roof["flops"] * steps / fastest / 1e9,
        "sampling_step_ms": 1000 * drawing,
        "attention_step_ms": 1000 * attention,
        "other_step_ms": 1000 * (fastest / steps - roof_step - drawing - attention),
        "ratio": roof_step * steps / fastest,
        "weight_matmuls_per_step": roof["matmuls"],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--patches", type=int, default=3, help="steady-state patches timed")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=200, help="roofline repetitions")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT))
    parser.add_argument("--quick", action="store_true", help="one timed patch, fewer repeats")


def run(args: argparse.Namespace) -> dict:
    set_threads(args.threads)
    if args.quick:
        args.patches, args.repeats = 1, 50
    dtype_name = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    dtype = getattr(torch, dtype_name)
    model = build_model(args.preset, args.device).to(dtype)
    measure(model, 1, 1, args.top_k, 5)  # warm-up
    cfg = model.cfg
    print(
        f"sampling throughput: preset {args.preset} ({cfg.n_layer}L d{cfg.d_model},"
        f" {model.tokens_per_patch} tokens/patch, top-k {args.top_k}), {args.device} {dtype_name},"
        f" threads {torch.get_num_threads()}; "
        + ("wall" if args.device.startswith("cuda") else "process CPU")
        + " time"
    )
    print(
        f"{'batch':>5} {'tokens/s':>9} {'ms/step':>8} {'roofline':>9} {'ratio':>6}"
        f" {'GFLOP/s':>8} {'roof GF/s':>9} | {'sampling':>8} {'attention':>9} {'other':>7}"
    )
    rows = []
    for batch in args.batch_sizes:
        row = measure(model, batch, args.patches, args.top_k, args.repeats)
        rows.append(row)
        print(
            f"{batch:>5} {row['tokens_per_s']:>9.0f} {row['step_ms']:>8.3f}"
            f" {row['roofline_step_ms']:>9.3f} {row['ratio']:>6.2f}"
            f" {row['achieved_gflops']:>8.1f} {row['roofline_gflops']:>9.1f} |"
            f" {row['sampling_step_ms']:>8.3f} {row['attention_step_ms']:>9.3f}"
            f" {row['other_step_ms']:>7.3f}"
        )
    payload = {
        "benchmark": NAME,
        "preset": args.preset,
        "config": cfg.to_dict(),
        "dtype": dtype_name,
        **run_info(args, args.device),
        "rows": rows,
    }
    panels = batch_panels(
        rows,
        "ms per token step",
        {"NCP sampling": "step_ms", "weight-matmul roofline": "roofline_step_ms"},
        "roofline / actual",
        ("ratio", "ratio"),
    )
    write_results(
        args.out_dir, NAME, payload, panels, f"Sampling vs roofline ({args.preset}, {args.device})"
    )
    return payload


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
