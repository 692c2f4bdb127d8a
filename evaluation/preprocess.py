"""Per-sample preprocessing protocols, each a named, described function (the description is part
of every metric id that uses it).

"clean" is clean-fid's resizer, called from clean-fid itself so it stays bit-identical: PIL
bicubic on float32 ('F' mode) per channel, no quantization after resizing, clipped to [0, 255]
(Parmar et al., CVPR 2022). The extractor then maps [0, 255] to [-1, 1] as (x - 128) / 128.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from evaluation.errors import EvaluationError

INCEPTION_SIZE = 299
CLIP_SIZE = 224
LANDSCAPE_SIZE = 128


@dataclass(frozen=True)
class Preprocess:
    """A named sample -> tensor function; ``description`` records how it resizes and scales."""

    name: str
    description: dict[str, Any]
    fn: Callable[[np.ndarray], torch.Tensor] = field(compare=False, repr=False)

    def __call__(self, sample: np.ndarray) -> torch.Tensor:
        return self.fn(sample)


@cache
def _clean_resizer() -> Callable[[np.ndarray], np.ndarray]:
    from cleanfid.resize import make_resizer

    return make_resizer("PIL", False, "bicubic", (INCEPTION_SIZE, INCEPTION_SIZE))


def clean_resize(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [3, 299, 299] in [0, 255], clean-fid "clean" mode."""
    return torch.from_numpy(_clean_resizer()(image).transpose(2, 0, 1).copy())


@cache
def _clip_transform() -> Callable[[Image.Image], torch.Tensor]:
    from open_clip.transform import image_transform

    return image_transform(
        CLIP_SIZE, is_train=False, resize_mode="shortest", interpolation="bicubic"
    )


def clip_preprocess(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [3, 224, 224], open_clip's OpenAI eval transform."""
    return _clip_transform()(Image.fromarray(image))


def landscape_resize(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [3, 128, 128] in [0, 255] by area averaging (a 256-px block
    becomes the exact mean of each 2x2 pixel square)."""
    pixels = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
    return F.interpolate(pixels, size=(LANDSCAPE_SIZE, LANDSCAPE_SIZE), mode="area")[0]


def video_to_tensor(clip: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float32 [3, T, H, W] in [0, 255]; the I3D resizes and rescales
    internally (StyleGAN-V calls it with rescale=True, resize=True)."""
    return torch.from_numpy(np.ascontiguousarray(clip.transpose(3, 0, 1, 2))).float()


PREPROCESSORS: dict[str, Preprocess] = {
    p.name: p
    for p in (
        Preprocess(
            "clean-pil-bicubic-299",
            {
                "library": "PIL (via cleanfid.resize.make_resizer)",
                "filter": "bicubic",
                "mode": "float32 per channel ('F')",
                "antialias": "PIL default (support scales with the downsampling factor)",
                "quantize_after_resize": False,
                "size": [INCEPTION_SIZE, INCEPTION_SIZE],
                "crop": "none (aspect ratio not kept)",
                "value_range": "[0, 255] -> (x - 128) / 128 in the extractor",
            },
            clean_resize,
        ),
        Preprocess(
            "openai-clip-224",
            {
                "library": "open_clip.transform.image_transform (torchvision on PIL)",
                "filter": "bicubic",
                "resize": "shortest side to 224, then center crop 224x224",
                "value_range": "[0, 1] then OpenAI CLIP mean/std normalisation",
            },
            clip_preprocess,
        ),
        Preprocess(
            "landscape-area-128",
            {
                "library": "torch.nn.functional.interpolate",
                "filter": "area (box average; exact 2x2 mean for a 256-px block)",
                "size": [LANDSCAPE_SIZE, LANDSCAPE_SIZE],
                "crop": "none (aspect ratio not kept)",
                "value_range": "[0, 255] -> x / 127.5 - 1 in the extractor",
            },
            landscape_resize,
        ),
        Preprocess(
            "stylegan-v-i3d-input",
            {
                "layout": "[3, T, H, W] float32 in [0, 255]",
                "resize": "inside the extractor: bilinear to 224x224 per frame",
                "value_range": "inside the extractor: [0, 255] -> [-1, 1]",
            },
            video_to_tensor,
        ),
    )
}


def get_preprocess(name: str) -> Preprocess:
    """The registered preprocessing called ``name``."""
    if name not in PREPROCESSORS:
        raise EvaluationError(f"unknown preprocessing {name!r}; known: {sorted(PREPROCESSORS)}")
    return PREPROCESSORS[name]
