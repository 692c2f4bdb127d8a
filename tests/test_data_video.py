"""Panning videos: frames move as a camera translating over layers at known depths."""

from __future__ import annotations

import numpy as np
import pytest
from optional import import_if_installed

from nuwa.data.landscapes import render_layers, sample_scene
from nuwa.data.video import render_pan_video, write_mp4

SEED = 5  # overcast meadow: textured clouds, no lake at the bottom, a near ridge with no gaps
assert sample_scene(SEED).ground == "meadow" and sample_scene(SEED).cloud_cover == "overcast"


def _estimated_shift(first: np.ndarray, later: np.ndarray, max_shift: int) -> int:
    """The left shift (px) that best maps `first` rows onto `later` rows (least squares)."""
    first, later = first.astype(np.float64), later.astype(np.float64)
    width = first.shape[1]
    errors = [((later[:, : width - s] - first[:, s:]) ** 2).mean() for s in range(max_shift + 1)]
    return int(np.argmin(errors))


def test_video_shape_caption_and_determinism() -> None:
    video = render_pan_video(SEED, 96, 64, frames=5, speed=2.0)
    assert video.frames.shape == (5, 64, 96, 3) and video.frames.dtype == np.uint8
    assert video.caption.startswith("a camera panning right across an overcast")
    again = render_pan_video(SEED, 96, 64, frames=5, speed=2.0)
    assert video.frames.tobytes() == again.frames.tobytes()
    assert video.pan.panorama_width >= 4 * 96


def test_nearest_ground_row_pans_exactly_at_camera_speed() -> None:
    video = render_pan_video(SEED, 160, 96, frames=6, speed=3.0)
    bottom = video.frames[:, -1]
    for t in range(1, 6):
        assert np.array_equal(bottom[t, : 160 - 3 * t], bottom[0, 3 * t :]), t


def test_layers_move_at_speed_over_depth_and_the_sky_stays() -> None:
    speed, frames, width, height = 4.0, 9, 256, 128
    video = render_pan_video(SEED, width, height, frames, speed=speed, cloud_drift=0.0)
    _, layers = render_layers(SEED, video.pan.panorama_width, height)
    top, near = layers.ridges[-1]
    # rows where the near ridge hides everything behind it, across all columns the clip shows
    opaque = top + np.nonzero(near[:, : width + 40, 3].min(axis=1) == 1)[0]
    opaque = opaque[opaque < layers.ground_row]
    assert len(opaque) >= 3
    moved = _estimated_shift(video.frames[0, opaque], video.frames[-1, opaque], 40)
    expected = (frames - 1) * speed / video.params.ridge_depths[-1]
    assert abs(moved - expected) <= 1, (moved, expected)
    ground = _estimated_shift(video.frames[0, -8:], video.frames[-1, -8:], 40)
    assert ground > moved  # parallax: nearer layers move faster
    sky_rows = slice(0, min(t for t, _ in layers.ridges))
    assert np.array_equal(video.frames[0, sky_rows], video.frames[-1, sky_rows])


def test_clouds_drift_with_the_wind() -> None:
    video = render_pan_video(SEED, 256, 128, frames=5, speed=4.0, cloud_drift=2.0)
    sky = video.frames[:, :20]
    assert abs(_estimated_shift(sky[0], sky[4], 20) - 8) <= 1


def test_mp4_round_trip() -> None:
    av = import_if_installed("av", "the 'video' extra")
    import tempfile
    from pathlib import Path

    video = render_pan_video(SEED, 64, 48, frames=6, speed=2.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pan.mp4"
        write_mp4(path, video.frames, fps=8)
        with av.open(str(path)) as container:
            decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == video.frames.shape
    assert np.abs(decoded.astype(int) - video.frames).mean() < 6  # H.264 at CRF 18 is lossy
    with pytest.raises(ValueError, match="even"):
        write_mp4(Path("unused.mp4"), video.frames[:, :47], fps=8)
