"""The text encoder: open_clip's CLIP text tower and its BPE tokenizer (shipped in the wheel).

Paper §2.5: texts become 77 token states that the vision decoder cross-attends to. We use the CLIP
ViT-B/32 text transformer (512 wide, 12 layers), as the paper's draft and HORIZON do. With local
pretrained weights (a safetensors file, SHA-256 checked) the tower is frozen; without them it is
trained from scratch with the model, and :attr:`TextEncoder.pretrained` records which. The CPU
presets use the same architecture at a smaller width so they train here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from open_clip.transformer import QuickGELU, TextTransformer
from safetensors.torch import load_file
from torch import nn

from nuwa.io import sha256_file

TEXT_LENGTH = 77


@dataclass
class TextConfig:
    """A CLIP-architecture text tower.

    Attributes:
        width, layers, heads: transformer size (ViT-B/32: 512, 12, 8).
        quick_gelu: True for OpenAI's original CLIP weights, False for LAION/open_clip ones.
        weights: local safetensors file of a CLIP model (text keys are picked out) or None.
        weights_sha256: the expected SHA-256 of ``weights``; required when ``weights`` is set.
    """

    width: int = 512
    layers: int = 12
    heads: int = 8
    quick_gelu: bool = False
    weights: str | None = None
    weights_sha256: str | None = None


def _clip_b32() -> TextConfig:
    cfg = open_clip.get_model_config("ViT-B-32")["text_cfg"]
    return TextConfig(width=cfg["width"], layers=cfg["layers"], heads=cfg["heads"])


TEXT_PRESETS = {
    "clip-vit-b-32": _clip_b32,
    "clip-small": lambda: TextConfig(width=64, layers=2, heads=2),
    "clip-tiny": lambda: TextConfig(width=32, layers=1, heads=2),
}


class TextTruncationWarning(UserWarning):
    """A text was longer than 77 CLIP tokens and was cut."""


_TOKENIZER = None


def tokenize(texts: str | list[str]) -> torch.Tensor:
    """CLIP BPE token ids ``[B, 77]`` (0-padded). Texts over 77 tokens are cut, with a warning."""
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = open_clip.get_tokenizer("ViT-B-32")
    texts = [texts] if isinstance(texts, str) else list(texts)
    for i, text in enumerate(texts):
        n = len(_TOKENIZER.encode(text)) + 2  # + start and end tokens
        if n > TEXT_LENGTH:
            warnings.warn(
                f"text {i} has {n} CLIP tokens; only the first {TEXT_LENGTH} are used",
                TextTruncationWarning,
                stacklevel=2,
            )
    return _TOKENIZER(texts)


class TextEncoder(nn.Module):
    """CLIP text tower: token ids ``[B, 77]`` -> token states ``[B, 77, width]`` and a key mask."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.width = cfg.width
        self.tower = TextTransformer(
            context_length=TEXT_LENGTH,
            width=cfg.width,
            heads=cfg.heads,
            layers=cfg.layers,
            output_dim=None,  # token states only; the pooled projection is unused
            act_layer=QuickGELU if cfg.quick_gelu else nn.GELU,
            output_tokens=True,
        )
        self.pretrained = cfg.weights is not None
        if self.pretrained:
            self._load(Path(cfg.weights), cfg.weights_sha256)
            self.requires_grad_(False)

    def _load(self, path: Path, sha256: str | None) -> None:
        if not path.is_file():
            raise FileNotFoundError(
                f"text encoder weights not found at {path}: put a CLIP ViT-B-32 "
                "open_clip_model.safetensors there, or set text_weights to null to train it"
            )
        if not sha256:
            raise ValueError(f"text encoder weights {path} given without weights_sha256")
        actual = sha256_file(path)
        if actual != sha256:
            raise ValueError(
                f"text encoder weights {path} have SHA-256 {actual}, expected {sha256}"
            )
        state = {}
        for key, value in load_file(str(path)).items():
            key = key.removeprefix("text.")
            if not key.startswith(("visual.", "logit_", "text_projection")):
                state[key] = value
        expected = {k: v.shape for k, v in self.tower.state_dict().items()}
        wrong = sorted(set(expected) ^ set(state)) + [
            k for k in expected.keys() & state.keys() if state[k].shape != expected[k]
        ]
        if wrong:
            raise ValueError(
                f"{path} is not a CLIP text tower of width {self.width} "
                f"and {self.cfg.layers} layers: {len(wrong)} tensors differ, e.g. {wrong[:3]}"
            )
        self.tower.load_state_dict(state)

    def train(self, mode: bool = True) -> TextEncoder:
        """A frozen (pretrained) tower always stays in eval mode."""
        return super().train(mode and not self.pretrained)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``ids [B, 77]`` -> ``(states [B, 77, width], keep [B, 77] bool: False at padding)``."""
        _, states = self.tower(ids)
        return states, ids != 0
