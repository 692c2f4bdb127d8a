"""CLIP ViT-B/32 through open_clip: image embeddings for CLIP-SIM and CLIP-FID, text embeddings
for CLIP-SIM. OpenAI's weights load from a hash-checked local file; the surrogate is the same
architecture with open_clip's own initialisation under a fixed seed (never downloaded)."""

from __future__ import annotations

import torch
from torch import nn

OPEN_CLIP_NAME = "ViT-B-32-quickgelu"  # OpenAI's ViT-B/32 uses QuickGELU


class CLIPFeatures(nn.Module):
    """Wraps an open_clip model and its tokenizer."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        import open_clip

        self.model = model.eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(OPEN_CLIP_NAME)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: normalised [B, 3, 224, 224] -> {"image_embed": [B, 512]} (not L2-normalised)."""
        return {"image_embed": self.model.encode_image(x)}

    @torch.inference_mode()
    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """Captions -> [B, 512] text embeddings (BPE-tokenised, truncated to 77 tokens)."""
        device = next(self.model.parameters()).device
        return self.model.encode_text(self.tokenizer(texts).to(device))


def build_openai(spec) -> nn.Module:
    """OpenAI's ViT-B-32.pt (a TorchScript archive; hash-checked before open_clip loads it)."""
    import open_clip

    path = spec.weights.resolve()
    model = open_clip.load_openai_model(str(path), precision="fp32", device="cpu")
    return CLIPFeatures(model)


def build_surrogate(spec) -> nn.Module:
    """ViT-B/32 with open_clip's initialisation drawn under ``spec.surrogate_seed``."""
    import open_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.surrogate_seed)
        model = open_clip.create_model(OPEN_CLIP_NAME, pretrained=None, device="cpu")
    return CLIPFeatures(model)
