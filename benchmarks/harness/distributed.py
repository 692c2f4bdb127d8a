"""Sharding a run over ``torchrun`` ranks with the result of one process.

Work is cut into fixed units before any rank starts (global batches of ``--batch-size`` with a
seed per batch index; feature chunks in sample order), and unit ``i`` goes to rank
``i % world_size``. Every unit's output is stored content-addressed under the shared ``--out``
folder; rank 0 then reduces the stored units in global order, so the numbers are bit-identical
to a single-process run whatever the world size. The process group only carries barriers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypeVar

import torch.distributed as dist

T = TypeVar("T")
# Rank 0 may prepare a large real set while the others wait at a barrier.
BARRIER_TIMEOUT = timedelta(hours=6)


@dataclass(frozen=True)
class Ranks:
    """This process's rank and the world size (1 for a plain process)."""

    rank: int = 0
    world_size: int = 1
    joined: bool = True  # False once this process has left the process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mine(self, units: Sequence[T]) -> list[T]:
        """The units of this rank: every ``world_size``-th, starting at ``rank``."""
        return list(units[self.rank :: self.world_size])

    def barrier(self) -> None:
        if self.world_size > 1 and self.joined:
            dist.barrier()

    def leave(self) -> Ranks:
        """Wait for every rank, then leave the process group: rank 0 reduces alone from here.

        Needed because the evaluation metrics all-reduce their statistics whenever a process
        group exists, and only rank 0 computes them (from the shared caches).
        """
        if self.world_size > 1 and self.joined:
            dist.barrier()
            dist.destroy_process_group()
        return replace(self, joined=False)


def init_ranks() -> Ranks:
    """Join the torchrun process group (gloo: it only carries barriers) if WORLD_SIZE > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
    return Ranks(dist.get_rank(), world_size)


def rank_device(device: str, ranks: Ranks) -> str:
    """``cuda`` becomes ``cuda:<LOCAL_RANK>`` under torchrun; other devices are kept."""
    if device == "cuda" and ranks.world_size > 1:
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def close_ranks() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
