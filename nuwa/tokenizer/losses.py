"""VQGAN training losses (taming's VQLPIPSWithDiscriminator, untangled).

Generator: L1 (+ L2) reconstruction, LPIPS when its weights are on disk, the commitment term
from the quantizer, and a hinge PatchGAN term scaled by the adaptive weight
||grad rec|| / ||grad gan|| at the decoder's last layer, switched on at ``disc_start``.
Discriminator: hinge loss on real vs reconstructed tiles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VQLossConfig:
    l1_weight: float = 1.0
    l2_weight: float = 0.0
    perceptual_weight: float = 1.0  # applied only if LPIPS weights exist locally
    codebook_weight: float = 1.0  # scales the quantizer's beta-weighted commitment loss
    disc_weight: float = 0.8
    disc_start: int = 0  # generator step at which the GAN terms switch on
    disc_layers: int = 3
    disc_ch: int = 64
    disc_lr_mult: float = 1.0
    # PG-VQGAN only: L1 between the decoded and the true frame-to-frame change (the flicker)
    temporal_weight: float = 1.0


class PatchDiscriminator(nn.Module):
    """pix2pix PatchGAN: [B, C, H, W] -> logits [B, 1, ~H/2**layers, ~W/2**layers]."""

    def __init__(self, in_channels: int = 3, ch: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ch, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ch * prev, ch * mult, 4, stride, 1, bias=False),
                nn.BatchNorm2d(ch * mult),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(ch * mult, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def adaptive_weight(
    rec_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor, scale: float
) -> torch.Tensor:
    """Balance the GAN gradient against the reconstruction gradient at ``last_layer``."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = rec_grad.norm() / (g_grad.norm() + 1e-4)
    return weight.clamp(0.0, 1e4).detach() * scale


LPIPS_BACKBONE = "vgg16-397923af.pth"  # torchvision's ImageNet VGG16, which LPIPS builds on


def load_perceptual() -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None, str]:
    """LPIPS(VGG) as a loss [B, C, H, W] x2 in [-1, 1] -> scalar, or None; plus what was used.

    LPIPS needs torchvision's VGG16 weights in the torch hub cache (torchmetrics ships only the
    linear heads). They are never downloaded: without them perceptual loss is off.
    """
    backbone = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONE
    if not backbone.is_file():
        return None, f"off (no {backbone})"
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    net = LearnedPerceptualImagePatchSimilarity(net_type="vgg").net.eval().requires_grad_(False)
    return (lambda x, y: net(x, y).mean()), f"lpips-vgg (torchmetrics, {backbone})"


@dataclass
class GeneratorLoss:
    total: torch.Tensor
    logs: dict[str, float]


def generator_loss(
    cfg: VQLossConfig,
    x: torch.Tensor,
    recon: torch.Tensor,
    commit_loss: torch.Tensor,
    disc: PatchDiscriminator,
    last_layer: torch.Tensor,
    step: int,
    perceptual: Callable | None,
) -> GeneratorLoss:
    """Total VQGAN generator loss for pixels ``x`` and ``recon`` [B, C, H, W] at ``step``."""
    rec = cfg.l1_weight * (x - recon).abs().mean() + cfg.l2_weight * F.mse_loss(recon, x)
    if perceptual is not None and cfg.perceptual_weight > 0:
        rec = rec + cfg.perceptual_weight * perceptual(recon, x)
    total = rec + cfg.codebook_weight * commit_loss
    logs = {"rec": rec.item(), "commit": commit_loss.item()}
    if step >= cfg.disc_start and cfg.disc_weight > 0:
        g_loss = -disc(recon).mean()
        d_weight = adaptive_weight(rec, g_loss, last_layer, cfg.disc_weight)
        total = total + d_weight * g_loss
        logs |= {"g": g_loss.item(), "d_weight": d_weight.item()}
    logs["loss"] = total.item()
    return GeneratorLoss(total, logs)


def discriminator_loss(
    disc: PatchDiscriminator, x: torch.Tensor, recon: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """Hinge loss of ``disc`` on real ``x`` and detached ``recon`` [B, C, H, W]."""
    logits_real, logits_fake = disc(x), disc(recon.detach())
    loss = hinge_d_loss(logits_real, logits_fake)
    return loss, {
        "d": loss.item(),
        "logits_real": logits_real.mean().item(),
        "logits_fake": logits_fake.mean().item(),
    }
