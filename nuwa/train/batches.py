"""Training batches from pre-tokenised shards: sharded, deterministic, resumable at any batch.

Batch ``b`` is a pure function of ``(seed, b)``: epoch ``e = b // batches_per_epoch`` shuffles the
items with a generator seeded by ``(seed, e)``, global batch ``b`` is the next ``batch_size x
world`` items of that permutation, and the per-example choices (crop offset, order from
{ω, ω*, ζ, ζ*}, caption dropout) are drawn for the whole global batch from a generator seeded by
``(seed, b)``. Rank ``r`` keeps slice ``r`` of it. So a resumed run draws exactly what the killed
one would have, and a single process with the global batch sees the very examples that ``world``
ranks see together (what the DDP equality test relies on). torch's ``DistributedSampler``
interleaves ranks (``perm[r::world]``), which ties the global batch to the world size; hence
this small sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nuwa.data.shards import TokenShards
from nuwa.text import tokenize


@dataclass
class Batch:
    """One process's share of a global batch.

    Attributes:
        tokens: ``[B, F, H, W]`` codes of the training canvases.
        text: ``[B, 77]`` CLIP ids after caption dropout, or None for models without text.
        orders: per example, a name from ``nuwa.adc.ORDERS``.
    """

    tokens: torch.Tensor
    text: torch.Tensor | None
    orders: list[str]


def mix(*values: int) -> int:
    """A 63-bit seed from integers (distinct tuples give distinct, well-spread seeds)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


class ShardBatches:
    """Deterministic sharded batches of training canvases from a :class:`TokenShards` folder.

    Args:
        shards: the tokenised data.
        canvas: ``(frames, height, width)`` of a training canvas in tokens.
        batch_size: examples per process; ``world`` processes share a global batch.
        orders: orders drawn uniformly, per example or (``order_per_batch``) per global batch.
        caption_dropout: probability of the empty caption; ``text=False`` yields no text at all.
    """

    def __init__(
        self,
        shards: TokenShards,
        canvas: tuple[int, int, int],
        batch_size: int,
        *,
        orders: list[str],
        order_per_batch: bool = False,
        text: bool,
        caption_dropout: float,
        seed: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.shards, self.canvas, self.batch_size = shards, canvas, batch_size
        self.orders, self.order_per_batch = orders, order_per_batch
        self.text, self.caption_dropout = text, caption_dropout
        self.seed, self.rank, self.world = seed, rank, world
        self.global_batch = batch_size * world
        self.batches_per_epoch = len(shards) // self.global_batch
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"{shards.path} holds {len(shards)} items, fewer than one global batch of "
                f"{self.global_batch}; lower model.batch_size or tokenise more items"
            )
        self._check_shapes()
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def _check_shapes(self) -> None:
        frames, height, width = self.canvas
        for i, item in enumerate(self.shards.items):
            shape = self._shape(i)
            if shape[0] < frames or shape[1] < height or shape[2] < width:
                raise ValueError(
                    f"item {item['id']} of {self.shards.path} has {shape[0]}x{shape[1]}x{shape[2]} "
                    f"(frames x h x w) tokens, smaller than the {frames}x{height}x{width} "
                    "training canvas; lower model.canvas / model.frames or tokenise larger items"
                )
            if self.text and item["caption"] is None:
                raise ValueError(
                    f"item {item['id']} of {self.shards.path} has no caption but the model is "
                    "text-conditioned; tokenise captioned data or set +model.arch.text=null"
                )

    def epoch_of(self, batch: int) -> int:
        return batch // self.batches_per_epoch

    def __call__(self, batch: int) -> Batch:
        """This process's share of global batch ``batch`` (0-based, any epoch)."""
        epoch = self.epoch_of(batch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(mix(self.seed, epoch))
            self._epoch, self._perm = epoch, torch.randperm(len(self.shards), generator=g)
        first = (batch % self.batches_per_epoch) * self.global_batch
        items = self._perm[first : first + self.global_batch].tolist()
        g = torch.Generator().manual_seed(mix(self.seed, epoch, batch))
        order_ids = torch.randint(len(self.orders), (self.global_batch,), generator=g)
        if self.order_per_batch:
            order_ids = order_ids[:1].expand(self.global_batch)
        dropped = torch.rand(self.global_batch, generator=g) < self.caption_dropout
        starts = [self._crop_start(i, g) for i in items]  # every rank draws all, keeps its own
        mine = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        captions = [
            "" if drop else self.shards.items[i]["caption"]
            for i, drop in zip(items, dropped.tolist(), strict=True)
        ]
        return Batch(
            tokens=torch.stack(
                [self._crop(i, s) for i, s in zip(items[mine], starts[mine], strict=True)]
            ),
            text=tokenize(captions[mine]) if self.text else None,
            orders=[self.orders[k] for k in order_ids[mine].tolist()],
        )

    def _shape(self, item: int) -> list[int]:
        shape = self.shards.items[item]["shape"]
        return shape if len(shape) == 3 else [1, *shape]

    def _crop_start(self, item: int, g: torch.Generator) -> tuple[int, ...]:
        """A uniformly random ``(frame, row, col)`` token offset of a canvas inside ``item``."""
        return tuple(
            int(torch.randint(full - want + 1, (1,), generator=g))
            for full, want in zip(self._shape(item), self.canvas, strict=True)
        )

    def _crop(self, item: int, start: tuple[int, ...]) -> torch.Tensor:
        tokens = self.shards[item][0].view(self._shape(item))
        (f0, y0, x0), (frames, height, width) = start, self.canvas
        return tokens[f0 : f0 + frames, y0 : y0 + height, x0 : x0 + width]
