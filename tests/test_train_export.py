"""``python -m nuwa.train.export``: a finished run becomes a loadable, SHA-256-checked bundle."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from PIL import Image
from test_model_exactness import one_thread  # noqa: F401 (autouse: 1 thread on a shared CPU)
from test_train_transformer import config, shards  # noqa: F401 (session fixture)

from nuwa.bundle import BundleMissingError, bundle_files, files_digest, read_sha256sums
from nuwa.data.shards import run_tokenize
from nuwa.model.checkpoint import load_model
from nuwa.pipeline import Pipeline
from nuwa.tokenizer import load_tokenizer, save_tokenizer
from nuwa.train import export
from nuwa.train.transformer import Trainer

pytestmark = pytest.mark.filterwarnings("ignore::nuwa.adc.ExtentWarning")  # 2x2 toy canvases


@pytest.fixture(scope="module")
def phases(shards, tmp_path_factory):  # noqa: F811
    """Two phases of a text-conditioned tiny run (two batches each, the second from the first's
    weights) with held-out shards."""
    first, second = tmp_path_factory.mktemp("phase1"), tmp_path_factory.mktemp("phase2")
    overrides = ["model.batches=2", "+model.arch.text=clip-tiny", f"val_shards={shards / 'val'}"]
    Trainer(config(shards, first, *overrides)).run()
    Trainer(config(shards, second, *overrides, f"init={first / 'model.safetensors'}")).run()
    return first, second


@pytest.fixture(scope="module")
def run(phases):
    return phases[1]


def test_export_writes_a_bundle_that_loads_and_reproduces_the_run(phases, shards, tmp_path):  # noqa: F811
    out, (first, run) = tmp_path / "bundle", phases
    argv = ["--run", str(run), "--tokenizer", str(shards / "tok.safetensors"), "--out", str(out)]
    argv += ["--earlier-run", str(first), "--val-shards", str(shards / "val"), "--name", "toy"]
    assert export.main(argv) == 0
    _, digests = bundle_files(out)  # every file matches SHA256SUMS
    assert set(read_sha256sums(out / "SHA256SUMS")) == {
        "model.safetensors", "tokenizer.safetensors", "training_curve.png", "samples.png",
        "metrics.json",
    }  # fmt: skip
    pipe = Pipeline.from_bundled(directory=out)
    assert pipe.model_id == f"toy@{files_digest(pipe.checkpoint_sha256)[:8]}"
    assert pipe.checkpoint_sha256["model"] == digests["model"]
    stored = pipe.model.state_dict()
    for key, value in load_model(run / "model.safetensors").state_dict().items():
        torch.testing.assert_close(stored[key], value.half().float())  # float16 storage only
    metrics = json.loads((out / "metrics.json").read_text())
    fp32, fp16 = (metrics["heldout"][k]["loss"] for k in ("float32", "float16_stored"))
    assert fp16 == pytest.approx(fp32, abs=1e-2)
    assert metrics["samples_png"]["scene_px"] == 512
    training = metrics["training"]  # both phases: 2 batches x 4 patches each
    assert (training["batches"], training["optimizer_steps"], len(training["phases"])) == (4, 16, 2)
    # reference, right, left, down, up, all around, text-to-image: 7 rows of 4 half-size scenes
    width, height = Image.open(out / "samples.png").size
    assert (width, height) == (4 * 256 + 5 * 8, 7 * 256 + 8 * 8)


def test_export_accepts_a_decoder_fine_tune_and_refuses_another_tokenizer(run, shards, tmp_path):  # noqa: F811
    tokenizer = load_tokenizer(shards / "tok.safetensors")
    with torch.no_grad():
        tokenizer.decoder.conv_out.bias.add_(0.1)
    save_tokenizer(tmp_path / "tuned.safetensors", tokenizer, preset="tiny", step=1)
    argv = ["--run", str(run), "--out", str(tmp_path / "ok")]
    assert export.main([*argv, "--tokenizer", str(tmp_path / "tuned.safetensors")]) == 0
    with torch.no_grad():
        tokenizer.encoder.conv_in.weight.mul_(-1)
    save_tokenizer(tmp_path / "other.safetensors", tokenizer, preset="tiny", step=1)
    with pytest.raises(SystemExit, match="is not the tokenizer of"):
        export.main(["--run", str(run), "--out", str(tmp_path / "no"), "--tokenizer",
                     str(tmp_path / "other.safetensors")])  # fmt: skip


def test_export_adds_a_video_model_that_the_video_tasks_load(run, shards, tmp_path):  # noqa: F811
    torch.manual_seed(0)
    tokenizer = shards / "tok.safetensors"
    for split in ("train", "val"):
        run_tokenize(argparse.Namespace(
            tokenizer=tokenizer, source="pan_videos:2", out=tmp_path / f"videos_{split}",
            size=128, split=split, frames=3, limit=None, shard_items=8, batch_size=8,
        ))  # fmt: skip
    video_run = tmp_path / "video_run"
    cfg = config(shards, video_run, f"shards={tmp_path / 'videos_train'}", "model.frames=2",
                 "model.batches=2")  # fmt: skip
    cfg.model.arch = {"extent": [1, 1, 1], "text": "clip-tiny"}
    Trainer(cfg).run()
    out = tmp_path / "bundle"
    argv = ["--run", str(run), "--tokenizer", str(tokenizer), "--out", str(out)]
    with pytest.raises(SystemExit, match="is an image model"):
        export.main([*argv, "--video-run", str(run)])
    argv += ["--video-run", str(video_run), "--video-val-shards", str(tmp_path / "videos_val")]
    assert export.main(argv) == 0
    assert "video_model.safetensors" in read_sha256sums(out / "SHA256SUMS")
    video = Pipeline.from_bundled(directory=out, video=True)
    image = Pipeline.from_bundled(directory=out)
    assert video.model.extent.f == 1 and image.model.extent.f == 0
    assert video.model_id != image.model_id
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["video"]["heldout"]["float16_stored"]["loss"] == pytest.approx(
        metrics["video"]["heldout"]["float32"]["loss"], abs=1e-2
    )
    # 7 LHQC rows, then 2 animations and 2 text-to-video clips of 8 half-size 256-px frames
    width, height = Image.open(out / "samples.png").size
    assert height == 7 * 256 + 4 * 128 + 12 * 8


def test_a_bundle_rebuilt_from_a_base_bundle_keeps_its_image_model(phases, shards, tmp_path):  # noqa: F811
    first, run = phases
    tokenizer, base = shards / "tok.safetensors", tmp_path / "base"
    argv = ["--run", str(run), "--tokenizer", str(tokenizer), "--out", str(base), "--name", "toy"]
    argv += ["--earlier-run", str(first), "--val-shards", str(shards / "val")]
    assert export.main(argv) == 0
    rebuilt = tmp_path / "rebuilt"
    argv = ["--base-bundle", str(base), "--tokenizer", str(tokenizer), "--name", "toy-2"]
    assert export.main([*argv, "--out", str(rebuilt), "--decode-margin", "0"]) == 0
    old, new = Pipeline.from_bundled(directory=base), Pipeline.from_bundled(directory=rebuilt)
    assert new.model_id.startswith("toy-2@") and new.tokenizer.config.decode_margin == 0
    assert old.tokenizer.config.decode_margin == load_tokenizer(tokenizer).config.decode_margin
    for key, value in old.model.state_dict().items():
        assert torch.equal(new.model.state_dict()[key], value)  # the same float16 values
    kept, metrics = (json.loads((d / "metrics.json").read_text()) for d in (base, rebuilt))
    for key in ("training", "run_eval", "heldout"):
        assert metrics[key] == kept[key]
    assert metrics["image_model_from"] == "toy"
    curves = [(d / "training_curve.png").read_bytes() for d in (base, rebuilt)]
    assert curves[0] == curves[1]
    with pytest.raises(SystemExit, match="must be a new folder"):
        export.main([*argv, "--out", str(base)])
    with pytest.raises(SystemExit):  # argparse: a base bundle keeps its own held-out numbers
        export.main([*argv, "--out", str(tmp_path / "x"), "--val-shards", str(shards / "val")])
    with pytest.raises(SystemExit):  # argparse: --run or --base-bundle, not both
        export.main([*argv, "--out", str(tmp_path / "y"), "--run", str(run)])


def test_a_bundle_without_a_video_model_says_so(run, shards, tmp_path):  # noqa: F811
    out = tmp_path / "bundle"
    argv = ["--run", str(run), "--tokenizer", str(shards / "tok.safetensors"), "--out", str(out)]
    assert export.main(argv) == 0
    with pytest.raises(BundleMissingError, match="has no video model"):
        Pipeline.from_bundled(directory=out, video=True)
