"""Process group setup for ``torchrun`` (DDP); a plain single process otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def setup_distributed() -> Dist:
    """Join the torchrun process group (gloo on CPU, nccl on GPU) if WORLD_SIZE > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world_size == 1:
        return Dist(0, 1, torch.device("cuda" if cuda else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return Dist(dist.get_rank(), world_size, device)


def teardown_distributed(wait: bool = True) -> None:
    """Leave the process group; with ``wait``, once every rank is done with it.

    The barrier keeps a rank that finishes early (rank 1 while rank 0 still saves) from
    destroying its gloo pairs under a peer that uses them: that aborted rank 1 with
    "terminate called without an active exception" in a 2-rank FSDP test run. A rank that
    failed passes ``wait=False``, since its peers may never reach the barrier.
    """
    if dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()
