"""Checkpoints: safetensors tensors + JSON metadata (kind, preset, resolved config, git commit).

Never pickle. Files are written atomically (a killed save leaves the previous file). Metadata
values are stored as JSON strings in the safetensors header, so ``load_checkpoint`` returns them
with their types.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from nuwa.errors import UserError
from nuwa.io import atomic_write_bytes


class CheckpointError(UserError, RuntimeError):
    """A checkpoint is missing, unreadable, or not the kind/preset the caller needs."""


def git_commit(repo: str | os.PathLike | None = None) -> str:
    """The current commit of the source tree (``+dirty`` if modified), or "unknown"."""
    repo = Path(repo) if repo else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty=+dirty", "--abbrev=40"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def save_checkpoint(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> None:
    """Atomically write ``tensors`` and ``metadata`` to a safetensors file at ``path``.

    ``metadata`` should hold ``kind`` (e.g. "vqgan"), ``preset``, ``config`` (resolved) and
    ``step``; ``git_commit`` is added when absent. Values must be JSON-serialisable.
    """
    if "kind" not in metadata:
        raise ValueError("checkpoint metadata needs a 'kind'")
    metadata = {"git_commit": git_commit(), **metadata}
    header = {key: json.dumps(value, sort_keys=True) for key, value in metadata.items()}
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(contiguous, metadata=header))


def read_metadata(path: str | os.PathLike, *, expected_kind: str | None = None) -> dict[str, Any]:
    """The metadata of a checkpoint written by :func:`save_checkpoint`, without its tensors.

    Raises CheckpointError with a one-line reason for a missing, corrupt or wrong-kind file.
    """
    metadata, _ = _open(path, expected_kind, tensors=False)
    return metadata


def load_checkpoint(
    path: str | os.PathLike, *, expected_kind: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint` -> (tensors on CPU, metadata).

    Raises CheckpointError with a one-line reason for a missing, corrupt or wrong-kind file.
    """
    metadata, tensors = _open(path, expected_kind, tensors=True)
    return tensors, metadata


def _open(
    path: str | os.PathLike, expected_kind: str | None, *, tensors: bool
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = {key: json.loads(value) for key, value in (f.metadata() or {}).items()}
            loaded = {key: f.get_tensor(key) for key in f.keys()} if tensors else {}  # noqa: SIM118
    except (SafetensorError, ValueError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({err})") from err
    kind = metadata.get("kind")
    if expected_kind is not None and kind != expected_kind:
        raise CheckpointError(f"{path} holds a {kind!r} checkpoint, expected {expected_kind!r}")
    return metadata, loaded


# ---- resumable training state: modules + optimisers + RNG in one checkpoint --------------------
def split_optimizer_state(
    state: dict[Any, dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An optimizer state dict's ``state`` -> (tensors, scalars), both keyed ``{param}/{field}``.

    Tensors go into safetensors; scalars (e.g. an int ``step``) go into the JSON metadata.
    """
    tensors, scalars = {}, {}
    for param, fields in state.items():
        for field, value in fields.items():
            (tensors if torch.is_tensor(value) else scalars)[f"{param}/{field}"] = value
    return tensors, scalars


def join_optimizer_state(*parts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Inverse of :func:`split_optimizer_state`: ``{param}/{field}`` maps -> ``{param: {field: v}}``
    (``param`` stays a string)."""
    state: dict[str, dict[str, Any]] = {}
    for part in parts:
        for key, value in part.items():
            param, _, field = key.rpartition("/")
            state.setdefault(param, {})[field] = value
    return state


def save_training_state(
    path: str | os.PathLike,
    *,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    step: int,
    metadata: dict[str, Any],
) -> None:
    """Checkpoint everything a run needs to continue at ``step`` (atomic, no pickle).

    Tensors are keyed ``{module}/{name}``, ``{optimizer}.opt/{param}/{name}`` and ``rng/torch``;
    optimiser hyper-parameters and scalar state go into the metadata.
    """
    tensors = {
        f"{m}/{k}": v for m, module in modules.items() for k, v in module.state_dict().items()
    }
    opt_meta = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        opt_tensors, scalars = split_optimizer_state(sd["state"])
        tensors |= {f"{name}.opt/{k}": v for k, v in opt_tensors.items()}
        opt_meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    tensors["rng/torch"] = torch.get_rng_state()
    save_checkpoint(path, tensors, {**metadata, "step": step, "optimizers": opt_meta})


def load_training_state(
    path: str | os.PathLike,
    *,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    expected_kind: str,
) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote into ``modules``/``optimizers`` and the
    torch RNG; returns the metadata (with ``step``). CheckpointError if anything does not fit."""
    tensors, meta = load_checkpoint(path, expected_kind=expected_kind)
    try:
        for m, module in modules.items():
            prefix = f"{m}/"
            module.load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
        for name, opt in optimizers.items():
            saved = meta["optimizers"][name]
            prefix = f"{name}.opt/"
            opt_tensors = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            state = join_optimizer_state(opt_tensors, saved["scalars"])
            opt.load_state_dict(
                {
                    "state": {int(pid): fields for pid, fields in state.items()},
                    "param_groups": saved["param_groups"],
                }
            )
        torch.set_rng_state(tensors["rng/torch"])
    except (KeyError, RuntimeError, ValueError) as err:
        reason = " ".join(str(err).split())[:300]
        raise CheckpointError(f"{path} does not fit this run ({reason})") from err
    return meta
