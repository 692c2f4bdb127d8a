"""Contact sheets: a grid of thumbnails with their captions, to eyeball a data set in one PNG."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nuwa.io import atomic_write_bytes

_FONT_SIZE = 12
_LINE = _FONT_SIZE + 3
_PAD = 4


def contact_sheet(
    images: Sequence[np.ndarray],
    captions: Sequence[str | None] | None = None,
    columns: int = 4,
    thumb_width: int = 256,
    caption_lines: int = 3,
) -> np.ndarray:
    """Lay out uint8 [H, W, 3] images (any sizes) in a grid -> uint8 [H', W', 3].

    Each thumbnail is `thumb_width` wide (aspect kept, Lanczos) with up to `caption_lines`
    wrapped lines of its caption underneath.
    """
    if not images:
        raise ValueError("a contact sheet needs at least one image")
    thumbs = []
    for image in images:
        height = max(1, round(image.shape[0] * thumb_width / image.shape[1]))
        thumb = Image.fromarray(image).resize((thumb_width, height), Image.Resampling.LANCZOS)
        thumbs.append(thumb)
    text_height = caption_lines * _LINE if captions is not None else 0
    cell_w = thumb_width + _PAD
    cell_h = max(t.height for t in thumbs) + text_height + _PAD
    rows = -(-len(thumbs) // columns)
    sheet = Image.new("RGB", (columns * cell_w + _PAD, rows * cell_h + _PAD), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=_FONT_SIZE)
    chars_per_line = max(8, int(thumb_width / (0.55 * _FONT_SIZE)))
    for i, thumb in enumerate(thumbs):
        x = _PAD + (i % columns) * cell_w
        y = _PAD + (i // columns) * cell_h
        sheet.paste(thumb, (x, y))
        if captions is not None and captions[i]:
            lines = textwrap.wrap(captions[i], chars_per_line)[:caption_lines]
            for k, line in enumerate(lines):
                draw.text((x, y + thumb.height + 1 + k * _LINE), line, (230, 230, 230), font)
    return np.asarray(sheet)


def write_contact_sheet(path: str | Path, images: Sequence[np.ndarray], **kwargs) -> None:
    """contact_sheet(...) written atomically as PNG to `path`."""
    buffer = io.BytesIO()
    Image.fromarray(contact_sheet(images, **kwargs)).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
