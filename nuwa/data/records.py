"""The common record every data source yields, and the one canonical image preprocessing.

Canonical preprocessing (stated in every report that uses real data): decode, convert to RGB,
resize with Lanczos so the shorter side equals the target size, centre-crop to a square. This is
how LHQ1024 was made from the originals and LHQ256 from LHQ1024, so an LHQ256 file passes
through unchanged at size 256. No JPEG re-encode happens anywhere.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nuwa.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class DataError(UserError, ValueError):
    """Bad input data. The message is one line naming the file and the fix; CLIs print only it."""


class ImageModeWarning(UserWarning):
    """An image was not RGB (grayscale, RGBA, palette, CMYK ...) and was converted."""


@dataclass(frozen=True)
class Record:
    """One example: `id` (e.g. "lhq_0001234", "proc_0000007"), `image` uint8 [H, W, 3], `text`."""

    id: str
    image: np.ndarray
    text: str | None = None


_announced_modes: set[str] = set()


def decode_image(source: str | os.PathLike | bytes, name: str | None = None) -> Image.Image:
    """Fully decode an image file (or its bytes) into RGB; `name` is used in error messages.

    Corrupt or truncated files raise DataError. A non-RGB image is converted (16-bit samples
    scaled to 8 bits, alpha dropped), with one ImageModeWarning per mode per process.
    """
    name = name or str(source)
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        image.load()  # decode now: a truncated file fails here, not halfway through a metric
    except FileNotFoundError:
        raise DataError(f"{name}: file not found; check the path, or restore the file") from None
    except IsADirectoryError:
        raise DataError(f"{name}: a folder, not an image file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(
            f"{name}: corrupt or truncated image ({err}); re-extract or re-download this file"
        ) from None
    mode = image.mode
    if mode.startswith("I"):  # 16-bit greyscale ("I;16", "I"): PIL's convert clips it at 255
        image = Image.fromarray(_to_8_bit(np.asarray(image)), mode="L")
    elif mode == "F":
        raise DataError(f"{name}: a floating-point image; save it as 8- or 16-bit PNG or JPEG")
    if image.mode != "RGB":
        if mode not in _announced_modes and mode != "P":
            _announced_modes.add(mode)
            dropped = " (alpha dropped)" if "A" in mode else ""
            warnings.warn(
                f"{name}: converted {mode} image to 8-bit RGB{dropped}; other {mode} images are "
                "converted without further notice",
                ImageModeWarning,
                stacklevel=2,
            )
        image = image.convert("RGB")
    return image


def _to_8_bit(values: np.ndarray) -> np.ndarray:
    """16-bit samples (0..65535) to 8-bit (0..255), rounding to the nearest level."""
    return np.clip(np.rint(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def preprocess(image: Image.Image, size: int | None, name: str) -> np.ndarray:
    """Canonical preprocessing of an RGB image to uint8 [size, size, 3] ([H, W, 3] if size=None).

    Lanczos-resize so the shorter side is `size`, then centre-crop. An image smaller than `size`
    raises DataError: up-sampling would silently change what a metric measures.
    """
    if size is None:
        return np.asarray(image, dtype=np.uint8)
    width, height = image.size
    if min(width, height) < size:
        raise DataError(
            f"{name}: image is {width}x{height}, smaller than the requested size {size}; "
            f"ask for --size {min(width, height)} or less, or remove this file"
        )
    if min(width, height) != size:
        scale = size / min(width, height)
        new = (max(size, round(width * scale)), max(size, round(height * scale)))
        image = image.resize(new, Image.Resampling.LANCZOS)
        width, height = new
    left, top = (width - size) // 2, (height - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8)


def load_image(source: str | Path | bytes, size: int | None, name: str | None = None) -> np.ndarray:
    """decode_image + preprocess: a file or bytes to uint8 [size, size, 3] (native if None)."""
    name = name or str(source)
    return preprocess(decode_image(source, name), size, name)
