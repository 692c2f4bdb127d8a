"""Held-out loss of a trained vision decoder: teacher-forced through the pool, per order.

The number is the mean next-token cross-entropy (nats, no label smoothing) on the top-left
training-size canvas of each held-out item, averaged over the four orders, with the true caption
and, for text models, with the empty caption (the gap shows how much the text is used).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nuwa.adc import Plan
from nuwa.data.shards import TokenShards
from nuwa.model import Nuwa
from nuwa.text import tokenize


def canvases(
    shards: TokenShards, shape: tuple[int, int, int], count: int
) -> tuple[torch.Tensor, list[str | None]]:
    """The top-left ``shape`` (frames, h, w) token canvas ``[n, F, H, W]`` of the first
    ``count`` items, and their captions."""
    frames, height, width = shape
    tokens, captions = [], []
    for i in range(min(count, len(shards))):
        grid, caption = shards[i]
        grid = grid if grid.dim() == 3 else grid[None]
        tokens.append(grid[:frames, :height, :width])
        captions.append(caption)
    return torch.stack(tokens), captions


@torch.no_grad()
def plan_loss(
    model: Nuwa, patches: torch.Tensor, plan: Plan, text_ids: torch.Tensor | None
) -> float:
    """Summed cross-entropy of ``patches [B, N, T]`` (plan step order) via the pool path."""
    pool = model.new_pool(plan, patches.shape[0])
    text = None if text_ids is None else model.encode_text(text_ids)
    total = 0.0
    for step in range(plan.num_steps):
        logits = model.forward_patch(patches[:, step], pool, step, text=text)
        total += float(
            F.cross_entropy(logits.flatten(0, 1), patches[:, step].flatten(), reduction="sum")
        )
    return total


@torch.no_grad()
def heldout_loss(
    model: Nuwa,
    shards: TokenShards,
    plans: dict[str, Plan],
    *,
    count: int = 64,
    batch_size: int = 16,
) -> dict:
    """``{"loss", "bits_per_token", "loss_per_order", ["loss_empty_caption"], "items"}``.

    Only the AR local decoder defines a token likelihood; other decoders raise ValueError.
    """
    if model.cfg.local_decoder != "ar":
        raise ValueError("held-out loss needs the AR local decoder")
    was_training = model.training
    model.eval()
    device = model.tok_emb.weight.device
    grid = next(iter(plans.values())).grid
    layout = model.layout
    tokens, captions = canvases(shards, layout.token_shape(grid), count)
    n_tokens = tokens.numel() * len(plans)
    variants = (
        {"loss": captions}
        if model.text is None
        else {
            "loss": captions,
            "loss_empty_caption": [""] * len(captions),
        }
    )
    report: dict = {"items": len(tokens), "orders": list(plans)}
    for name, texts in variants.items():
        per_order = {}
        for order, plan in plans.items():
            total = 0.0
            for start in range(0, len(tokens), batch_size):
                chunk = tokens[start : start + batch_size].to(device)
                patches = layout.patchify(chunk)[:, list(plan.order)]
                ids = None if model.text is None else tokenize(texts[start : start + batch_size])
                total += plan_loss(model, patches, plan, None if ids is None else ids.to(device))
            per_order[order] = total / (n_tokens / len(plans))
        report[name] = sum(per_order.values()) / len(per_order)
        if name == "loss":
            report["loss_per_order"] = per_order
    report["bits_per_token"] = report["loss"] / math.log(2)
    model.train(was_training)
    return report
