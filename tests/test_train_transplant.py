"""The vocabulary transplant: a model carried over to a relabelled codebook scores exactly what it
scored before, a larger codebook inherits the rows its codes sit on, and bad inputs stop with one
line."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from test_model_exactness import one_thread  # noqa: F401 (autouse: 1 thread on a shared CPU)
from test_train_transformer import shards  # noqa: F401 (the toy token shards)

from nuwa.adc import ORDERS, make_plan
from nuwa.data.records import DataError
from nuwa.data.shards import TokenShards
from nuwa.layout import PatchGrid
from nuwa.model import Nuwa, preset
from nuwa.model.checkpoint import load_model, save_model
from nuwa.train import transplant
from nuwa.train.heldout import heldout_loss

pytestmark = pytest.mark.filterwarnings("ignore::nuwa.adc.ExtentWarning")


def relabelled(src: Path, dst: Path, recode: Callable[[np.ndarray], np.ndarray], size: int) -> Path:
    """A copy of shard folder ``src`` whose codes went through ``recode`` (codebook ``size``)."""
    shutil.copytree(src, dst)
    index = json.loads((dst / "index.json").read_text())
    index["tokenizer"]["codebook_size"] = size
    for shard in index["shards"]:
        data = recode(np.fromfile(dst / shard["file"], dtype="<u2")).astype("<u2").tobytes()
        (dst / shard["file"]).write_bytes(data)
        shard["sha256"] = hashlib.sha256(data).hexdigest()
    (dst / "index.json").write_text(json.dumps(index))
    return dst


def tiny_model() -> Nuwa:
    torch.manual_seed(0)
    return Nuwa(preset("tiny"))


def loss(model: Nuwa, folder: Path) -> float:
    plans = {o: make_plan(PatchGrid(2, 2), model.extent, o) for o in ORDERS}
    return heldout_loss(model, TokenShards(folder), plans)["loss"]


def test_a_permuted_codebook_scores_exactly_as_before(shards, tmp_path):  # noqa: F811
    model = tiny_model()
    permutation = np.random.default_rng(0).permutation(model.codebook_size)
    new = relabelled(shards / "val", tmp_path / "new", lambda c: permutation[c], 64)

    counts, items = transplant.cooccurrence(TokenShards(shards / "val"), TokenShards(new))
    moved = transplant.transplant(model, counts)

    assert items == 4
    assert transplant.agreement(counts) == 1.0
    # codes the data never shows get the mean row in both labellings, so the softmax matches
    reference = tiny_model()
    unseen_old = counts.sum(0) == 0
    assert unseen_old.any()  # the mean row is exercised too
    with torch.no_grad():
        reference.tok_emb.weight[:64][unseen_old] = moved.tok_emb.weight[:64][counts.sum(1) == 0]
    assert loss(moved, new) == pytest.approx(loss(reference, shards / "val"), abs=1e-6)
    assert loss(reference, new) > loss(reference, shards / "val") + 0.01  # relabelling matters


def test_a_larger_codebook_inherits_the_rows_its_codes_sit_on(shards, tmp_path):  # noqa: F811
    model = tiny_model()
    rng = np.random.default_rng(1)
    new = relabelled(
        shards / "train", tmp_path / "new", lambda c: c + 64 * rng.integers(0, 2, c.shape), 128
    )

    counts, _ = transplant.cooccurrence(TokenShards(shards / "train"), TokenShards(new))
    moved = transplant.transplant(model, counts)

    old_rows, rows = model.tok_emb.weight, moved.tok_emb.weight
    assert moved.codebook_size == 128 and rows.shape == (130, old_rows.shape[1])
    seen = (counts.sum(1) > 0).nonzero().flatten()
    assert (seen < 64).any() and (seen >= 64).any()  # both copies of some old codes
    torch.testing.assert_close(rows[seen], old_rows[seen % 64], rtol=0, atol=0)
    torch.testing.assert_close(rows[128:], old_rows[64:], rtol=0, atol=0)  # BOS, MASK
    torch.testing.assert_close(moved.blocks[0].ff.up.weight, model.blocks[0].ff.up.weight)
    unseen = (counts.sum(1) == 0).nonzero().flatten()
    if len(unseen):  # the frequency-weighted mean of the old rows
        mean = (counts.sum(0) / counts.sum()).float() @ old_rows[:64]
        torch.testing.assert_close(rows[unseen], mean.expand(len(unseen), -1))


def test_folders_without_shared_items_or_with_other_shapes_are_refused(shards, tmp_path):  # noqa: F811
    with pytest.raises(DataError, match="share no item id"):
        transplant.cooccurrence(TokenShards(shards / "train"), TokenShards(shards / "val"))
    other = relabelled(shards / "val", tmp_path / "other", lambda c: c, 64)
    index = json.loads((other / "index.json").read_text())
    index["items"][0]["shape"] = [4, 16]
    (other / "index.json").write_text(json.dumps(index))
    with pytest.raises(DataError, match="same --size"):
        transplant.cooccurrence(TokenShards(shards / "val"), TokenShards(other))


def test_the_command_writes_a_loadable_model_and_never_overwrites(shards, tmp_path, capsys):  # noqa: F811
    save_model(tiny_model(), tmp_path / "old.safetensors")
    new = relabelled(shards / "val", tmp_path / "new", lambda c: 63 - c, 64)
    argv = [
        "--model", str(tmp_path / "old.safetensors"),
        "--old-shards", str(shards / "val"),
        "--new-shards", str(new),
        "--out", str(tmp_path / "moved.safetensors"),
    ]  # fmt: skip

    assert transplant.main(argv) == 0
    moved = load_model(tmp_path / "moved.safetensors")
    seen = TokenShards(new)[0][0].unique()
    torch.testing.assert_close(moved.tok_emb.weight[seen], tiny_model().tok_emb.weight[63 - seen])
    before = (tmp_path / "moved.safetensors").read_bytes()
    assert transplant.main(argv) == 2
    assert "exists" in capsys.readouterr().err
    assert (tmp_path / "moved.safetensors").read_bytes() == before
