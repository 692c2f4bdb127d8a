"""Outpainting geometry: where the input sits in the grown canvas and what is generated.

A canvas grows by ``amount_px`` on one side (right, left, down, up) or on every side ("all"). The
generated part is a band (one side) or a ring ("all"); Block-FID on outpainting measures only it.
:func:`paste_input` puts the user's own pixels back into the given region of a decoded canvas.
"""

from __future__ import annotations

import numpy as np

BLEND_PX = 16
"""Width of the band, inside the given region, over which the input fades into the decode."""
GROWTH = {"right": (0, 1), "left": (0, 1), "down": (1, 0), "up": (1, 0), "all": (2, 2)}
"""Direction -> how many times ``amount_px`` is added to (height, width)."""
DIRECTIONS = tuple(GROWTH)
"""Outpainting directions; ``"all"`` grows every side and generates in a spiral."""
SIDES = DIRECTIONS[:4]
"""The one-side directions (paper Table 3's four outpainting tasks)."""


def _growth(direction: str) -> tuple[int, int]:
    if direction not in GROWTH:
        raise ValueError(f"unknown direction {direction!r}; choose from {', '.join(DIRECTIONS)}")
    return GROWTH[direction]


def given_region(direction: str, in_h: int, in_w: int, amount_px: int) -> tuple[int, int, int, int]:
    """Pixel box ``(top, left, height, width)`` of the input inside the outpainted canvas."""
    _growth(direction)
    top = amount_px if direction in ("up", "all") else 0
    left = amount_px if direction in ("left", "all") else 0
    return top, left, in_h, in_w


def canvas_size(direction: str, in_h: int, in_w: int, amount_px: int) -> tuple[int, int]:
    """``(height, width)`` of the canvas: the input grown by ``amount_px`` on that side (or all)."""
    grow_h, grow_w = _growth(direction)
    return in_h + grow_h * amount_px, in_w + grow_w * amount_px


def generated_region(
    direction: str, in_h: int, in_w: int, amount_px: int
) -> tuple[int, int, int, int]:
    """Pixel box ``(top, left, height, width)`` of the generated part of a one-side outpainting.

    For ``"all"`` the generated part is a ring, not a box: use :func:`generated_mask`.
    """
    if direction == "all":
        raise ValueError("direction 'all' generates a ring, not a rectangle: use generated_mask")
    height, width = canvas_size(direction, in_h, in_w, amount_px)
    return {
        "right": (0, in_w, height, amount_px),
        "left": (0, 0, height, amount_px),
        "down": (in_h, 0, amount_px, width),
        "up": (0, 0, amount_px, width),
    }[direction]


def generated_mask(direction: str, in_h: int, in_w: int, amount_px: int) -> np.ndarray:
    """bool ``[H, W]`` over the outpainted canvas: True where pixels were generated."""
    mask = np.ones(canvas_size(direction, in_h, in_w, amount_px), dtype=bool)
    top, left, h, w = given_region(direction, in_h, in_w, amount_px)
    mask[top : top + h, left : left + w] = False
    return mask


def outpaint_amount(direction: str, in_h: int, in_w: int, height: int, width: int) -> int:
    """The ``amount_px`` that grows an ``in_h x in_w`` input to a ``height x width`` canvas.

    Raises ValueError when the input is bigger than the canvas or the sizes do not fit the
    direction (the other side must stay; ``"all"`` grows both sides by the same amount).
    """
    grow_h, grow_w = _growth(direction)
    if in_h > height or in_w > width:
        raise ValueError(
            f"the input image ({in_w}x{in_h} px) is bigger than the requested canvas "
            f"({width}x{height} px)"
        )
    amount = (width - in_w) // grow_w if grow_w else (height - in_h) // grow_h
    if amount <= 0 or canvas_size(direction, in_h, in_w, amount) != (height, width):
        want_h, want_w = canvas_size(direction, in_h, in_w, max(amount, 1))
        raise ValueError(
            f"a {width}x{height} canvas does not fit outpainting {direction!r} from "
            f"{in_w}x{in_h} px; e.g. {want_w}x{want_h} does"
        )
    return amount


def paste_input(
    canvas: np.ndarray, image: np.ndarray, direction: str, amount_px: int, blend_px: int = BLEND_PX
) -> np.ndarray:
    """The decoded canvas uint8 ``[H, W, 3]`` with ``image`` uint8 ``[h, w, 3]`` in its given
    region: the input's own pixels, except within ``blend_px`` of a generated side, where the
    input's weight rises linearly from the decode at the boundary to 1 (a tokenizer's
    reconstruction is never exact, so a hard paste would leave a step at the boundary)."""
    in_h, in_w = image.shape[:2]
    top, left, _, _ = given_region(direction, in_h, in_w, amount_px)
    height, width = canvas.shape[:2]
    rows, cols = np.arange(in_h)[:, None], np.arange(in_w)[None, :]
    distance = np.full((in_h, in_w), np.inf)
    if top > 0:
        distance = np.minimum(distance, rows + 0.5)
    if top + in_h < height:
        distance = np.minimum(distance, in_h - rows - 0.5)
    if left > 0:
        distance = np.minimum(distance, cols + 0.5)
    if left + in_w < width:
        distance = np.minimum(distance, in_w - cols - 0.5)
    weight = np.clip(distance / blend_px, 0.0, 1.0)[..., None] if blend_px > 0 else 1.0
    out = canvas.copy()
    decoded = canvas[top : top + in_h, left : left + in_w].astype(np.float64)
    mixed = weight * image.astype(np.float64) + (1.0 - weight) * decoded
    out[top : top + in_h, left : left + in_w] = np.rint(mixed).astype(np.uint8)
    return out
