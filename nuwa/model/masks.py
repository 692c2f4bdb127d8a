"""The training mask of a whole plan: the dense twin of what the Nearby Context Pool serves.

Both are read off the same :class:`nuwa.adc.Plan`, so a teacher-forced pass over the whole plan
with this mask and patch-by-patch decoding through the pool attend to exactly the same keys.
"""

from __future__ import annotations

import torch

from nuwa.adc import Extent, Plan


def plan_attention(
    plan: Plan, extent: Extent, seq_per_patch: int, *, causal: bool, first_real: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-level visibility and ADC.Emb offsets for all patches of ``plan`` in step order.

    Each step contributes ``seq_per_patch`` positions. A query sees (1) its own patch, causally
    when ``causal``, and (2) every position ``>= first_real`` (the real tokens, not BOS) of the
    patches in its step's context. Returns ``visible [L, L]`` bool and ``offset [L, L]`` long
    (the ADC.Emb row of the key's patch seen from the query's patch; 0 where not visible),
    ``L = steps * seq``.
    """
    n, s = plan.num_steps, seq_per_patch
    block_visible = torch.eye(n, dtype=torch.bool)
    block_offset = torch.full((n, n), extent.centre, dtype=torch.long)
    for step, (patches, deltas) in enumerate(zip(plan.context, plan.deltas, strict=True)):
        for patch, delta in zip(patches, deltas, strict=True):
            block_visible[step, plan.step_of[patch]] = True
            block_offset[step, plan.step_of[patch]] = extent.offset_index(*delta)
    visible = block_visible.repeat_interleave(s, 0).repeat_interleave(s, 1)
    inside = torch.ones(s, s, dtype=torch.bool)
    if causal:
        inside = inside.tril()
    own = torch.eye(n, dtype=torch.bool).repeat_interleave(s, 0).repeat_interleave(s, 1)
    real_key = (torch.arange(n * s) % s >= first_real)[None, :]
    visible = torch.where(own, inside.repeat(n, n), visible & real_key)
    offset = block_offset.repeat_interleave(s, 0).repeat_interleave(s, 1).masked_fill(~visible, 0)
    return visible, offset
