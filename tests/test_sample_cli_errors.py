"""``nuwa-sample`` on bad input: exit code 2 and one line on stderr, never a traceback; odd but
valid requests give one-line warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_pipeline_tasks as shared
import test_sample_cli_runs as runs
from PIL import Image

import nuwa.bundle

files, one_thread, image = shared.files, shared.one_thread, shared.image
run_cli, model_args = runs.run_cli, runs.model_args


def assert_one_line_error(result, *fragments: str) -> None:
    code, stdout, stderr = result
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nuwa-sample: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def cli(files, tmp_path, monkeypatch, capsys):
    """``cli(*args, model="plain")`` runs nuwa-sample on a tiny checkpoint, output in tmp_path."""

    def call(*args: str, model: str | None = "plain"):
        extra = model_args(files, model) if model else []
        return run_cli(monkeypatch, capsys, f"out={tmp_path / 'o.png'}", *extra, *args)

    return call


@pytest.fixture
def picture(tmp_path) -> Path:
    path = tmp_path / "in.png"
    Image.fromarray(image(128, 128)).save(path)
    return path


def test_sizes_and_requests_that_cannot_work(cli, picture, tmp_path):
    assert_one_line_error(cli("task=unconditional", "width=100"), "multiple of the patch size")
    assert_one_line_error(cli("task=paint"), "unknown task 'paint'")
    assert_one_line_error(cli("task=t2i", model="text"), "task=t2i needs text=")
    assert_one_line_error(cli("task=t2i", "text=a lake"), "not text-conditioned")
    assert_one_line_error(cli("task=t2v", "text=a", f"out={tmp_path / 'v.png'}"), ".gif or .mp4")
    assert_one_line_error(cli("task=unconditional", "device=cuda:7"), "no CUDA GPU")
    assert_one_line_error(cli("task=unconditional", "top_p=2"), "top_p must be in (0, 1]")


def test_outpainting_inputs(cli, picture, tmp_path):
    outpaint = ("task=outpaint", f"input={picture}")
    assert_one_line_error(
        cli(*outpaint, "width=64", "height=256"), "bigger than the requested canvas"
    )
    assert_one_line_error(cli(*outpaint), "needs amount=PX, or width= and height=")
    assert_one_line_error(cli(*outpaint, "amount=50"), "amount_px=50 is not a positive multiple")
    assert_one_line_error(
        cli(*outpaint, "direction=diagonal", "amount=64"), "direction=diagonal is not one of"
    )
    odd = tmp_path / "odd.png"
    Image.fromarray(image(100, 128)).save(odd)
    assert_one_line_error(
        cli("task=outpaint", f"input={odd}", "amount=64"), "128x100 px", "multiples of the patch"
    )
    assert_one_line_error(
        cli("task=outpaint", f"input={tmp_path / 'missing.png'}", "amount=64"),
        "cannot read input image",
        "file not found",
    )
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    assert_one_line_error(
        cli("task=outpaint", f"input={garbage}", "amount=64"), "cannot read input image"
    )
    assert_one_line_error(
        cli("task=animate", f"out={tmp_path / 'a.mp4'}"), "task=animate needs input=IMAGE"
    )


def test_checkpoints_that_do_not_fit(cli, files, tmp_path, monkeypatch):
    assert_one_line_error(cli("task=unconditional", model="wrong_codebook"), "predicts 32 codes")
    assert_one_line_error(
        cli("task=unconditional", f"checkpoint={files['plain']}", model=None),
        "is a model file; name its tokenizer file too, or give the folder",
    )
    assert_one_line_error(
        cli(
            "task=unconditional",
            f"checkpoint={files['tokenizer']}",
            "tokenizer_checkpoint=x",
            model=None,
        ),
        "expected 'nuwa-model'",
    )
    monkeypatch.setattr(nuwa.bundle, "BUNDLE_DIR", tmp_path / "bundled")
    assert_one_line_error(cli("task=unconditional", model=None), "bundled model is not in")


def test_odd_requests_warn_in_one_line(cli):
    code, stdout, stderr = cli("task=t2i", f"text={'hills ' * 100}", model="text")
    assert code == 0 and stdout.startswith("wrote")
    warnings = stderr.strip().splitlines()
    assert "nuwa-sample: warning: text 0 has 102 CLIP tokens; only the first 77 are used" in (
        warnings
    )
    assert all(line.startswith("nuwa-sample: warning: ") for line in warnings)
    code, _, stderr = cli("task=unconditional", "width=64", "height=64", "overwrite=true")
    assert code == 0 and "extent" not in stderr  # a canvas smaller than the extent is ordinary


@pytest.mark.slow  # a fresh interpreter imports torch, open_clip and hydra: 5-12 s here
def test_the_console_script_exits_2_without_a_traceback(tmp_path):
    script = Path(sys.executable).with_name("nuwa-sample")
    if not script.exists():
        pytest.skip(f"{script} is not installed (run pip install -e .)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [
            str(script),
            "task=unconditional",
            f"checkpoint={tmp_path / 'm.safetensors'}",
            f"tokenizer_checkpoint={tmp_path / 't'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert_one_line_error((result.returncode, result.stdout, result.stderr), "not found")
    assert list(tmp_path.iterdir()) == []  # hydra wrote no outputs/ or .hydra folders
