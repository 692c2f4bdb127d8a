"""Validated, content-hashed sample sets: images (files or arrays) and video clips.

Every set is checked before any feature is computed: non-empty, one size, RGB uint8. A set is
hashed item by item (file bytes, or shape + pixel bytes for arrays), which keys the feature cache
and gives the manifest hash recorded with results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from evaluation.errors import EvaluationError
from nuwa.io import sha256_file

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif"}


def _array_hash(array: np.ndarray) -> str:
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def _files_in(folder: Path, suffixes: set[str]) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    if not files:
        raise EvaluationError(f"folder {folder} contains no files with suffix {sorted(suffixes)}")
    return files


def _check_rgb_array(array: np.ndarray, where: str, ndim: int) -> np.ndarray:
    if array.dtype != np.uint8:
        raise EvaluationError(
            f"{where} has dtype {array.dtype}; expected uint8 RGB (quantize with rounding first)"
        )
    if array.ndim != ndim or array.shape[-1] != 3:
        layout = "[H, W, 3]" if ndim == 3 else "[T, H, W, 3]"
        raise EvaluationError(f"{where} has shape {array.shape}; expected {layout} RGB")
    return array


class ImageSet(Sequence):
    """An ordered, non-empty set of same-size RGB uint8 images; items load as [H, W, 3] arrays."""

    def __init__(self, items: Sequence[Path | np.ndarray]) -> None:
        if len(items) == 0:
            raise EvaluationError("the image set is empty")
        self.items = list(items)
        sizes: dict[tuple[int, int], int] = {}
        for index, item in enumerate(self.items):
            if isinstance(item, Path):
                with Image.open(item) as image:  # reads the header only
                    if image.mode != "RGB":
                        raise EvaluationError(
                            f"image {item} has mode {image.mode!r}; every image must be RGB "
                            "(convert it explicitly, e.g. with PIL .convert('RGB'))"
                        )
                    size = (image.height, image.width)
            else:
                size = _check_rgb_array(item, f"image #{index}", 3).shape[:2]
            sizes.setdefault(size, index)
            if len(sizes) > 1:
                (h0, w0), (h1, w1) = list(sizes)[:2]
                raise EvaluationError(
                    f"mixed image sizes: item #{sizes[(h1, w1)]} is {h1}x{w1} (HxW) but item "
                    f"#{sizes[(h0, w0)]} is {h0}x{w0}; a set must have one size"
                )
        self.height, self.width = next(iter(sizes))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        """Image ``index`` as uint8 [H, W, 3]."""
        item = self.items[index]
        if isinstance(item, np.ndarray):
            return item
        with Image.open(item) as image:
            return np.asarray(image)

    def item_hash(self, index: int) -> str:
        """Content hash of item ``index`` (file bytes, or shape + pixels for arrays)."""
        item = self.items[index]
        return sha256_file(item) if isinstance(item, Path) else _array_hash(item)


def as_image_set(images: Any) -> ImageSet:
    """Accept a folder, a list of paths / uint8 [H, W, 3] arrays / PIL images, a uint8 array
    [N, H, W, 3], or a uint8 tensor [N, 3, H, W] (torchmetrics layout), and validate it."""
    if isinstance(images, ImageSet):
        return images
    if isinstance(images, (str, Path)):
        folder = Path(images)
        if not folder.is_dir():
            raise EvaluationError(f"{folder} is not a folder of images")
        return ImageSet(_files_in(folder, IMAGE_SUFFIXES))
    if isinstance(images, torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise EvaluationError(
                f"image tensor must be uint8 [N, 3, H, W]; got {images.dtype} {tuple(images.shape)}"
            )
        images = images.permute(0, 2, 3, 1).cpu().numpy()
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return ImageSet(list(images))
    items: list[Path | np.ndarray] = []
    for item in images:
        if isinstance(item, (str, Path)):
            items.append(Path(item))
        elif isinstance(item, Image.Image):
            if item.mode != "RGB":
                raise EvaluationError(f"PIL image has mode {item.mode!r}; convert it to RGB first")
            items.append(np.asarray(item))
        else:
            items.append(np.asarray(item))
    return ImageSet(items)


def read_video(path: Path) -> np.ndarray:
    """All frames of a video file as uint8 [T, H, W, 3] (decoded with PyAV)."""
    import av  # optional dependency (the "video" extra)

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if not frames:
        raise EvaluationError(f"video {path} has no decodable frames")
    return np.stack(frames)


class ClipSet(Sequence):
    """An ordered, non-empty set of RGB uint8 video clips, items load as [T, H, W, 3]."""

    def __init__(self, items: Sequence[Path | np.ndarray]) -> None:
        if len(items) == 0:
            raise EvaluationError("the clip set is empty")
        self.items = list(items)
        sizes = set()
        for index, item in enumerate(self.items):
            if isinstance(item, np.ndarray):
                sizes.add(_check_rgb_array(item, f"clip #{index}", 4).shape[1:3])
        if len(sizes) > 1:
            raise EvaluationError(
                f"mixed clip frame sizes {sorted(sizes)}; a set must have one size"
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        """Clip ``index`` as uint8 [T, H, W, 3]."""
        item = self.items[index]
        return item if isinstance(item, np.ndarray) else read_video(item)

    def item_hash(self, index: int) -> str:
        """Content hash of clip ``index``."""
        item = self.items[index]
        return sha256_file(item) if isinstance(item, Path) else _array_hash(item)


def as_clip_set(clips: Any) -> ClipSet:
    """Accept a folder of video files, a list of paths or uint8 [T, H, W, 3] arrays, or a uint8
    array [N, T, H, W, 3]."""
    if isinstance(clips, ClipSet):
        return clips
    if isinstance(clips, (str, Path)):
        folder = Path(clips)
        if not folder.is_dir():
            raise EvaluationError(f"{folder} is not a folder of videos")
        return ClipSet(_files_in(folder, VIDEO_SUFFIXES))
    if isinstance(clips, np.ndarray) and clips.ndim == 5:
        return ClipSet(list(clips))
    return ClipSet([Path(c) if isinstance(c, (str, Path)) else np.asarray(c) for c in clips])
