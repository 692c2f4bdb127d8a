"""Attention health: how large do the self-attention logits get, and does float32 sample stably?

    python -m benchmarks.diagnostics.attention_health [--checkpoint bundled] [--n 8]
        [--out FILE.json]

Samples ``--n`` text-to-image canvases of 4x4 patches (held-out captions, the paper's top-k) and
reports:

* the largest |attention logit| (q.k / sqrt(d), "pre" ADC.Emb included) per layer, and the
  largest key norm, over every self-attention call of the float32 run;
* token agreement of the float32 canvases with float64 ones (same seed), and whether float32 on
  1 and on 2 threads gives identical canvases, which ``nuwa-eval regress`` needs.

With logits in the tens of thousands, float32 rounding (about 1e-7 relative) moves a logit by
more than the gap between likely tokens, so a sample depends on the thread count and the CPU.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from benchmarks.task_commands import load_pipeline
from nuwa.data.landscapes import render_landscape
from nuwa.data.loaders import PROCEDURAL_SEED_BASE
from nuwa.device import cpu_threads
from nuwa.errors import UserError
from nuwa.io import atomic_write_json
from nuwa.model.blocks import attention_probe

SEED = PROCEDURAL_SEED_BASE["test"] + 700


@contextmanager
def logit_probe() -> Iterator[list[tuple[float, float]]]:
    """Record, per self-attention call, ``(max |logit|, max key norm)`` of the model's layers."""
    records: list[tuple[float, float]] = []

    def record(q: torch.Tensor, k: torch.Tensor) -> None:
        logits = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
        records.append((float(logits.abs().max()), float(k.float().norm(dim=-1).max())))

    with attention_probe(record):
        yield records


def sample_tokens(pipe, captions: list[str], side: int, dtype: torch.dtype, threads: int):
    """Token canvases ``[B, 1, H, W]`` of text-to-image at ``dtype`` on ``threads`` threads."""
    with cpu_threads(threads):
        try:
            pipe.to(dtype)
            return pipe.text_to_image(captions, side, side, progress=False, seed=0).tokens
        finally:
            pipe.to(torch.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.diagnostics.attention_health", description=__doc__
    )
    parser.add_argument("--checkpoint", default="bundled")
    parser.add_argument("--tokenizer", default=None)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    try:
        pipe = load_pipeline(args.checkpoint, args.tokenizer, None, "cpu")
    except (UserError, OSError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    side = 4 * pipe.patch_px
    captions = [render_landscape(SEED + i, 64, 64).caption for i in range(args.n)]
    with logit_probe() as records:
        f32 = sample_tokens(pipe, captions, side, torch.float32, 1)
    layers = len(pipe.model.blocks)
    per_layer = np.array(records).reshape(-1, layers, 2).max(axis=0)
    f32_two = sample_tokens(pipe, captions, side, torch.float32, 2)
    f64 = sample_tokens(pipe, captions, side, torch.float64, 1)
    report = {
        "model_id": pipe.model_id,
        "qk_norm": pipe.model.cfg.qk_norm,
        "canvas_px": side,
        "n": args.n,
        "max_abs_logit": float(per_layer[:, 0].max()),
        "max_abs_logit_per_layer": per_layer[:, 0].tolist(),
        "max_key_norm": float(per_layer[:, 1].max()),
        "float32_vs_float64_token_agreement": float((f32 == f64).float().mean()),
        "float32_1_vs_2_threads_identical": bool(torch.equal(f32, f32_two)),
        "float32_1_vs_2_threads_token_agreement": float((f32 == f32_two).float().mean()),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        atomic_write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
