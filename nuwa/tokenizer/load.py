"""Save and load tokenizers as self-describing safetensors checkpoints.

A tokenizer file holds the model tensors only (no optimiser, no discriminator) and, in its
metadata, the kind ("vqgan" or "pg_vqgan"), the preset name, the model config, the git commit
and the training step, so ``load_tokenizer(path)`` needs nothing else.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from typing import Any

from nuwa.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nuwa.tokenizer.pg import PGVQGAN
from nuwa.tokenizer.vqgan import VQGAN, VQGANConfig

KINDS = ("vqgan", "pg_vqgan")
CODE_PARTS = ("encoder.", "quantizer.")  # the tensors that decide which tokens an image gets
BEFORE_LOCAL_DECODER = {"local_decoder": False}
"""What a file written before ``VQGANConfig.local_decoder`` existed was built with."""


def save_tokenizer(
    path: str | os.PathLike, model: VQGAN | PGVQGAN, *, preset: str, step: int, **extra: Any
) -> None:
    """Write ``model``'s tensors and config to ``path`` (atomic)."""
    kind = "pg_vqgan" if isinstance(model, PGVQGAN) else "vqgan"
    metadata = {"kind": kind, "preset": preset, "model": asdict(model.config), "step": step}
    save_checkpoint(path, model.state_dict(), {**metadata, **extra})


def load_tokenizer(
    path: str | os.PathLike, *, preset: str | None = None, kind: str | None = None
) -> VQGAN | PGVQGAN:
    """Build the tokenizer stored at ``path`` in eval mode.

    ``preset``/``kind`` (optional) must match the file; CheckpointError says what differs,
    and also covers missing, corrupt or truncated files and tensors that do not fit the config.
    """
    tensors, meta = load_checkpoint(path, expected_kind=kind)
    if meta.get("kind") not in KINDS:
        raise CheckpointError(f"{path} holds a {meta.get('kind')!r} checkpoint, not a tokenizer")
    if preset is not None and meta.get("preset") != preset:
        raise CheckpointError(
            f"{path} is tokenizer preset {meta.get('preset')!r}, expected {preset!r}"
        )
    try:
        config = VQGANConfig(**{**BEFORE_LOCAL_DECODER, **meta["model"]})
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path} has no valid tokenizer config ({err})") from err
    model = VQGAN(config)
    if meta["kind"] == "pg_vqgan":
        model = PGVQGAN(model)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise CheckpointError(f"{path}: tensors do not match its config ({first})") from err
    return model.eval()


def codes_sha256(model: VQGAN | PGVQGAN) -> str:
    """SHA-256 of the tensors that decide a tokenizer's tokens: its encoder and codebook.

    Two tokenizer files with the same digest give every image the same tokens, e.g. a VQGAN and
    its decoder fine-tune (``tokenizer.optim.train=decoder``), so a transformer trained on the
    tokens of one works with the other.
    """
    vqgan = model.vqgan if isinstance(model, PGVQGAN) else model
    digest = hashlib.sha256()
    for name, tensor in sorted(vqgan.state_dict().items()):
        if name.startswith(CODE_PARTS):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
