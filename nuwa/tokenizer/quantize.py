"""Vector quantizer: vector-quantize-pytorch's EMA codebook behind a small, image-shaped API.

We use ``vector_quantize_pytorch.VectorQuantize`` (EMA updates with the cluster statistics reset
together with dead codes, optional l2-normalised low-dimensional codes, fp32 quantisation, DDP
sync) with the commitment beta on the encoder term, straight-through gradients (the paper's
estimator, no rotation trick), and dead-code restart from the current batch. Two traps of the
library are handled here: its ``accept_image_fmap`` path breaks ``get_output_from_indices`` when
``codebook_dim != dim`` (checked with 1.32.0), so we flatten to [B, N, D] ourselves; and its
distributed codebook sync must see the same collective calls on every rank (its GitHub issue
105), which holds because every rank quantises every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from vector_quantize_pytorch import VectorQuantize


@dataclass
class Quantized:
    """Output of :class:`VectorQuantizer` for a latent map of h x w."""

    z_q: torch.Tensor  # [B, D, h, w] quantised latents (straight-through in training)
    indices: torch.Tensor  # [B, h, w] int64 code ids
    commit_loss: torch.Tensor  # scalar: beta * ||z - sg(e)||^2
    usage: torch.Tensor  # scalar: fraction of the codebook used in this batch
    perplexity: torch.Tensor  # scalar: exp(entropy) of this batch's code histogram


class VectorQuantizer(nn.Module):
    def __init__(
        self,
        *,
        dim: int,
        codebook_size: int,
        codebook_dim: int,
        use_cosine: bool,
        ema_decay: float,
        beta: float,
        dead_code_threshold: float,
    ):
        super().__init__()
        self.codebook_size = codebook_size
        self.vq = VectorQuantize(
            dim=dim,
            codebook_size=codebook_size,
            codebook_dim=codebook_dim,
            use_cosine_sim=use_cosine,
            decay=ema_decay,
            commitment_weight=beta,
            threshold_ema_dead_code=dead_code_threshold,
            rotation_trick=False,
        )

    def forward(self, z: torch.Tensor) -> Quantized:
        """Quantise z [B, D, h, w]; in training mode this also updates the EMA codebook."""
        b, _, h, w = z.shape
        z_q, indices, commit_loss = self.vq(rearrange(z, "b d h w -> b (h w) d"))
        counts = torch.bincount(indices.flatten(), minlength=self.codebook_size).float()
        probs = counts / counts.sum()
        entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum()
        return Quantized(
            z_q=rearrange(z_q, "b (h w) d -> b d h w", h=h, w=w),
            indices=indices.reshape(b, h, w),
            commit_loss=commit_loss.sum(),
            usage=(counts > 0).float().mean(),
            perplexity=entropy.exp(),
        )

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code ids [B, h, w] -> latents [B, D, h, w] (what the decoder consumes)."""
        b, h, w = indices.shape
        z_q = self.vq.get_output_from_indices(indices.reshape(b, h * w))
        return rearrange(z_q, "b (h w) d -> b d h w", h=h, w=w)
