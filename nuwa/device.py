"""Turn a user's device string into a torch device, or say in one line why it cannot be used;
run a block on a given number of CPU threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from nuwa.errors import UserError


class DeviceError(UserError, ValueError):
    """The requested device does not exist on this machine or is not a device name."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` ... as a device this machine has."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"{device!r} is not a device; use cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"device {device} asked for, but torch sees no CUDA GPU; use cpu")
        if resolved.index is not None and resolved.index >= count:
            raise DeviceError(
                f"device {device} asked for, but this machine has {count} CUDA GPU(s)"
            )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {device} asked for, but torch sees no Apple GPU (MPS); use cpu")
    return resolved


@contextmanager
def cpu_threads(threads: int) -> Iterator[None]:
    """Run the block with torch on ``threads`` CPU threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
