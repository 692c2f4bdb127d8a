"""Training throughput and MFU of the transformer stage, against this machine's matmul FLOP/s.

    python -m benchmarks.perf.training_throughput [--preset small] [--batch-size 8]
        [--canvas 4 4] [--batches 3] [--device cpu|cuda] [--threads N] [--out-dir outputs/perf]

For each loss timing (``patch`` = render-and-optimize, one AdamW step per patch; ``accumulated``
= one step per batch) it trains ``--batches`` batches of random codes (per-example random orders,
captions for text presets, warm-up batch first) through the stage's own code
(``nuwa.train.objective``) and reports trained tokens/s and MFU. MFU = model FLOPs per second
(``nuwa.train.flops``: weight matmuls + attention, x3 for backward) / the FLOP/s of a square
matmul (2048 on CPU in fp32, 8192 on CUDA in bf16) measured in the same process with the same
threads. On CPU both are taken on process CPU time (see ``benchmarks.perf.common``), on CUDA on
wall time; the JSON has both clocks.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.perf.common import DEFAULT_OUT, Stamp, run_info, set_threads, timed, write_json
from nuwa.adc import ORDERS, make_plan
from nuwa.layout import PatchGrid
from nuwa.model import Nuwa, preset
from nuwa.text import tokenize
from nuwa.train.batches import Batch
from nuwa.train.flops import plan_flops
from nuwa.train.objective import Objective, group_by_order, train_batch
from nuwa.train.recipe import Recipe, adamw

CAPTION = "a partly cloudy day sky over two ranges of rocky mountains above a calm lake"


def matmul_rate(device: str, dtype: torch.dtype) -> Stamp:
    """FLOP per second of a square matmul on both clocks (best of 3 rounds)."""
    size = 8192 if torch.device(device).type == "cuda" else 2048
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    t = timed(lambda: a @ b, repeats=3, device=device)
    return Stamp(2 * size**3 / t.wall, 2 * size**3 / t.cpu)


def measure(args, loss: str) -> dict:
    device = args.device
    torch.manual_seed(0)
    cfg = preset(args.preset)
    model = Nuwa(cfg).to(device).train()
    grid = PatchGrid(*args.canvas)
    plans = {o: make_plan(grid, model.extent, o) for o in ORDERS}
    layout = model.layout
    optimizer = adamw(list(model.parameters()), Recipe(preset=args.preset))  # the trainer's
    objective = Objective(model, label_smoothing=0.1)
    bf16 = torch.device(device).type == "cuda"
    autocast = torch.autocast("cuda", torch.bfloat16) if bf16 else None
    steps = []

    def optimizer_step():
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        steps.append(1)

    def one_batch():
        g = torch.Generator().manual_seed(len(steps))
        tokens = torch.randint(
            cfg.codebook_size, (args.batch_size, *layout.token_shape(grid)), generator=g
        )
        orders = [ORDERS[i] for i in torch.randint(4, (args.batch_size,), generator=g)]
        text = tokenize([CAPTION] * args.batch_size).to(device) if model.text else None
        batch = Batch(tokens.to(device), text, orders)
        groups = group_by_order(
            model,
            batch,
            plans,
            with_pools=loss == "patch",
            pool_dtype=torch.bfloat16 if bf16 else None,
        )
        train_batch(objective, groups, loss=loss, optimizer_step=optimizer_step, autocast=autocast)

    per_batch = timed(one_batch, repeats=args.batches, device=device, rounds=1)
    tokens = args.batch_size * grid.num_patches * cfg.tokens_per_patch
    flops = args.batch_size * np.mean([plan_flops(cfg, p, loss=loss) for p in plans.values()])
    return {
        "loss": loss,
        "optimizer_steps_per_batch": len(steps) // (args.batches + 1),
        "seconds_per_batch": {"wall": per_batch.wall, "cpu": per_batch.cpu},
        "tokens_per_s": {"wall": tokens / per_batch.wall, "cpu": tokens / per_batch.cpu},
        "model_tflop_per_batch": flops / 1e12,
        "model_flop_per_s": {"wall": flops / per_batch.wall, "cpu": flops / per_batch.cpu},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--canvas", type=int, nargs=2, default=[4, 4], help="rows cols (patches)")
    parser.add_argument("--batches", type=int, default=3, help="timed batches per timing")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    set_threads(args.threads)
    cuda = torch.device(args.device).type == "cuda"
    clock = "wall" if cuda else "cpu"
    peak = matmul_rate(args.device, torch.bfloat16 if cuda else torch.float32)
    rows = [measure(args, loss) for loss in ("patch", "accumulated")]
    peak_after = matmul_rate(args.device, torch.bfloat16 if cuda else torch.float32)
    peak = Stamp(max(peak.wall, peak_after.wall), max(peak.cpu, peak_after.cpu))  # lower MFU
    print(
        f"{args.preset}: batch {args.batch_size}, canvas {args.canvas[0]}x{args.canvas[1]} "
        f"patches, {args.device}, {torch.get_num_threads()} threads; matmul "
        f"{getattr(peak, clock) / 1e9:.1f} GFLOP/s ({clock} clock)"
    )
    for row in rows:
        row["mfu"] = {c: row["model_flop_per_s"][c] / getattr(peak, c) for c in ("wall", "cpu")}
        print(
            f"  {row['loss']:<12} {row['optimizer_steps_per_batch']:>3} steps/batch  "
            f"{row['tokens_per_s'][clock]:>9.0f} tokens/s  MFU {row['mfu'][clock]:.1%}"
        )
    ratio = rows[0]["tokens_per_s"][clock] / rows[1]["tokens_per_s"][clock]
    print(f"  render-and-optimize / accumulated throughput: {ratio:.2f}")
    payload = {
        "info": run_info(args, args.device),
        "clock": clock,
        "matmul_flop_per_s": {"wall": peak.wall, "cpu": peak.cpu},
        "rows": rows,
        "patch_over_accumulated_tokens_per_s": ratio,
    }
    print(f"wrote {write_json(args.out_dir, f'training_throughput_{args.preset}', payload)}")


if __name__ == "__main__":
    main()
