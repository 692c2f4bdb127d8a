"""The two loss timings of paper Table 6c, on one batch.

* **render-and-optimize** (``loss=patch``, paper Algorithm 1, the default): for each step ``n``
  of the plan, select the context, forward the patch, take its loss, **step the optimizer at
  once**, then the patch's (detached) K/V stay in the Nearby Context Pool for later patches.
  So a batch of ``N``-patch canvases takes ``N`` optimizer steps, and under DDP gradients are
  all-reduced ``N`` times (once per patch, inside each backward).
* **accumulated** (``loss=accumulated``): one teacher-forced pass over the whole plan with the
  training mask, the mean loss of all patches, one optimizer step per batch. Here gradients also
  flow through every context patch's keys and values, which render-and-optimize cuts.

Examples draw their order independently, so a batch is split into one group per order (each
group has its own plan and pool); the loss of a step is the example-weighted mean over groups,
i.e. exactly the mean over the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nuwa.adc import Plan
from nuwa.model import Nuwa
from nuwa.ncp import ContextPool
from nuwa.train.batches import Batch


@dataclass
class OrderGroup:
    """The examples of a batch that share one order.

    Attributes:
        plan: the order's plan on the training grid.
        patches: ``[n, N, T]`` codes of each step's patch, in plan step order.
        text: ``[n, 77]`` CLIP ids, or None.
        weight: ``n / B``, the group's share of the batch.
        pool: the group's Nearby Context Pool (render-and-optimize only).
    """

    plan: Plan
    patches: torch.Tensor
    text: torch.Tensor | None
    weight: float
    pool: ContextPool | None = None


def group_by_order(
    model: Nuwa,
    batch: Batch,
    plans: dict[str, Plan],
    *,
    with_pools: bool,
    pool_dtype: torch.dtype | None = None,
) -> list[OrderGroup]:
    """Split ``batch`` (already on the model's device) into per-order groups, in ``plans`` order.

    ``with_pools``: give each group a pool (render-and-optimize), of ``pool_dtype`` if set.
    """
    layout = model.layout
    patches = layout.patchify(batch.tokens)  # [B, N, T] by patch id
    groups = []
    for order, plan in plans.items():
        rows = [i for i, o in enumerate(batch.orders) if o == order]
        if not rows:
            continue
        index = torch.tensor(rows, device=patches.device)
        groups.append(
            OrderGroup(
                plan=plan,
                patches=patches[index][:, list(plan.order)],
                text=None if batch.text is None else batch.text[index],
                weight=len(rows) / len(batch.orders),
                pool=model.new_pool(plan, len(rows), pool_dtype) if with_pools else None,
            )
        )
    return groups


class Objective(nn.Module):
    """The loss of one optimizer step: what DDP / FSDP wrap (they hook ``forward`` only).

    ``forward(groups, step)`` is patch ``step``'s loss (render-and-optimize: the patch's K/V are
    written to each group's pool); ``step=None`` is the whole plan's loss (accumulated).
    """

    def __init__(self, model: Nuwa, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(
        self,
        groups: list[OrderGroup],
        step: int | None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        total = torch.zeros((), device=groups[0].patches.device)
        for g in groups:
            # the text tower trains too, so its states are recomputed after every optimizer step
            text = None if g.text is None else self.model.encode_text(g.text)
            if step is None:
                logits = self.model.forward_plan(g.patches, g.plan, text=text)
                loss = F.cross_entropy(
                    logits.flatten(0, 2).float(),
                    g.patches.flatten(),
                    label_smoothing=self.label_smoothing,
                )
            else:
                loss = self.model.patch_loss(
                    g.patches[:, step],
                    g.pool,
                    step,
                    text=text,
                    label_smoothing=self.label_smoothing,
                    generator=generator,
                )
            total = total + g.weight * loss
        return total


def train_batch(
    objective: nn.Module,
    groups: list[OrderGroup],
    *,
    loss: str,
    optimizer_step: Callable[[], None],
    autocast: AbstractContextManager | None = None,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Train on one batch; returns the loss of each optimizer step taken (``N`` or 1).

    ``objective`` is an :class:`Objective`, possibly DDP/FSDP-wrapped; ``optimizer_step()`` clips,
    steps, zeroes the gradients and updates the EMA and the lr.
    """
    autocast = autocast or nullcontext()
    steps = range(groups[0].plan.num_steps) if loss == "patch" else [None]
    losses = []
    for step in steps:
        with autocast:
            value = objective(groups, step, generator)
        value.backward()
        optimizer_step()
        losses.append(value.detach())
    return torch.stack(losses).float().tolist()  # one device sync per batch
