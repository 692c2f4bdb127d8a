"""Nearby Context Pool (paper §3.2): per-layer K/V of the patches a plan still needs.

The paper caches each layer's input hidden states of a finished patch. We cache each layer's key
and value projections of those states instead, *before* any positional term: the projections are
linear and ADC.Emb is added to keys at attention time, so this is exactly equivalent, saves
re-projecting a context patch for every patch that selects it, and keeps a cached entry valid
whatever offset it is later seen at. Caches are detached (no gradient flows into earlier patches).

Storage is one preallocated tensor ``kv [L, 2, capacity, B, H, T, D]`` sized by the schedule, so
memory is known before the first patch and flat afterwards. A patch's K/V are written into its slot
in place once the patch is computed; nothing is concatenated.
Only the ``T`` real tokens of a patch are cached: with input shifting (``[BOS, t_0 .. t_{T-2}]``
predicts ``t_0 .. t_{T-1}``) the last token's K/V come from one extra position that feeds
``t_{T-1}`` (no prediction), and BOS stays private to its own patch.

The wave protocol, driven by a :class:`~nuwa.schedule.Schedule` (one step per wave for training
and sequential sampling; several patches at once for wavefront sampling):

* ``begin(wave)``  Select: claims a slot per patch of the wave; ``context_slots [W, N]`` then index
  each patch's context patches (in the plan's order, left-padded to the wave's largest context,
  ``context_valid`` marking the real ones when the counts differ).
* ``write(...)``   Add: the wave's K/V go into its slots.
* ``end(wave)``    Remove: frees every patch whose last use was this wave.

Batch rows of a wave run patch-major: row ``w * B + b`` is sample ``b`` of the wave's patch ``w``.
"""

from __future__ import annotations

import torch
from einops import rearrange

from nuwa.schedule import Schedule


class ContextPool:
    """Preallocated K/V pool for one schedule and one batch.

    Args:
        schedule: the waves to run (``nuwa.schedule.sequential(plan)`` steps through the plan).
        n_layer, batch, n_head, head_dim, tokens_per_patch: storage shape; ``batch`` counts the
            rows of one patch.
    """

    def __init__(
        self,
        schedule: Schedule,
        *,
        n_layer: int,
        batch: int,
        n_head: int,
        head_dim: int,
        tokens_per_patch: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.schedule, self.plan = schedule, schedule.plan
        self.batch, self.tokens_per_patch = batch, tokens_per_patch
        shape = (n_layer, 2, schedule.capacity, batch, n_head, tokens_per_patch, head_dim)
        self.kv = torch.zeros(shape, device=device, dtype=dtype)
        self.slot_of: dict[int, int] = {}
        self._free = list(reversed(range(schedule.capacity)))
        self.wave = -1  # the wave in progress, -1 between waves
        self.waves_done = 0
        self.peak_occupancy = 0
        self.slots: list[int] = []  # the wave's own slots, one per patch
        self._slots = torch.empty(0, dtype=torch.long, device=device)
        self.context_slots = torch.empty(0, 0, dtype=torch.long, device=device)
        self.context_valid: torch.Tensor | None = None

    @property
    def capacity(self) -> int:
        return self.schedule.capacity

    @property
    def occupancy(self) -> int:
        """Slots in use now (context patches still needed + the wave in progress)."""
        return len(self.slot_of)

    @property
    def steps(self) -> tuple[int, ...]:
        """Plan steps of the wave in progress."""
        return self.schedule.waves[self.wave]

    @property
    def num_context(self) -> int:
        """The most context patches of any patch of the wave in progress (``N``)."""
        return self.context_slots.shape[1]

    def begin(self, wave: int) -> None:
        """Select: claim a slot per patch of ``wave`` and index their contexts. Idempotent."""
        if wave == self.wave:
            return
        if self.wave != -1 or wave != self.waves_done:
            raise RuntimeError(
                f"pool waves must run in order: wave {self.waves_done} is next, got {wave}"
            )
        plan, steps = self.plan, self.schedule.waves[wave]
        contexts = [[self.slot_of[p] for p in plan.context[s]] for s in steps]  # KeyError = bug
        width = max(len(c) for c in contexts)
        slots = []
        for step in steps:  # never empty: the schedule's capacity covers every wave
            slots.append(self._free.pop())
            self.slot_of[plan.order[step]] = slots[-1]
        self.wave = wave
        self.peak_occupancy = max(self.peak_occupancy, self.occupancy)
        device = self.kv.device
        self.slots, self._slots = slots, torch.tensor(slots, dtype=torch.long, device=device)
        padded = [[slots[0]] * (width - len(c)) + c for c in contexts]
        self.context_slots = torch.tensor(padded, dtype=torch.long, device=device)
        self.context_slots = self.context_slots.view(len(steps), width)
        self.context_valid = None
        if any(len(c) != width for c in contexts):
            valid = [[False] * (width - len(c)) + [True] * len(c) for c in contexts]
            self.context_valid = torch.tensor(valid, device=device)

    def begin_step(self, step: int) -> int:
        """:meth:`begin` the wave of plan step ``step``, which must run alone (a given step, or
        any step of a sequential schedule); returns the wave."""
        wave = self.schedule.wave_of[step]
        if len(self.schedule.waves[wave]) != 1:
            raise ValueError(f"step {step} runs in a wave of several patches: use PatchDecoder")
        self.begin(wave)
        return wave

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor, start: int = 0) -> None:
        """Add: store ``k, v [W * B, H, n, D]`` of the wave's tokens ``start .. start+n``."""
        end, waves = start + k.shape[2], len(self.slots)
        k, v = (x.detach().view(waves, self.batch, *x.shape[1:]) for x in (k, v))
        if waves == 1:  # a copy into a view, not a scatter
            self.kv[layer, 0, self.slots[0], :, :, start:end] = k[0]
            self.kv[layer, 1, self.slots[0], :, :, start:end] = v[0]
            return
        self.kv[layer, 0, self._slots, :, :, start:end] = k
        self.kv[layer, 1, self._slots, :, :, start:end] = v

    def gather(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Context K and V of the wave in progress, each ``[W * B, H, N * T, D]`` in plan order
        (left-padded where ``context_valid`` is False)."""
        waves, width = self.context_slots.shape
        kv = self.kv[layer].index_select(1, self.context_slots.flatten())
        kv = kv.view(2, waves, width, *kv.shape[2:])
        k, v = rearrange(kv, "two w n b h t d -> two (w b) h (n t) d")
        return k, v

    def end(self, wave: int) -> None:
        """Remove: free the patches whose last use was ``wave`` (its own included)."""
        if wave != self.wave:
            raise RuntimeError(f"end({wave}) called while wave {self.wave} is in progress")
        for patch in self.schedule.released[wave]:
            self._free.append(self.slot_of.pop(patch))
        self.wave = -1
        self.waves_done = wave + 1
