"""Procedural videos: a camera window panning across a wide, tileable landscape panorama.

The camera translates to the right, so content moves left with parallax: each layer moves at
`speed / depth` px per frame (the bottom ground row has depth 1 and moves at `speed`; the sky is
infinitely far and stays still) while the clouds also drift with the wind. Every future frame
is known exactly, which gives long-video prediction and FVD smoke tests a ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nuwa.data.landscapes import SceneParams, caption_for, composite, render_layers
from nuwa.io import atomic_open


@dataclass(frozen=True)
class PanParams:
    """Camera motion: `speed` px/frame at depth 1, `cloud_drift` px/frame of wind, the width of
    the periodic panorama the window slides over, and each ridge's speed (far to near)."""

    speed: float
    cloud_drift: float
    panorama_width: int
    ridge_speeds: tuple[float, ...]


@dataclass(frozen=True)
class PanVideo:
    """`frames` uint8 [F, H, W, 3], the scene parameters, a caption, and the camera motion."""

    frames: np.ndarray
    params: SceneParams
    caption: str
    pan: PanParams


def render_pan_video(
    seed: int,
    width: int,
    height: int,
    frames: int,
    speed: float = 4.0,
    cloud_drift: float = 0.5,
    panorama_width: int | None = None,
) -> PanVideo:
    """Render `frames` frames [F, height, width, 3] of the scene for `seed`, panning right.

    The panorama defaults to wide enough that the nearest layer never wraps around within the
    clip (at least 4x the window).
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    panorama_width = panorama_width or max(4 * width, width + math.ceil(frames * speed) + 1)
    if panorama_width < width:
        raise ValueError(f"panorama_width {panorama_width} is narrower than the window {width}")
    params, layers = render_layers(seed, panorama_width, height)
    ridge_speeds = tuple(speed / depth for depth in params.ridge_depths)
    ground_speeds = speed / layers.ground_depth
    video = np.stack(
        [
            composite(
                layers,
                cloud_shift=t * cloud_drift,
                ridge_shifts=tuple(t * s for s in ridge_speeds),
                ground_shifts=t * ground_speeds,
                width=width,
            )
            for t in range(frames)
        ]
    )
    pan = PanParams(float(speed), float(cloud_drift), panorama_width, ridge_speeds)
    return PanVideo(video, params, f"a camera panning right across {caption_for(params)}", pan)


def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 8) -> None:
    """Encode uint8 [F, H, W, 3] frames as H.264 MP4 (yuv420p, CRF 18), written atomically.

    Lossy: use PNG frames where exact pixels matter (e.g. as prediction targets).
    """
    import av

    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"H.264 (yuv420p) needs even width and height, got {width}x{height}")
    with atomic_open(path, "wb") as f, av.open(f, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
