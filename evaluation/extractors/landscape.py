"""The landscape feature network: a small CNN the project trains on procedural-landscapes-v1.

Inception features from a random init cannot see layout (an upside-down set barely moves their
FID, mild noise moves it 100x). Domain metrics use a network trained on the domain, as FVD uses
I3D trained on Kinetics. This one is supervised with the scene parameters the generator knows
(time of day, cloud cover, ridge kind and count, ground, horizon row), with a coarse map of what
covers each cell of the view (sky, cloud, ridge, ground), so its features say *where* things
are, not only what is there, and with each cell's detail statistics (Laplacian energy and
contrast of its grey levels), so they also see how sharp it is: trained on scene labels alone, a
prototype's FID barely moved under an 8-px blur (1.3x its floor at n = 128).
Training: `python -m evaluation.landscape_train`.

Input: one 256x256 Block-FID block (or any image, resized by area averaging) at 128x128.
Outputs:
- "layout" [B, 64]: the predicted cover map, log-probabilities of sky, cloud, ridge and ground
  in each cell of a 4x4 grid. The default for FID, Block-FID and KID: keeping the grid is what
  lets the distance see a flipped, half-swapped or band-shuffled picture (global pooling loses
  it). Chosen over "cells" by the disturbance battery
  (benchmarks/diagnostics/metric_sanity.py, n = 128):
  both pass every full level by at least 13x their floor except the half-swap, where "cells"
  reached 8.0x and "layout" 13.7x.
- "cells" [B, 256]: the 4x4 grid of 16-d cell embeddings that feed the cover and detail heads.
- "attributes" [B, 15]: logits of the five caption attributes (3 classes each, in the order of
  ATTRIBUTES), for offline text alignment.
- "horizon" [B, 1]: the predicted horizon row as a fraction of the view's height.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nuwa.checkpoint import load_checkpoint
from nuwa.data.landscapes import CLOUD_COVERS, GROUNDS, RIDGE_KINDS, TIMES_OF_DAY

INPUT_SIZE = 128
# Caption attributes and their classes, in head order (n_ridges classes: 2, 3, 4 ranges).
ATTRIBUTES: dict[str, tuple] = {
    "time_of_day": TIMES_OF_DAY,
    "cloud_cover": CLOUD_COVERS,
    "n_ridges": (2, 3, 4),
    "ridge_kind": RIDGE_KINDS,
    "ground": GROUNDS,
}
COVER_CLASSES = ("sky", "cloud", "ridge", "ground")
# Of each cell's grey levels: Laplacian energy at the input scale and at half of it, contrast.
DETAIL_STATISTICS = ("log1p mean |laplacian|", "log1p mean |laplacian| at 1/2", "log1p std")
CHECKPOINT_KIND = "landscape_net"


@dataclass(frozen=True)
class LandscapeNetConfig:
    """Architecture; stored in the weights file's metadata and in the extractor's provenance."""

    widths: tuple[int, ...] = (32, 64, 128, 128)
    grid: int = 4  # cells per side of the layout grid
    cell_dim: int = 16  # embedding size of one cell
    hidden: int = 128  # width of the attribute head

    def to_json(self) -> dict:
        return asdict(self)


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    """Halve the resolution: strided conv, then a second conv (GroupNorm + SiLU after each)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
        nn.GroupNorm(8, c_out),
        nn.SiLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.GroupNorm(8, c_out),
        nn.SiLU(),
    )


class LandscapeNet(nn.Module):
    """uint8-range images -> cover map, cell embeddings, caption-attribute logits, horizon row."""

    def __init__(self, config: LandscapeNetConfig = LandscapeNetConfig()) -> None:
        super().__init__()
        self.config = config
        widths = (3, *config.widths)
        self.trunk = nn.Sequential(*map(_stage, widths[:-1], widths[1:]))
        self.cell_embed = nn.Conv2d(widths[-1], config.cell_dim, 1)
        self.cover_head = nn.Conv2d(config.cell_dim, len(COVER_CLASSES), 1)
        self.detail_head = nn.Conv2d(config.cell_dim, len(DETAIL_STATISTICS), 1)
        n_attributes = sum(len(classes) for classes in ATTRIBUTES.values())
        self.global_head = nn.Sequential(
            nn.Linear(config.cell_dim * config.grid**2, config.hidden),
            nn.SiLU(),
            nn.Linear(config.hidden, n_attributes + 1),
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: float32 [B, 3, 128, 128] in [0, 255] -> {"layout": [B, 4 * grid²] cover
        log-probabilities, "cells": [B, grid² * cell_dim], "cover": [B, 4, grid, grid] logits,
        "detail": [B, 3, grid, grid], "attributes": [B, 15] logits, "horizon": [B, 1]}."""
        hidden = self.trunk(x / 127.5 - 1.0)
        cells = self.cell_embed(F.adaptive_avg_pool2d(hidden, self.config.grid))
        head = self.global_head(cells.flatten(1))
        cover = self.cover_head(F.silu(cells))
        return {
            "layout": F.log_softmax(cover, dim=1).flatten(1),
            "cells": cells.flatten(1),
            "cover": cover,
            "detail": self.detail_head(F.silu(cells)),
            "attributes": head[:, :-1],
            "horizon": head[:, -1:],
        }


def detail_statistics(images: torch.Tensor, grid: int) -> torch.Tensor:
    """float32 [B, 3, S, S] in [0, 255] -> [B, 3, grid, grid]: per cell, log1p of the mean
    absolute Laplacian of the grey levels at full and half resolution, and of their standard
    deviation (the DETAIL_STATISTICS targets)."""
    grey = images.mean(1, keepdim=True)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[None, None]
    cell = images.shape[-1] // grid
    energies = []
    for scale in (grey, F.avg_pool2d(grey, 2)):
        laplacian = F.conv2d(F.pad(scale, (1, 1, 1, 1), mode="replicate"), kernel)
        energies.append(F.adaptive_avg_pool2d(laplacian.abs(), grid))
    variance = F.avg_pool2d(grey**2, cell) - F.avg_pool2d(grey, cell) ** 2
    return torch.log1p(torch.cat([*energies, variance.clamp(min=0).sqrt()], 1))


def attribute_logits(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split [B, 15] attribute logits into {attribute: [B, 3]} in ATTRIBUTES order."""
    sizes = [len(classes) for classes in ATTRIBUTES.values()]
    return dict(zip(ATTRIBUTES, logits.split(sizes, dim=1), strict=True))


def load_landscape_net(path) -> LandscapeNet:
    """The network stored at ``path`` by ``evaluation.landscape_train`` (config in metadata)."""
    tensors, metadata = load_checkpoint(path, expected_kind=CHECKPOINT_KIND)
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in metadata["config"].items()}
    net = LandscapeNet(LandscapeNetConfig(**config))
    net.load_state_dict(tensors)
    return net.eval().requires_grad_(False)


def build_landscape_net(spec) -> nn.Module:
    """Load the packaged weights of ``spec`` (hash-checked before loading)."""
    return load_landscape_net(spec.weights.resolve())
