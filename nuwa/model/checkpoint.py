"""Model checkpoints: weights plus the :class:`NuwaConfig` they belong to, in one safetensors file.

Built on the shared ``nuwa.checkpoint`` format (kind ``"nuwa-model"``, config in the metadata).
Loading into an explicit config checks that the two agree and names every difference.
"""

from __future__ import annotations

import os
from dataclasses import fields, replace
from typing import Any

import torch

from nuwa.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from nuwa.model.config import NuwaConfig
from nuwa.model.transformer import Nuwa

KIND = "nuwa-model"
RUNTIME_FIELDS = ("dropout", "text_weights", "text_weights_sha256")
"""Config fields that may differ between a checkpoint and the config it is loaded into."""
BEFORE_QK_NORM = {"qk_norm": False}
"""What a checkpoint written before ``NuwaConfig.qk_norm`` existed was trained with."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint does not fit the configuration it is loaded into."""


def save_model(
    model: Nuwa, path: str | os.PathLike, metadata: dict[str, Any] | None = None
) -> None:
    """Write ``model``'s weights and config atomically (``metadata``: extra JSON-able fields).

    A frozen pretrained text tower is left out: it reloads from ``cfg.text_weights``.
    """
    frozen_text = model.text is not None and model.text.pretrained
    tensors = {
        k: v for k, v in model.state_dict().items() if not (frozen_text and k.startswith("text."))
    }
    save_checkpoint(
        path, tensors, {**(metadata or {}), "kind": KIND, "config": model.cfg.to_dict()}
    )


def load_model(
    path: str | os.PathLike, cfg: NuwaConfig | None = None, device: str | torch.device = "cpu"
) -> Nuwa:
    """Build a :class:`Nuwa` from a :func:`save_model` file; with ``cfg``, check they agree first.

    Raises :class:`CheckpointMismatchError` naming the differing config fields or tensors.
    """
    tensors, meta = load_checkpoint(path, expected_kind=KIND)
    try:
        stored = NuwaConfig(**{**BEFORE_QK_NORM, **meta["config"]})
    except (TypeError, ValueError) as err:
        raise CheckpointMismatchError(
            f"checkpoint {path} holds an unknown model config ({err})"
        ) from err
    cfg = cfg or stored
    diff = [
        f"{f.name}={getattr(stored, f.name)!r} in the checkpoint, "
        f"{getattr(cfg, f.name)!r} in the config"
        for f in fields(NuwaConfig)
        if f.name not in RUNTIME_FIELDS and getattr(stored, f.name) != getattr(cfg, f.name)
    ]
    if diff:
        raise CheckpointMismatchError(
            f"checkpoint {path} does not match the config: {'; '.join(diff)}"
        )
    model = Nuwa(cfg)
    frozen_text = model.text is not None and model.text.pretrained
    expected = {
        k: tuple(v.shape)
        for k, v in model.state_dict().items()
        if not (frozen_text and k.startswith("text."))
    }
    problems = [f"missing {k}" for k in expected.keys() - tensors.keys()]
    problems += [f"unexpected {k}" for k in tensors.keys() - expected.keys()]
    problems += [
        f"{k} is {tuple(tensors[k].shape)}, model has {s}"
        for k, s in expected.items()
        if k in tensors and tuple(tensors[k].shape) != s
    ]
    if problems:
        raise CheckpointMismatchError(
            f"checkpoint {path} does not fit the model: {'; '.join(sorted(problems)[:5])}"
        )
    model.load_state_dict(tensors, strict=not frozen_text)
    return model.to(device)


def init_from(path: str | os.PathLike, cfg: NuwaConfig) -> Nuwa:
    """A :class:`Nuwa` of ``cfg`` starting from the weights in ``path`` (training's ``init=``).

    ``cfg`` must match the checkpoint, except that it may turn on ``qk_norm`` for a checkpoint
    trained without it: the new query/key gains start at one, every other weight is loaded.
    Raises :class:`CheckpointMismatchError` otherwise.
    """
    stored = {**BEFORE_QK_NORM, **read_metadata(path).get("config", {})}
    adds_qk_norm = cfg.qk_norm and not stored["qk_norm"]
    start = load_model(path, replace(cfg, qk_norm=False) if adds_qk_norm else cfg)
    if not adds_qk_norm:
        return start
    model = Nuwa(cfg)
    missing, unexpected = model.load_state_dict(start.state_dict(), strict=False)
    # load_model has checked the checkpoint against cfg: only the new gains can be missing
    assert not unexpected and all(k.endswith(("q_norm.weight", "k_norm.weight")) for k in missing)
    return model
