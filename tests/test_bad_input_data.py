"""``nuwa-data`` and ``nuwa-train`` on bad input: one line on stderr, exit status 2, no work
started and nothing the user owns changed; images that used to decode wrong decode right."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_input import assert_one_line_error, snapshot
from PIL import Image

from nuwa.data import cli as data_cli
from nuwa.data import records
from nuwa.data.loaders import load_records
from nuwa.data.records import DataError, load_image
from nuwa.data.shards import TokenShards
from nuwa.tokenizer import build_vqgan, save_tokenizer
from nuwa.train import cli as train_cli


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """4 procedural images tokenised with a tiny VQGAN: ``<root>/train`` and the tokenizer."""
    root = tmp_path_factory.mktemp("bad_shards")
    torch.manual_seed(0)
    save_tokenizer(root / "tok.safetensors", build_vqgan("tiny"), preset="tiny", step=0)
    argv = ["tokenize", "--tokenizer", str(root / "tok.safetensors"), "--source", "procedural:4"]
    assert data_cli.main([*argv, "--size", "128", "--out", str(root / "train")]) == 0
    return root


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def data(capsys, *argv: str) -> tuple[int, str]:
    code = data_cli.main(list(argv))
    return code, capsys.readouterr().err


def train(monkeypatch, capsys, *overrides: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["nuwa-train", "stage=transformer", "model=tiny", *overrides])
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main()
    return exit_info.value.code, capsys.readouterr().err


DATA_CASES = {
    "a 2.5 TiB canvas": (
        ["synth", "--width", "1000000", "--height", "1000000", "--n", "1", "--out", "big"],
        "more than the 268,435,456 px",
    ),
    "out is a file": (["synth", "--n", "1", "--out", "a.png"], "a.png"),
    "tokenizer is a PNG": (
        ["tokenize", "--tokenizer", "a.png", "--source", "procedural:2", "--out", "sh"],
        "a.png",
    ),
    "missing source folder": (["check", "no_such_folder"], "no_such_folder"),
}


@pytest.mark.parametrize("case", DATA_CASES)
def test_nuwa_data_fails_in_one_line(case, workdir, capsys):
    argv, fragment = DATA_CASES[case]
    before = snapshot(workdir)
    code, err = data(capsys, *argv)
    assert_one_line_error(code, err, "nuwa-data", fragment)
    assert snapshot(workdir) == before


def test_16_bit_images_keep_their_levels_and_float_images_are_refused(workdir, capsys):
    folder = workdir / "images"
    folder.mkdir()
    levels = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(levels).save(folder / "0000001.png")
    records._announced_modes.clear()
    code, err = data(capsys, "check", str(folder))
    assert code == 0 and "converted I;16 image to 8-bit RGB" in err
    decoded = load_image(folder / "0000001.png", None)
    expected = np.rint(levels / 257.0).astype(np.uint8)  # was 255 wherever levels > 255
    np.testing.assert_array_equal(decoded, np.repeat(expected[..., None], 3, axis=-1))
    assert next(iter(load_records(folder))).image.mean() == pytest.approx(expected.mean())
    Image.fromarray(levels.astype(np.float32)).save(workdir / "float.tiff")
    with pytest.raises(DataError, match="a floating-point image"):
        load_image(workdir / "float.tiff", None)


def test_a_truncated_or_broken_shard_is_refused_when_opened(shards, tmp_path, monkeypatch, capsys):
    broken = tmp_path / "train"
    broken.mkdir()
    for file in (shards / "train").iterdir():
        (broken / file.name).write_bytes(file.read_bytes())
    TokenShards(broken)  # intact
    shard = next(broken.glob("*.bin"))
    shard.write_bytes(shard.read_bytes()[:-1000])
    with pytest.raises(DataError, match="is shorter than index.json says .* truncated"):
        TokenShards(broken)
    code, err = train(monkeypatch, capsys, f"shards={broken}", f"run_dir={tmp_path / 'run'}")
    assert_one_line_error(code, err, "nuwa-train", "truncated", "nuwa-data tokenize")
    assert not (tmp_path / "run" / "model.safetensors").exists()
    (broken / "index.json").write_text("{not json")
    with pytest.raises(DataError, match="is not a shard index"):
        TokenShards(broken)


TRAIN_CASES = {
    "model.batches=-5": (["model.batches=-5"], "model.batches must be >= 1, got -5"),
    "model.lr=-1": (["model.lr=-1"], "model.lr and model.grad_clip must be > 0"),
    "model.ema_decay=1.5": (["model.ema_decay=1.5"], "model.ema_decay must be in [0, 1)"),
    "model.batch_size=0": (["model.batch_size=0"], "model.batch_size must be >= 1"),
    "unreadable override": (["model.canvas=[2,"], "cannot read 'model.canvas=[2,'"),
    "unknown stage": (["stage=paint"], "unknown stage 'paint'"),
}


@pytest.mark.parametrize("case", TRAIN_CASES)
def test_nuwa_train_fails_in_one_line_before_training(case, shards, tmp_path, monkeypatch, capsys):
    overrides, fragment = TRAIN_CASES[case]
    run_dir = tmp_path / "run"
    code, err = train(
        monkeypatch, capsys, f"shards={shards / 'train'}", f"run_dir={run_dir}", *overrides
    )
    assert_one_line_error(code, err, "nuwa-train", fragment)
    assert not (run_dir / "model.safetensors").exists()
    assert not (run_dir / "last.safetensors").exists()


def test_a_missing_shard_folder_names_itself(tmp_path, monkeypatch, capsys):
    code, err = train(monkeypatch, capsys, f"shards={tmp_path / 'nope'}", f"run_dir={tmp_path}")
    assert_one_line_error(code, err, "nuwa-train", str(tmp_path / "nope"))


def test_the_shard_index_records_items_of_the_right_length(shards):
    index = json.loads((shards / "train" / "index.json").read_text())
    assert len(TokenShards(shards / "train")) == len(index["items"]) == 4
