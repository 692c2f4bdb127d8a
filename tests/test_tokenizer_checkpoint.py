"""Checkpoints: safetensors round trips, clear errors for missing/corrupt/wrong files, no pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nuwa.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_training_state,
    read_metadata,
    save_checkpoint,
    save_training_state,
)
from nuwa.tokenizer import PGVQGAN, build_vqgan, load_tokenizer, save_tokenizer


def test_round_trip_keeps_tensors_and_typed_metadata(tmp_path):
    path = tmp_path / "a.safetensors"
    tensors = {"w": torch.randn(3, 4), "flag": torch.tensor(True), "ids": torch.arange(5)}
    save_checkpoint(path, tensors, {"kind": "test", "step": 7, "config": {"lr": 0.1, "ch": [1]}})
    loaded, meta = load_checkpoint(path, expected_kind="test")
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
    assert meta["step"] == 7 and meta["config"] == {"lr": 0.1, "ch": [1]}
    assert isinstance(meta["git_commit"], str) and meta["git_commit"]
    header_len = int.from_bytes(path.read_bytes()[:8], "little")  # safetensors, not pickle
    assert json.loads(path.read_bytes()[8 : 8 + header_len])["__metadata__"]["kind"] == '"test"'


def test_read_metadata_gives_the_metadata_without_the_tensors_and_the_same_errors(tmp_path):
    path = tmp_path / "a.safetensors"
    with pytest.raises(CheckpointError, match="not found"):
        read_metadata(path)
    save_checkpoint(path, {"w": torch.randn(3, 4)}, {"kind": "test", "config": {"ch": [1]}})
    assert read_metadata(path, expected_kind="test") == load_checkpoint(path)[1]
    with pytest.raises(CheckpointError, match="holds a 'test' checkpoint, expected 'gpt'"):
        read_metadata(path, expected_kind="gpt")
    path.write_bytes(b"\x80\x04 a pickle, not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        read_metadata(path)


def test_missing_corrupt_truncated_and_wrong_kind_files_raise_checkpoint_error(tmp_path):
    path = tmp_path / "a.safetensors"
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(path)
    save_checkpoint(path, {"w": torch.randn(64, 64)}, {"kind": "vqgan"})
    with pytest.raises(CheckpointError, match="holds a 'vqgan' checkpoint, expected 'gpt'"):
        load_checkpoint(path, expected_kind="gpt")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(path)
    path.write_bytes(b"\x80\x04 a pickle, not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(path)


def test_tokenizer_round_trip_gives_identical_tokens_and_pixels(tmp_path):
    model = build_vqgan("tiny").eval()
    image = np.random.default_rng(0).integers(0, 256, (64, 128, 3), dtype=np.uint8)
    path = tmp_path / "tiny.safetensors"
    save_tokenizer(path, model, preset="tiny", step=3)
    loaded = load_tokenizer(path, preset="tiny", kind="vqgan")
    assert not loaded.training
    tokens = model.encode(image)
    assert torch.equal(loaded.encode(image), tokens)
    assert torch.equal(loaded.decode(tokens), model.decode(tokens))

    pg_path = tmp_path / "pg.safetensors"
    save_tokenizer(pg_path, PGVQGAN(model), preset="tiny", step=1)
    assert isinstance(load_tokenizer(pg_path), PGVQGAN)
    with pytest.raises(CheckpointError, match="expected 'vqgan'"):
        load_tokenizer(pg_path, kind="vqgan")


def test_wrong_preset_or_mismatched_tensors_give_clear_errors(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_tokenizer(path, build_vqgan("tiny"), preset="tiny", step=0)
    with pytest.raises(CheckpointError, match="preset 'tiny', expected 'small'"):
        load_tokenizer(path, preset="small")
    tensors, meta = load_checkpoint(path)
    meta["model"]["codebook_size"] = 128  # config says 128 codes, tensors hold 64
    save_checkpoint(path, tensors, meta)
    with pytest.raises(CheckpointError, match="tensors do not match its config"):
        load_tokenizer(path)
    save_checkpoint(path, tensors, {"kind": "gpt"})
    with pytest.raises(CheckpointError, match="not a tokenizer"):
        load_tokenizer(path)


def test_training_state_restores_modules_optimizers_and_rng(tmp_path):
    def make():
        torch.manual_seed(0)
        net = torch.nn.Linear(4, 3)
        return net, torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.5, 0.9))

    net, opt = make()
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 4)).square().mean().backward()
        opt.step()
    path = tmp_path / "state.safetensors"
    save_training_state(path, modules={"net": net}, optimizers={"net": opt}, step=3,
                        metadata={"kind": "unit"})  # fmt: skip
    expected_next = torch.rand(3)
    net2, opt2 = make()
    meta = load_training_state(path, modules={"net": net2}, optimizers={"net": opt2},
                               expected_kind="unit")  # fmt: skip
    assert meta["step"] == 3
    assert torch.equal(torch.rand(3), expected_next)  # RNG restored
    for a, b in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(a, b)
    x = torch.randn(8, 4)
    for n, o in ((net, opt), (net2, opt2)):
        o.zero_grad()
        n(x).square().mean().backward()
        o.step()
    for a, b in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(a, b)  # same Adam moments -> same update
    with pytest.raises(CheckpointError, match="does not fit"):
        load_training_state(path, modules={"net": torch.nn.Linear(5, 3)}, optimizers={},
                            expected_kind="unit")  # fmt: skip
