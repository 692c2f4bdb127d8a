"""``nuwa-sample`` on bad input: one line on stderr and exit status 2 before the model loads,
the user's files untouched; and inputs that used to give a wrong result now give the right one."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import test_pipeline_tasks as shared
import test_sample_cli_runs as runs
from bad_input import assert_one_line_error, snapshot
from PIL import Image

files, image = shared.files, shared.image
run_cli, model_args = runs.run_cli, runs.model_args


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The user's folder: an RGB picture, a 16-bit greyscale one and a sub-folder."""
    Image.fromarray(image(64, 64)).save(tmp_path / "a.png")
    grey16 = np.full((64, 64), 100 * 257, dtype=np.uint16)  # 100 on the 8-bit scale
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    (tmp_path / "folder").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cli(files, monkeypatch, capsys):
    def call(*args: str, model: str | None = "plain") -> tuple[int, str, str]:
        return run_cli(monkeypatch, capsys, *(model_args(files, model) if model else []), *args)

    return call


OUTPAINT = ("task=outpaint", "input=a.png", "direction=right")
CASES = {
    "width=0": (("task=unconditional", "width=0", "height=64"), "width must be a positive"),
    "negative height": (("task=unconditional", "height=-64"), "height must be a positive"),
    "n=0": (("task=unconditional", "n=0"), "n must be a positive"),
    "threads=0": (("task=unconditional", "threads=0"), "threads must be a positive"),
    "frames=0": (("task=t2v", "text=a", "frames=0", "out=v.gif"), "frames must be a positive"),
    "fps=0": (("task=t2v", "text=a", "fps=0", "out=v.gif"), "fps must be a positive"),
    "negative amount": ((*OUTPAINT, "amount=-10"), "amount must be a positive"),
    "unknown direction": (
        ("task=outpaint", "input=a.png", "direction=diagonal", "amount=64"),
        "direction=diagonal is not one of",
    ),
    "temperature<0": (("task=unconditional", "temperature=-1"), "temperature must be >= 0"),
    "cfg_scale<0": (("task=unconditional", "cfg_scale=-2"), "cfg_scale must be >= 0"),
    "top_p>1": (("task=unconditional", "top_p=1.5"), "top_p must be in (0, 1]"),
    "not a device": (("task=unconditional", "device=gpu"), "'gpu' is not a device"),
    "cuda without a GPU": (("task=unconditional", "device=cuda"), "no CUDA GPU"),
    "input is a folder": (
        ("task=outpaint", "input=folder", "direction=right", "amount=64"),
        "cannot read input image folder",
    ),
    "out is the input": ((*OUTPAINT, "amount=64", "out=a.png"), "out=a.png is the input image"),
    "out is the input, overwrite=true": (
        (*OUTPAINT, "amount=64", "out=a.png", "overwrite=true"),
        "out=a.png is the input image",
    ),
    "out exists": (("task=unconditional", "out=grey16.png"), "grey16.png exists", "overwrite=true"),
    "tokenizer without checkpoint": (
        ("task=unconditional", "tokenizer_checkpoint=x.safetensors"),
        "needs checkpoint=",
    ),
    "unreadable override": (("task=unconditional", "width=[1"), "cannot read 'width=[1'"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_options_fail_in_one_line_and_touch_nothing(case, workdir, cli):
    args, *fragments = CASES[case]
    before = snapshot(workdir)
    model = None if "tokenizer without checkpoint" in case else "plain"
    code, _, err = cli(*args, model=model)
    assert_one_line_error(code, err, "nuwa-sample", *fragments)
    assert snapshot(workdir) == before


def test_a_16_bit_input_keeps_its_grey_level(workdir, cli):
    code, _, err = cli(
        *OUTPAINT[:1], "input=grey16.png", "direction=right", "amount=64", "out=o.png"
    )
    assert code == 0, err
    given = np.asarray(Image.open(workdir / "o.png"))[:, :48]  # left of the 16-px blend
    assert abs(float(given.mean()) - 100.0) < 1.0  # was 255: PIL clips 16-bit values at 255


def test_overwrite_replaces_an_earlier_output_only_when_asked(workdir, cli):
    assert cli("task=unconditional", "out=o.png")[0] == 0
    first = (workdir / "o.png").read_bytes()
    assert cli("task=unconditional", "out=o.png", "seed=1")[0] == 2
    assert (workdir / "o.png").read_bytes() == first
    assert cli("task=unconditional", "out=o.png", "seed=1", "overwrite=true")[0] == 0
    assert (workdir / "o.png").read_bytes() != first


@pytest.mark.parametrize("name", ["bild_ä.png", "my pictures/o.png"])
def test_paths_with_spaces_and_letters_outside_ascii_work_unquoted(workdir, cli, name):
    (workdir / "my pictures").mkdir()
    code, out, err = cli("task=unconditional", f"out={name}")
    assert code == 0 and (workdir / name).is_file(), err


def test_a_checkpoint_folder_is_accepted_as_nuwa_eval_accepts_it(workdir, files, cli):
    folder = workdir / "ckpt"
    folder.mkdir()
    shutil.copy(files["plain"], folder / "model.safetensors")
    shutil.copy(files["tokenizer"], folder / "tokenizer.safetensors")
    code, out, err = cli("task=unconditional", f"checkpoint={folder}", "out=o.png", model=None)
    assert code == 0 and (workdir / "o.png").is_file(), err
