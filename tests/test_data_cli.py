"""`nuwa-data`: synth (resumable, atomic), split digests, and one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from optional import import_if_installed
from PIL import Image

from nuwa.data import splits
from nuwa.data.cli import SUBCOMMANDS, main
from nuwa.data.landscapes import render_landscape
from nuwa.data.loaders import load_records


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    """The one error line (tqdm's progress bar may share stderr)."""
    lines = [line for line in err.splitlines() if line.startswith("nuwa-data: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_synth_images_metadata_contact_sheet_and_resume(tmp_path: Path, capsys) -> None:
    out = tmp_path / "landscapes"
    sheet = out / "contact_sheet.png"
    argv = ["synth", "--kind", "image", "--n", "3", "--width", "96", "--height", "64"]
    argv += ["--seed", "10", "--out", out, "--contact-sheet", sheet]
    code, stdout, _ = _run(capsys, *argv)
    assert code == 0 and "3 rendered, 0 already complete" in stdout
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in rows] == [f"landscape_{s:07d}.png" for s in (10, 11, 12)]
    for row in rows:
        scene = render_landscape(row["seed"], 96, 64)
        assert row["caption"] == scene.caption and row["params"]["ground"] == scene.params.ground
        assert np.array_equal(np.asarray(Image.open(out / row["file_name"])), scene.image)
    assert Image.open(sheet).size[0] > 3 * 96
    assert json.loads((out / "synth.json").read_text())["dataset"] == "procedural-landscapes-v1"

    (out / "landscape_0000011.png").unlink()
    code, stdout, _ = _run(capsys, *argv)
    assert code == 0 and "1 rendered, 2 already complete" in stdout
    assert [r.text for r in load_records(out)] == [r["caption"] for r in rows]
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_synth_videos_as_png_frames_and_mp4(tmp_path: Path, capsys) -> None:
    argv = ["synth", "--kind", "video", "--n", "2", "--width", "64", "--height", "48"]
    code, _, _ = _run(
        capsys, *argv, "--frames", "4", "--video-format", "png", "--out", tmp_path / "png"
    )
    assert code == 0
    frames = sorted((tmp_path / "png" / "pan_0000000").glob("*.png"))
    assert [f.name for f in frames] == ["000.png", "001.png", "002.png", "003.png"]
    row = json.loads((tmp_path / "png" / "metadata.jsonl").read_text().splitlines()[0])
    assert row["caption"].startswith("a camera panning right") and row["pan"]["speed"] == 4.0
    code, stdout, _ = _run(
        capsys, *argv, "--frames", "4", "--video-format", "png", "--out", tmp_path / "png"
    )
    assert "0 rendered, 2 already complete" in stdout
    import_if_installed("av", "the 'video' extra")
    code, _, _ = _run(capsys, *argv, "--frames", "4", "--out", tmp_path / "mp4")
    assert code == 0 and (tmp_path / "mp4" / "pan_0000001.mp4").stat().st_size > 0
    code, stdout, _ = _run(capsys, *argv, "--frames", "4", "--out", tmp_path / "mp4")
    assert "0 rendered, 2 already complete" in stdout
    code, _, err = _run(
        capsys, *argv[:-2], "--width", "63", "--height", "48", "--out", tmp_path / "odd"
    )
    assert code == 2 and "even --width/--height" in _error_line(err)


def test_split_digest_and_ids(tmp_path: Path, capsys) -> None:
    assert _run(capsys, "split", "lhqc-repro-v1", "--digest") == (0, splits.TEST_DIGEST + "\n", "")
    code, out, _ = _run(capsys, "split", "lhqc-repro-v1", "--digest", "--split", "val")
    assert out.strip() == splits.VAL_DIGEST
    _run(capsys, "split", "lhqc-repro-v1", "--out", tmp_path / "test.txt")
    ids = (tmp_path / "test.txt").read_text().split()
    assert len(ids) == 5000 and ids[0] == "0000005"


def test_subcommands_table_is_the_extension_point() -> None:
    assert set(SUBCOMMANDS) >= {"synth", "split", "verify", "check", "contact-sheet"}
    assert all(callable(add) and callable(run) for add, run in SUBCOMMANDS.values())


def test_verify_and_contact_sheet_commands(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "lhq"
    folder.mkdir()
    for index in (5, 6):
        Image.fromarray(render_landscape(index, 32, 32).image).save(folder / f"{index:07d}.png")
    manifest = tmp_path / "m.jsonl.gz"
    manifest.write_bytes(splits.MANIFEST_PATH.read_bytes())
    code, out, _ = _run(capsys, "verify", "--source", folder, "--manifest", manifest)
    assert code == 0 and "2 newly pinned" in out
    Image.fromarray(render_landscape(9, 32, 32).image).save(folder / "0000006.png")
    code, out, err = _run(capsys, "verify", "--source", folder, "--manifest", manifest)
    assert code == 1 and "1 mismatched" in out and "0000006.png" in err
    code, _, _ = _run(
        capsys, "contact-sheet", "procedural:2", "--size", "32", "--out", tmp_path / "s.png"
    )
    assert code == 0 and Image.open(tmp_path / "s.png").mode == "RGB"


# ---------------------------------------------------------------- bad input


def _folder_with(tmp_path: Path, name: str, payload: bytes | None = None) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    Image.fromarray(render_landscape(1, 64, 64).image).save(folder / "0000001.png")
    if payload is not None:
        (folder / name).write_bytes(payload)
    return folder


def test_missing_folder(tmp_path: Path, capsys) -> None:
    code, _, err = _run(capsys, "check", tmp_path / "nowhere")
    assert code == 2 and f"{tmp_path / 'nowhere'}: no such file or folder" in _error_line(err)


def test_corrupt_and_truncated_images(tmp_path: Path, capsys) -> None:
    folder = _folder_with(tmp_path, "0000002.png", b"this is not a png")
    code, _, err = _run(capsys, "check", folder)
    line = _error_line(err)
    assert code == 2 and "0000002.png: corrupt or truncated image" in line and "re-extract" in line
    whole = (folder / "0000001.png").read_bytes()
    (folder / "0000002.png").write_bytes(whole[: len(whole) // 2])
    code, _, err = _run(capsys, "check", folder)
    assert code == 2 and "0000002.png: corrupt or truncated image" in _error_line(err)


def test_image_smaller_than_requested(tmp_path: Path, capsys) -> None:
    folder = _folder_with(tmp_path, "unused")
    code, _, err = _run(capsys, "check", folder, "--size", "128")
    line = _error_line(err)
    assert code == 2 and "0000001.png: image is 64x64, smaller than the requested size 128" in line
    assert "--size 64" in line


def test_grayscale_and_rgba_are_converted_and_said_once(tmp_path: Path, capsys) -> None:
    import nuwa.data.records as records

    records._announced_modes.clear()
    folder = _folder_with(tmp_path, "unused")
    gray = Image.fromarray(render_landscape(2, 64, 64).image).convert("L")
    gray.save(folder / "0000002.png")
    gray.save(folder / "0000003.png")
    Image.fromarray(render_landscape(4, 64, 64).image).convert("RGBA").save(folder / "0000004.png")
    code, out, err = _run(capsys, "check", folder, "--size", "32")
    notes = [line for line in err.splitlines() if line.startswith("nuwa-data: warning:")]
    assert code == 0 and "4 records OK" in out
    assert len(notes) == 2 and "converted L image to 8-bit RGB" in notes[0] and "RGBA" in notes[1]
    assert all(r.image.shape == (32, 32, 3) for r in load_records(folder, size=32))


def test_metadata_row_naming_a_missing_file(tmp_path: Path, capsys) -> None:
    folder = _folder_with(tmp_path, "unused")
    rows = [
        {"file_name": "0000001.png", "text": "ok"},
        {"file_name": "0000009.png", "text": "gone"},
    ]
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, _, err = _run(capsys, "check", folder)
    line = _error_line(err)
    assert code == 2 and "metadata.jsonl:2: names 0000009.png, which is missing" in line


def test_non_image_file_in_folder(tmp_path: Path, capsys) -> None:
    folder = _folder_with(tmp_path, "notes.txt", b"hello")
    code, _, err = _run(capsys, "check", folder)
    line = _error_line(err)
    assert code == 2 and "notes.txt: not an image" in line and "move it out of" in line


def test_console_script_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nuwa.data.cli", "check", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "nuwa.data.cli", "synth"], capture_output=True, text=True
    )
    assert usage.returncode == 2 and "--out" in usage.stderr
