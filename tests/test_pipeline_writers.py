"""Output writers: PNG (exact), GIF and MP4 (read back with PIL / av), atomic, suffix checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from optional import import_if_installed
from PIL import Image, ImageSequence

from nuwa.writers import numbered, write_output


def frames(n: int = 3, h: int = 64, w: int = 96) -> np.ndarray:
    """Smooth moving gradients (codecs keep them well), uint8 [n, h, w, 3]."""
    y, x = np.mgrid[0:h, 0:w]
    video = [
        np.stack([(x * 2 + 20 * t) % 256, (y * 3) % 256, np.full_like(x, 40 * t)], -1)
        for t in range(n)
    ]
    return np.asarray(video, dtype=np.uint8)


def test_png_round_trips_exactly(tmp_path):
    image = frames(1)[0]
    write_output(tmp_path / "a.png", image)
    with Image.open(tmp_path / "a.png") as read:
        assert read.format == "PNG" and read.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(read), image)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left


def test_gif_holds_every_frame(tmp_path):
    video = frames(4)
    write_output(tmp_path / "v.gif", video, fps=5)
    with Image.open(tmp_path / "v.gif") as read:
        assert read.format == "GIF" and read.n_frames == 4 and read.size == (96, 64)
        assert read.info["duration"] == 200 and read.info["loop"] == 0
        first = np.asarray(next(ImageSequence.Iterator(read)).convert("RGB"), dtype=float)
    assert np.abs(first - video[0]).mean() < 8  # 256-colour palette
    write_output(tmp_path / "still.gif", video[0])  # an image as a one-frame GIF
    with Image.open(tmp_path / "still.gif") as read:
        assert read.n_frames == 1


def test_mp4_decodes_back_with_av(tmp_path):
    av = import_if_installed("av", "the 'video' extra")
    video = frames(5)
    write_output(tmp_path / "v.mp4", video, fps=8)
    with av.open(str(tmp_path / "v.mp4")) as container:
        stream = container.streams.video[0]
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        assert stream.average_rate == 8
    assert decoded.shape == video.shape
    assert np.abs(decoded.astype(float) - video).mean() < 6  # H.264 CRF 18 is lossy


def test_the_suffix_must_suit_the_array(tmp_path):
    with pytest.raises(ValueError, match=r"cannot write a video to .*\.png: use one of .gif, .mp4"):
        write_output(tmp_path / "v.png", frames(2))
    with pytest.raises(ValueError, match="cannot write an image to .*mp4"):
        write_output(tmp_path / "a.mp4", frames(1)[0])
    with pytest.raises(ValueError, match="expected uint8"):
        write_output(tmp_path / "a.png", frames(1)[0].astype(np.float32))
    assert not list(tmp_path.iterdir())


def test_numbered_outputs():
    assert numbered("out/x.png", 0, 1) == Path("out/x.png")
    assert numbered("out/x.png", 2, 3) == Path("out/x_002.png")
