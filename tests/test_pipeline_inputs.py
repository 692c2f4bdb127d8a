"""Pipeline loading (checkpoints, the SHA-256-checked bundle) and clear errors on bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings

import numpy as np
import pytest
import test_pipeline_tasks as shared
import torch

from benchmarks.harness.generate import checkpoint_digest
from nuwa.bundle import BundleMissingError, TokenizerMismatchWarning, model_name
from nuwa.checkpoint import CheckpointError
from nuwa.io import sha256_file
from nuwa.model import Nuwa, preset
from nuwa.model.checkpoint import save_model
from nuwa.pipeline import Pipeline, outpaint_amount
from nuwa.text import TextTruncationWarning
from nuwa.tokenizer import codes_sha256, load_tokenizer, save_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore::nuwa.adc.ExtentWarning")  # toy grids
files, pipes, one_thread, image = shared.files, shared.pipes, shared.one_thread, shared.image


# ---------------------------------------------------------------- loading


def test_checkpoint_identity_and_hashes(files):
    pipe = Pipeline.from_checkpoint(files["text"], files["tokenizer"])
    digest = sha256_file(files["text"])
    assert pipe.checkpoint_sha256 == {
        "model": digest,
        "tokenizer": sha256_file(files["tokenizer"]),
    }
    # one id for a model's files, wherever it is printed: over every file, not the model alone
    files_json = json.dumps(pipe.checkpoint_sha256, sort_keys=True, separators=(",", ":"))
    combined = hashlib.sha256(files_json.encode()).hexdigest()
    assert pipe.model_id == f"nuwa-tiny@{combined[:8]}" and pipe.patch_px == 64
    assert checkpoint_digest(pipe) == combined


def test_checkpoints_that_do_not_belong_together_are_refused(files, tmp_path):
    with pytest.raises(CheckpointError, match="predicts 32 codes but the tokenizer has 64"):
        Pipeline.from_checkpoint(files["wrong_codebook"], files["tokenizer"])
    with pytest.raises(CheckpointError, match="holds a 'nuwa-model' checkpoint, expected 'vqgan'"):
        Pipeline.from_checkpoint(files["plain"], files["plain"])
    with pytest.raises(CheckpointError, match="expected 'pg_vqgan'"):
        Pipeline.from_checkpoint(files["plain"], files["tokenizer"], files["tokenizer"])
    with pytest.raises(CheckpointError, match="PG-VQGAN was not built on this tokenizer"):
        Pipeline.from_checkpoint(files["video"], files["tokenizer"], files["other_pg"])
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        Pipeline.from_checkpoint(tmp_path / "nope.safetensors", files["tokenizer"])
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(files["plain"].read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        Pipeline.from_checkpoint(truncated, files["tokenizer"])


def test_a_tokenizer_other_than_the_training_one_warns(files, tmp_path):
    model = tmp_path / "model.safetensors"
    data = {"source": "procedural", "tokenizer_sha256": "0" * 64}
    save_model(Nuwa(preset("tiny")), model, {"preset": "tiny", "data": data, "ablation": "none"})
    with pytest.warns(TokenizerMismatchWarning, match="trained on tokens of tokenizer 00000000"):
        pipe = Pipeline.from_checkpoint(model, files["tokenizer"])
    assert pipe.model_id.startswith("nuwa-tiny-procedural@")


def test_a_decoder_fine_tune_of_the_training_tokenizer_is_accepted(files, tmp_path):
    tokenizer = load_tokenizer(files["tokenizer"])
    data = {"source": "procedural", "tokenizer_codes_sha256": codes_sha256(tokenizer)}
    model = tmp_path / "model.safetensors"
    save_model(Nuwa(preset("tiny")), model, {"preset": "tiny", "data": data, "ablation": "none"})
    with torch.no_grad():
        tokenizer.decoder.conv_out.bias.add_(0.5)  # a new decoder: same tokens, other file
    save_tokenizer(tmp_path / "tuned.safetensors", tokenizer, preset="tiny", step=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TokenizerMismatchWarning)
        Pipeline.from_checkpoint(model, tmp_path / "tuned.safetensors")
    with torch.no_grad():
        tokenizer.encoder.conv_in.weight.mul_(-1)  # another encoder: other tokens
    save_tokenizer(tmp_path / "other.safetensors", tokenizer, preset="tiny", step=1)
    with pytest.warns(TokenizerMismatchWarning, match="trained on tokens of tokenizer"):
        Pipeline.from_checkpoint(model, tmp_path / "other.safetensors")


def make_bundle(files, directory, pg: bool = True):
    directory.mkdir()
    names = {"model.safetensors": files["video"], "tokenizer.safetensors": files["tokenizer"]}
    if pg:
        names["pg_tokenizer.safetensors"] = files["pg"]
    for name, source in names.items():
        shutil.copy(source, directory / name)
    sums = "".join(f"{sha256_file(directory / n)}  {n}\n" for n in names)
    (directory / "SHA256SUMS").write_text(sums)
    return directory


def test_bundle_loads_with_checked_hashes(files, tmp_path):
    bundle = make_bundle(files, tmp_path / "bundled")
    pipe = Pipeline.from_bundled(directory=bundle)
    assert set(pipe.checkpoint_sha256) == {"model", "tokenizer", "pg_tokenizer"}
    assert pipe.pg_tokenizer is not None
    without_pg = Pipeline.from_bundled(directory=make_bundle(files, tmp_path / "b2", pg=False))
    assert without_pg.pg_tokenizer is None


def test_bundle_problems_are_one_line_errors(files, tmp_path):
    with pytest.raises(BundleMissingError, match=r"not in .* yet \(missing model.safetensors"):
        Pipeline.from_bundled(directory=tmp_path / "empty")
    bundle = make_bundle(files, tmp_path / "bundled")
    with (bundle / "model.safetensors").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(CheckpointError, match="model.safetensors has SHA-256 .* corrupt"):
        Pipeline.from_bundled(directory=bundle)
    bundle = make_bundle(files, tmp_path / "b2")
    (bundle / "pg_tokenizer.safetensors").unlink()
    with pytest.raises(CheckpointError, match="listed in .* but missing"):
        Pipeline.from_bundled(directory=bundle)


# ---------------------------------------------------------------- bad requests


def test_sizes_that_are_not_patch_multiples(pipes):
    pipe = pipes["plain"]
    with pytest.raises(ValueError, match="not a positive multiple of the patch size 64 px"):
        pipe.unconditional(1, 100, 64)
    with pytest.raises(ValueError, match="multiples of the patch size 64 px"):
        pipe.outpaint([image(64, 100)], direction="right", amount_px=64)
    with pytest.raises(ValueError, match="amount_px=30 is not a positive multiple"):
        pipe.outpaint([image(64, 64)], direction="right", amount_px=30)
    with pytest.raises(ValueError, match="unknown direction 'sideways'"):
        pipe.outpaint([image(64, 64)], direction="sideways", amount_px=64)


def test_outpainting_canvas_requests():
    assert outpaint_amount("right", 256, 256, 256, 768) == 512
    assert outpaint_amount("all", 256, 256, 768, 768) == 256
    with pytest.raises(ValueError, match="bigger than the requested canvas"):
        outpaint_amount("right", 512, 512, 256, 1024)
    with pytest.raises(ValueError, match="does not fit outpainting 'down'"):
        outpaint_amount("down", 256, 256, 512, 512)


def test_inputs_of_the_wrong_kind(pipes):
    plain, text = pipes["plain"], pipes["text"]
    with pytest.raises(ValueError, match="not text-conditioned"):
        plain.text_to_image(["a lake"], 64, 64)
    with pytest.raises(ValueError, match="not text-conditioned"):
        plain.outpaint([image(64, 64)], direction="up", amount_px=64, texts=["sky"])
    with pytest.raises(ValueError, match="2 texts for 1 images"):
        text.outpaint([image(64, 64)], direction="up", amount_px=64, texts=["a", "b"])
    with pytest.raises(ValueError, match="must be uint8"):
        plain.outpaint([image(64, 64).astype(np.float32)], direction="up", amount_px=64)
    with pytest.raises(ValueError, match="share one size"):
        plain.outpaint([image(64, 64), image(128, 64)], direction="up", amount_px=64)
    with pytest.raises(ValueError, match="frames must be >= 2"):
        pipes["video"].animate([image(64, 64)], frames=1)
    with pytest.raises(ValueError, match="a list of strings"):
        text.text_to_image("a lake", 64, 64)


def test_long_texts_are_truncated_with_a_warning(pipes):
    with pytest.warns(TextTruncationWarning, match="only the first 77 are used"):
        [img] = pipes["text"].text_to_image(["hills " * 100], 64, 64, progress=False)
    assert img.shape == (64, 64, 3)


LHQ = "/data/lhq_1024"


@pytest.mark.parametrize(
    "meta,name",
    [
        ({"name": "toy"}, "toy"),
        ({"preset": "small", "data": {"name": "procedural"}}, "nuwa-small-procedural"),
        ({"preset": "small", "data": {"source": {"source": "procedural:8"}}}, "nuwa-small"),
        ({"preset": "tiny", "data": LHQ, "ablation": "no_cache"}, "nuwa-tiny-lhq_1024-no_cache"),
        ({}, "nuwa-custom"),
    ],
)
def test_model_names_are_readable_whatever_the_metadata_holds(meta, name):
    assert model_name(meta) == name
