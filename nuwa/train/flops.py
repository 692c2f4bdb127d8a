"""Model FLOPs of a training step and the machine's measured matmul FLOP/s, for MFU.

MFU here = (model FLOPs trained per second) / (FLOP/s of a large square matmul measured on the same
device, same dtype, in the same run). The FLOP count is the usual analytic one (PaLM appendix B):
2 FLOPs per multiply-add of every weight matmul and of attention's QK^T and AV, times 3 for
forward + backward; embeddings, norms and softmax are not counted.
"""

from __future__ import annotations

import time

import torch

from nuwa.adc import Plan
from nuwa.model import NuwaConfig
from nuwa.text import TEXT_LENGTH, TEXT_PRESETS


def patch_flops(cfg: NuwaConfig, context_patches: float, *, text_tower: bool) -> float:
    """Training FLOPs (forward + backward) of one patch of one example.

    ``context_patches``: how many context patches it attends to (a plan's mean). ``text_tower``:
    include one pass of the text tower (render-and-optimize re-encodes the caption every patch,
    because the tower changed at the previous optimizer step).
    """
    d, t, ff = cfg.d_model, cfg.tokens_per_patch, cfg.ff_mult
    seq = t + (cfg.local_decoder == "ar")
    keys = context_patches * t + seq / 2  # causal inside the patch: half the own keys on average
    layer = 2 * seq * (4 * d * d + 3 * ff * d * d)  # qkv + out projection, GEGLU up (2x) + down
    layer += 2 * 2 * seq * keys * d  # QK^T and AV
    if cfg.text:
        layer += 2 * seq * 2 * d * d + 2 * 2 * seq * TEXT_LENGTH * d  # q, out; scores, AV
        layer += 2 * TEXT_LENGTH * 2 * d * d  # text K/V projection
    head = 2 * t * d * cfg.codebook_size
    forward = cfg.n_layer * layer + head
    if cfg.text and text_tower:
        forward += text_tower_forward_flops(cfg)
    return 3 * forward


def text_tower_forward_flops(cfg: NuwaConfig) -> float:
    """Forward FLOPs of the text tower on one caption (77 tokens) plus its projection into d."""
    tower = TEXT_PRESETS[cfg.text]()
    w, n = tower.width, TEXT_LENGTH
    per_layer = 2 * n * 12 * w * w + 2 * 2 * n * n * w  # qkv/out 4w^2 + MLP 8w^2; scores, AV
    return tower.layers * per_layer + 2 * n * w * cfg.d_model


def plan_flops(cfg: NuwaConfig, plan: Plan, *, loss: str) -> float:
    """Training FLOPs of one example over a whole plan (``loss``: ``patch`` or ``accumulated``)."""
    mean_context = sum(len(c) for c in plan.context) / plan.num_steps if cfg.use_context else 0.0
    per_patch = patch_flops(cfg, mean_context, text_tower=loss == "patch")
    flops = plan.num_steps * per_patch
    if cfg.text and loss == "accumulated":
        flops += 3 * text_tower_forward_flops(cfg)
    return flops


def matmul_flops_per_s(device: torch.device, dtype: torch.dtype, size: int = 0) -> float:
    """Best FLOP/s of ``size x size`` matmuls on ``device`` (default 1024 on CPU, 8192 on GPU).

    1024 keeps a run's start-up under a second on a 2-core CPU; the throughput benchmark
    (benchmarks/perf/training_throughput.py) passes 2048 for its reported MFU.
    """
    size = size or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(3):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(3):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, (time.perf_counter() - start) / 3)
    return 2 * size**3 / best
