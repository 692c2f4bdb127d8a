"""checkpoints/: each stored tokenizer matches its SHA-256 and the preset that reproduces it; the
next bundle loads checked, over the tokenizer that made its training tokens."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import asdict
from pathlib import Path

from nuwa.bundle import read_sha256sums
from nuwa.pipeline import Pipeline
from nuwa.tokenizer import codes_sha256, load_preset, load_tokenizer

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def test_small_colour_tokenizer_matches_its_digest_and_its_preset():
    folder = CHECKPOINTS / "tokenizer_small_colour"
    digest, name = (folder / "SHA256SUMS").read_text().split()
    assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    model = load_tokenizer(folder / name, kind="vqgan")
    assert asdict(model.config) == asdict(load_preset("small_colour").model)
    assert model.config.colour_skip


def test_bundle_v2_candidate_loads_checked_and_reads_the_small_colour_codes():
    folder = CHECKPOINTS / "bundle_v2"
    sums = read_sha256sums(folder / "SHA256SUMS")
    for name, digest in sums.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a tokenizer that did not make the training tokens warns
        image = Pipeline.from_bundled(directory=folder)
        video = Pipeline.from_bundled(directory=folder, video=True)
    colour = load_tokenizer(CHECKPOINTS / "tokenizer_small_colour" / "tokenizer.safetensors")
    assert codes_sha256(image.tokenizer) == codes_sha256(colour)
    assert image.model.cfg.qk_norm and video.model.extent.f == 1
