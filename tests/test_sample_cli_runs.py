"""``nuwa-sample`` happy paths, in process, on tiny checkpoints: each task writes its file."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import test_pipeline_tasks as shared
from optional import import_if_installed
from PIL import Image

from nuwa.sample_cli import main

files, one_thread, image = shared.files, shared.one_thread, shared.image


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run ``nuwa-sample *args`` in this process -> (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["nuwa-sample", "progress=false", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def model_args(files, name: str, pg: bool = False) -> list[str]:
    args = [f"checkpoint={files[name]}", f"tokenizer_checkpoint={files['tokenizer']}"]
    return args + ([f"pg_tokenizer_checkpoint={files['pg']}"] if pg else [])


def test_text_to_image_writes_a_png_of_the_requested_size(files, tmp_path, monkeypatch, capsys):
    out = tmp_path / "x.png"
    code, stdout, stderr = run_cli(
        monkeypatch,
        capsys,
        "task=t2i",
        "text=a sunset over three ridges",
        "width=192",
        "height=64",
        f"out={out}",
        *model_args(files, "text"),
    )
    assert code == 0, stderr
    with Image.open(out) as read:
        assert read.size == (192, 64) and read.mode == "RGB"
    assert stdout.startswith(f"wrote {out} (192x64; nuwa-tiny@") and "tokens/s" in stdout
    first = out.read_bytes()
    out.unlink()
    assert run_cli(monkeypatch, capsys, *sys.argv[2:])[0] == 0  # the same command again
    assert out.read_bytes() == first  # same seed, same bytes


@pytest.mark.parametrize(
    ("size_args", "expected"),
    [
        (["direction=up", "amount=64"], (64, 128)),
        (["direction=all", "width=192", "height=192"], (192, 192)),
    ],
)
def test_outpainting_grows_the_input(files, tmp_path, monkeypatch, capsys, size_args, expected):
    source = tmp_path / "in.png"
    Image.fromarray(image(64, 64)).save(source)
    out = tmp_path / "o.png"
    code, _, stderr = run_cli(
        monkeypatch,
        capsys,
        "task=outpaint",
        f"input={source}",
        f"out={out}",
        *size_args,
        *model_args(files, "plain"),
    )
    assert code == 0, stderr
    with Image.open(out) as read:
        assert read.size == expected


def test_animation_writes_an_mp4(files, tmp_path, monkeypatch, capsys):
    av = import_if_installed("av", "the 'video' extra")
    source = tmp_path / "first.png"
    Image.fromarray(image(64, 128)).convert("L").save(source)  # grey input becomes RGB
    out = tmp_path / "a.mp4"
    code, _, stderr = run_cli(
        monkeypatch,
        capsys,
        "task=animate",
        f"input={source}",
        "frames=3",
        f"out={out}",
        *model_args(files, "video", pg=True),
    )
    assert code == 0, stderr
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 3 and decoded[0].shape == (64, 128, 3)


def test_text_to_video_and_unconditional_batches_are_numbered(files, tmp_path, monkeypatch, capsys):
    code, _, stderr = run_cli(
        monkeypatch,
        capsys,
        "task=t2v",
        "text=a river",
        "frames=2",
        "width=64",
        "height=64",
        "n=2",
        f"out={tmp_path / 'v.gif'}",
        *model_args(files, "video_text", pg=True),
    )
    assert code == 0, stderr
    for name in ("v_000.gif", "v_001.gif"):
        with Image.open(tmp_path / name) as read:
            assert read.n_frames == 2 and read.size == (64, 64)
    code, _, stderr = run_cli(
        monkeypatch,
        capsys,
        "task=unconditional",
        "n=2",
        "seed=7",
        "top_k=5",
        "temperature=0.8",
        f"out={tmp_path / 'u.png'}",
        *model_args(files, "plain"),
    )
    assert code == 0, stderr
    pair = [np.asarray(Image.open(tmp_path / f"u_00{i}.png")) for i in range(2)]
    assert pair[0].shape == (256, 256, 3) and not np.array_equal(*pair)  # default: 4x4 patches
