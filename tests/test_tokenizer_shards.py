"""nuwa-data tokenize shards: contents, resume after a partial run, mismatches, TokenShards."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from nuwa.data.loaders import load_records
from nuwa.data.records import DataError
from nuwa.data.shards import TokenShards, add_tokenize_arguments, run_tokenize
from nuwa.data.video import render_pan_video
from nuwa.io import sha256_file
from nuwa.tokenizer import build_vqgan, codes_sha256, load_tokenizer, save_tokenizer


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tok") / "tiny.safetensors"
    save_tokenizer(path, build_vqgan("tiny"), preset="tiny", step=0)
    return path


def tokenize(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_tokenize_arguments(parser)
    return run_tokenize(parser.parse_args(list(argv)))


def test_shards_hold_the_tokens_and_captions_of_every_item(tmp_path, tokenizer_path):
    out = tmp_path / "shards"
    args = ["--tokenizer", str(tokenizer_path), "--out", str(out), "--size", "64"]
    assert tokenize(*args, "--source", "procedural:5", "--shard-items", "2") == 0
    shards = TokenShards(out)
    assert len(shards) == 5 and shards.codebook_size == 64
    assert sorted(p.name for p in out.glob("shard_*.bin")) == [
        "shard_00000.bin", "shard_00001.bin", "shard_00002.bin"
    ]  # fmt: skip
    model = load_tokenizer(tokenizer_path)
    recorded = shards.index["tokenizer"]
    assert recorded["sha256"] == sha256_file(tokenizer_path)
    assert recorded["codes_sha256"] == codes_sha256(model)  # what a decoder fine-tune keeps
    for i, record in enumerate(load_records("procedural:5", size=64)):
        tokens, caption = shards[i]
        assert tokens.dtype == torch.int64 and tokens.shape == (4, 4)
        assert torch.equal(tokens, model.encode(record.image))
        assert caption == record.text and shards.items[i]["id"] == record.id


def test_a_partial_run_resumes_without_rewriting_finished_shards(tmp_path, tokenizer_path):
    out = tmp_path / "shards"
    args = ["--tokenizer", str(tokenizer_path), "--out", str(out), "--size", "64",
            "--source", "procedural:6", "--shard-items", "2"]  # fmt: skip
    tokenize(*args, "--limit", "4")
    first = (out / "shard_00000.bin").stat().st_mtime_ns
    assert len(TokenShards(out)) == 4
    tokenize(*args)
    assert len(TokenShards(out)) == 6
    assert (out / "shard_00000.bin").stat().st_mtime_ns == first
    index = json.loads((out / "index.json").read_text())
    assert [item["shard"] for item in index["items"]] == [0, 0, 1, 1, 2, 2]


def test_another_tokenizer_or_source_in_the_same_folder_is_refused(tmp_path, tokenizer_path):
    out = tmp_path / "shards"
    base = ["--tokenizer", str(tokenizer_path), "--out", str(out), "--size", "64"]
    tokenize(*base, "--source", "procedural:2")
    with pytest.raises(DataError, match="another source"):
        tokenize(*base, "--source", "procedural:3")
    with pytest.raises(DataError, match="not found"):
        tokenize("--tokenizer", str(tmp_path / "nope.st"), "--out", str(out),
                 "--source", "procedural:2")  # fmt: skip


def test_videos_are_stored_as_frame_token_grids(tmp_path, tokenizer_path):
    out = tmp_path / "video"
    tokenize("--tokenizer", str(tokenizer_path), "--out", str(out), "--size", "64",
             "--source", "pan_videos:2", "--frames", "3")  # fmt: skip
    shards = TokenShards(out)
    tokens, caption = shards[1]
    assert tokens.shape == (3, 4, 4)
    video = render_pan_video(1, 64, 64, 3)
    assert torch.equal(tokens, load_tokenizer(tokenizer_path).encode(video.frames))
    assert caption == video.caption
