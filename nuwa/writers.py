"""Write generated images and videos: PNG, GIF and MP4, atomically (``nuwa.io``).

Images are uint8 ``[H, W, 3]``, videos uint8 ``[F, H, W, 3]``; the suffix picks the format.
PNG is lossless; GIF quantises each frame to a 256-colour palette; MP4 is H.264 (via ``av``,
``nuwa.data.video.write_mp4``), lossy. Use PNG where exact pixels matter.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from nuwa.io import atomic_write_bytes

IMAGE_SUFFIXES = (".png", ".gif")
VIDEO_SUFFIXES = (".gif", ".mp4")


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 ``[H, W, 3]`` image as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(_checked(image, 3))).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: int = 8) -> None:
    """Write uint8 ``[F, H, W, 3]`` frames (or one ``[H, W, 3]`` image) as a looping GIF."""
    frames = _checked(frames, 4) if np.asarray(frames).ndim == 4 else _checked(frames, 3)[None]
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
    )
    atomic_write_bytes(path, buffer.getvalue())


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int = 8) -> None:
    """Write uint8 ``[F, H, W, 3]`` frames as H.264 MP4 (needs PyAV: the ``video`` extra)."""
    try:
        import av  # noqa: F401
    except ImportError as err:
        raise ImportError("writing MP4 needs PyAV: pip install 'nuwa-infinity[video]'") from err
    from nuwa.data.video import write_mp4 as encode_mp4

    encode_mp4(path, _checked(frames, 4), fps=fps)


def write_output(path: str | os.PathLike, array: np.ndarray, fps: int = 8) -> None:
    """Write an image ``[H, W, 3]`` (.png / .gif) or a video ``[F, H, W, 3]`` (.gif / .mp4).

    Raises ValueError when the suffix does not suit the array.
    """
    suffix = Path(path).suffix.lower()
    video = np.asarray(array).ndim == 4
    allowed = VIDEO_SUFFIXES if video else IMAGE_SUFFIXES
    if suffix not in allowed:
        kind = "a video" if video else "an image"
        raise ValueError(f"cannot write {kind} to {path}: use one of {', '.join(allowed)}")
    if suffix == ".png":
        write_png(path, array)
    elif suffix == ".gif":
        write_gif(path, array, fps)
    else:
        write_mp4(path, array, fps)


def numbered(path: str | os.PathLike, index: int, count: int) -> Path:
    """``out.png`` for a single output, ``out_000.png``, ``out_001.png``, ... for several."""
    path = Path(path)
    return path if count == 1 else path.with_name(f"{path.stem}_{index:03d}{path.suffix}")


def _checked(array: np.ndarray, ndim: int) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim != ndim or array.shape[-1] != 3:
        want = "[H, W, 3]" if ndim == 3 else "[F, H, W, 3]"
        raise ValueError(f"expected uint8 {want}, got {array.dtype} {list(array.shape)}")
    return array
