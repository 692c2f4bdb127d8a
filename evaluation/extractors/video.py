"""Video feature extractors for FVD: StyleGAN-V's TorchScript I3D (the tf.hub Kinetics-400
weights) and a surrogate for machines without it (torchvision's R3D-18 architecture, seeded
init). The surrogate is a different network: its FVD values are never comparable to I3D's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.video import r3d_18

from evaluation.extractors.seeded_init import seeded_he_init

R3D_SIZE = 112  # R3D-18's Kinetics training size; 4x cheaper on CPU than the I3D's 224


class StyleGANVI3D(nn.Module):
    """StyleGAN-V's `fvd2048_16f` detector call: rescale=True, resize=True, return_features=True."""

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.scripted = scripted.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: float32 [B, 3, T, H, W] in [0, 255] -> {"logits400": [B, 400]} (pre-softmax)."""
        # Keyword call: positional `x` breaks the TorchScript signature under torch 2.x.
        logits = self.scripted(x=x, rescale=True, resize=True, return_features=True)
        return {"logits400": logits}


def build_i3d(spec) -> nn.Module:
    """Load `i3d_torchscript.pt` (hash-checked before `torch.jit.load` runs it)."""
    path = spec.weights.resolve()
    return StyleGANVI3D(torch.jit.load(str(path), map_location="cpu"))


class R3D18Features(nn.Module):
    """R3D-18 trunk; resizes frames bilinearly to 112² and maps [0, 255] to [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.net = r3d_18(weights=None).eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: float32 [B, 3, T, H, W] in [0, 255] -> {"pool512": [B, 512]}."""
        x = F.interpolate(
            x, size=(x.shape[2], R3D_SIZE, R3D_SIZE), mode="trilinear", align_corners=False
        )
        x = x / 127.5 - 1.0
        n = self.net
        x = n.layer4(n.layer3(n.layer2(n.layer1(n.stem(x)))))
        return {"pool512": torch.flatten(n.avgpool(x), 1)}


def build_r3d_surrogate(spec) -> nn.Module:
    """R3D-18 with weights drawn from ``spec.surrogate_seed``."""
    module = R3D18Features()
    seeded_he_init(module.net, spec.surrogate_seed)
    return module
