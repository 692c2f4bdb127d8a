"""checkpoints/: each stored tokenizer matches its SHA-256 and the preset that reproduces it."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

from nuwa.tokenizer import load_preset, load_tokenizer

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def test_small_colour_tokenizer_matches_its_digest_and_its_preset():
    folder = CHECKPOINTS / "tokenizer_small_colour"
    digest, name = (folder / "SHA256SUMS").read_text().split()
    assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    model = load_tokenizer(folder / name, kind="vqgan")
    assert asdict(model.config) == asdict(load_preset("small_colour").model)
    assert model.config.colour_skip
