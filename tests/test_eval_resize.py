"""The "clean" preprocessing is clean-fid's resizer, bit for bit, on noise and landscapes."""

from __future__ import annotations

import numpy as np
import pytest
from cleanfid.resize import build_resizer

from evaluation.preprocess import get_preprocess
from nuwa.data.landscapes import render_landscape


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8),
        np.random.default_rng(1).integers(0, 256, (300, 517, 3), dtype=np.uint8),
        render_landscape(3, 512, 256).image,
    ],
    ids=["noise-256", "noise-300x517", "landscape-256x512"],
)
def test_clean_resize_is_bit_identical_to_cleanfid(image: np.ndarray) -> None:
    ours = get_preprocess("clean-pil-bicubic-299")(image)
    reference = build_resizer("clean")(image)  # [299, 299, 3] float32
    assert ours.shape == (3, 299, 299)
    assert ours.dtype == __import__("torch").float32
    np.testing.assert_array_equal(ours.numpy().transpose(1, 2, 0), reference)
