"""checkpoints/: each stored tokenizer matches its SHA-256 and the preset that reproduces it; the
bundle's image and video models read the codes of the stored tokenizer that made their tokens."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from nuwa.bundle import BUNDLE_DIR
from nuwa.data.landscapes import render_landscape
from nuwa.device import cpu_threads
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


def test_the_bundle_loads_checked_and_reads_the_small_colour_codes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a tokenizer that did not make the training tokens warns
        image = Pipeline.from_bundled()
        video = Pipeline.from_bundled(video=True)
    colour = load_tokenizer(CHECKPOINTS / "tokenizer_small_colour" / "tokenizer.safetensors")
    assert codes_sha256(image.tokenizer) == codes_sha256(colour)
    assert image.model.cfg.qk_norm and video.model.extent.f == 1


def test_the_bundled_decoder_gives_the_same_bytes_on_one_and_two_threads():
    """Regression: the colour path's float32 1x1 convolution and bicubic up-sampling came out
    ~5e-7 apart on 1 and 2 threads, enough to flip the rounding of a pixel or two per canvas."""
    tokenizer = load_tokenizer(BUNDLE_DIR / "tokenizer.safetensors")
    scenes = np.stack([render_landscape(2_000_000 + i, 512, 512).image for i in range(4)])
    tokens = tokenizer.encode(scenes)
    decoded = []
    for n in (1, 2):
        with cpu_threads(n):
            decoded.append(tokenizer.decode(tokens))
    assert torch.equal(decoded[0], decoded[1])
