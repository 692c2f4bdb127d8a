"""Resumable transformer training state in one safetensors file, for 1 process, DDP or FSDP.

Holds the model, its EMA, the AdamW state, the torch RNG states, the batch to resume at, the
resolved config and the git commit (``nuwa.checkpoint`` adds it). Weights and optimizer state go
through ``torch.distributed.checkpoint.state_dict`` as *full* (unsharded) state dicts keyed by
parameter name, so the same file resumes a single process, DDP or FSDP run, at any world size.
Saving is collective (FSDP gathers shards); only rank 0 writes, atomically.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_model_state_dict,
    set_state_dict,
)
from torch.optim.swa_utils import AveragedModel

from nuwa.checkpoint import (
    CheckpointError,
    join_optimizer_state,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    split_optimizer_state,
)

KIND = "nuwa_transformer_training"
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def save_state(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    ema: AveragedModel | None,
    optimizer: torch.optim.Optimizer,
    batch: int,
    metadata: dict[str, Any],
    is_main: bool,
) -> None:
    """Checkpoint a run that has finished ``batch`` batches; every rank must call it."""
    model_sd, optim_sd = get_state_dict(model, optimizer, options=_FULL)
    ema_sd = get_model_state_dict(ema.module, options=_FULL) if ema is not None else {}
    if not is_main:
        return
    tensors = {f"model/{k}": v for k, v in model_sd.items()}
    tensors |= {f"ema/{k}": v for k, v in ema_sd.items()}
    opt_tensors, scalars = split_optimizer_state(optim_sd["state"])
    tensors |= {f"opt/{k}": v for k, v in opt_tensors.items()}
    tensors["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    meta = {
        **metadata,
        "kind": KIND,
        "batch": batch,
        "optimizer": {"param_groups": optim_sd["param_groups"], "scalars": scalars},
        "ema_updates": int(ema.n_averaged) if ema is not None else 0,
    }
    save_checkpoint(path, tensors, meta)


def read_state_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """:func:`save_state`'s metadata without its tensors, to check a run's settings first."""
    return read_metadata(path, expected_kind=KIND)


def load_state(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    ema: AveragedModel | None,
    optimizer: torch.optim.Optimizer,
) -> dict[str, Any]:
    """Restore :func:`save_state`'s file into a freshly built run; returns its metadata.

    Raises :class:`CheckpointError` (one line) when the file does not fit the run.
    """
    tensors, meta = load_checkpoint(path, expected_kind=KIND)
    part = {"model": {}, "ema": {}, "opt": {}, "rng": {}}
    for key, value in tensors.items():
        head, _, rest = key.partition("/")
        part[head][rest] = value
    state = join_optimizer_state(part["opt"], meta["optimizer"]["scalars"])
    optim_sd = {"state": state, "param_groups": meta["optimizer"]["param_groups"]}
    options = StateDictOptions(full_state_dict=True)
    try:
        set_state_dict(
            model,
            optimizer,
            model_state_dict=part["model"],
            optim_state_dict=optim_sd,
            options=options,
        )
        if ema is not None:
            set_model_state_dict(ema.module, part["ema"], options=options)
            ema.n_averaged.fill_(meta["ema_updates"])
    except (KeyError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"{path} does not fit this run ({str(err).splitlines()[0]})") from err
    torch.set_rng_state(part["rng"]["torch"])
    if "cuda" in part["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(part["rng"]["cuda"])
    return meta


def full_model_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict of ``module`` on the CPU; collective under FSDP."""
    return get_model_state_dict(module, options=_FULL)
