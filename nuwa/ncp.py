"""Nearby Context Pool (paper §3.2): per-layer K/V of the patches a plan still needs.

The paper caches each layer's input hidden states of a finished patch. We cache each layer's key
and value projections of those states instead, *before* any positional term: the projections are
linear and ADC.Emb is added to keys at attention time, so this is exactly equivalent, saves
re-projecting a context patch for every patch that selects it, and keeps a cached entry valid
whatever offset it is later seen at. Caches are detached (no gradient flows into earlier patches).

Storage is one preallocated tensor ``kv [L, 2, capacity, B, H, T, D]`` sized by the plan, so
memory is known before the first patch and flat afterwards. A patch's K/V are written into its slot
in place (a whole patch at once, or one token at a time while sampling); nothing is concatenated.
Only the ``T`` real tokens of a patch are cached: with input shifting (``[BOS, t_0 .. t_{T-2}]``
predicts ``t_0 .. t_{T-1}``) the last token's K/V come from one extra position that feeds
``t_{T-1}`` (no prediction), and BOS stays private to its own patch.

The step protocol, driven by the plan:

* ``begin(step)``  Select: claims a slot for the step's patch; ``context_slots`` then index its
  context patches (in the plan's order).
* ``write(...)``   Add: the step's K/V go into its slot as they are computed.
* ``end(step)``    Remove: frees every patch whose last use was this step.
"""

from __future__ import annotations

import torch
from einops import rearrange

from nuwa.adc import Plan


class ContextPool:
    """Preallocated K/V pool for one plan and one batch.

    Args:
        plan: the plan to follow (use ``plan.without_context()`` for the no-cache ablation).
        n_layer, batch, n_head, head_dim, tokens_per_patch: storage shape.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        n_layer: int,
        batch: int,
        n_head: int,
        head_dim: int,
        tokens_per_patch: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.plan = plan
        self.tokens_per_patch = tokens_per_patch
        shape = (n_layer, 2, plan.capacity, batch, n_head, tokens_per_patch, head_dim)
        self.kv = torch.zeros(shape, device=device, dtype=dtype)
        self.slot_of: dict[int, int] = {}
        self._free = list(reversed(range(plan.capacity)))
        self.step = -1  # the step in progress, -1 between steps
        self.steps_done = 0
        self.peak_occupancy = 0
        self.slot = -1
        self.context_slots = torch.empty(0, dtype=torch.long, device=device)

    @property
    def capacity(self) -> int:
        return self.plan.capacity

    @property
    def occupancy(self) -> int:
        """Slots in use now (context patches still needed + the patch in progress)."""
        return len(self.slot_of)

    @property
    def num_context(self) -> int:
        """Context patches of the step in progress."""
        return self.context_slots.numel()

    def begin(self, step: int) -> None:
        """Select: claim a slot for ``plan.order[step]`` and index its context. Idempotent."""
        if step == self.step:
            return
        if self.step != -1 or step != self.steps_done:
            raise RuntimeError(
                f"pool steps must run in plan order: step {self.steps_done} is next, got {step}"
            )
        slots = [self.slot_of[p] for p in self.plan.context[step]]  # KeyError = a plan bug
        self.slot = self._free.pop()  # never empty: the plan's capacity covers every step
        self.slot_of[self.plan.order[step]] = self.slot
        self.step = step
        self.peak_occupancy = max(self.peak_occupancy, self.occupancy)
        self.context_slots = torch.tensor(slots, dtype=torch.long, device=self.kv.device)

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor, start: int = 0) -> None:
        """Add: store ``k, v [B, H, n, D]`` of this step's tokens ``start .. start+n`` in place."""
        end = start + k.shape[2]
        self.kv[layer, 0, self.slot, :, :, start:end] = k.detach()
        self.kv[layer, 1, self.slot, :, :, start:end] = v.detach()

    def slot_view(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """K and V storage ``[B, H, T, D]`` of the step in progress: views to write into in place
        (token by token while sampling; no detach, so write only tensors without a graph)."""
        return self.kv[layer, 0, self.slot], self.kv[layer, 1, self.slot]

    def gather(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Context K and V of the step in progress, each ``[B, H, N_c * T, D]`` in plan order."""
        kv = self.kv[layer].index_select(1, self.context_slots)
        k, v = rearrange(kv, "two n b h t d -> two b h (n t) d")
        return k, v

    def end(self, step: int) -> None:
        """Remove: free the patches whose last use was ``step`` (the current one included)."""
        if step != self.step:
            raise RuntimeError(f"end({step}) called while step {self.step} is in progress")
        for patch in self.plan.released[step]:
            self._free.append(self.slot_of.pop(patch))
        self.step, self.slot = -1, -1
        self.steps_done = step + 1
