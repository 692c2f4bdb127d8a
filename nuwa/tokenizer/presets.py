"""Tokenizer presets: architecture, loss and optimisation, read from nuwa/conf/tokenizer/*.yaml.

The YAML files are the single source of the preset values; hydra composes them for
``nuwa-train`` and :func:`load_preset` reads the same files without hydra, so models, tests and
benchmarks build a preset with ``build_vqgan("tiny")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nuwa.tokenizer.losses import VQLossConfig
from nuwa.tokenizer.vqgan import VQGAN, VQGANConfig

PRESET_DIR = Path(__file__).resolve().parent.parent / "conf" / "tokenizer"


@dataclass
class TokenizerOptimConfig:
    steps: int = 1000
    batch_size: int = 8
    crop: int = 256  # px side of the random training crops (the model is fully convolutional)
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.9])
    grad_clip: float = 1.0
    log_every: int = 25
    ckpt_every: int = 200  # steps between resumable checkpoints
    grid_every: int = 200  # steps between reconstruction-grid PNGs
    # "all" trains every part; "decoder" freezes the encoder and codebook of the `init=` VQGAN,
    # so its tokens (and any transformer trained on them) stay valid while the decoder improves.
    train: str = "all"
    # PG-VQGAN only: frames per training clip; every frame after the first is guided by the
    # decode of the one before it, as at inference, so the guide learns not to compound errors
    pg_clip_frames: int = 3


@dataclass
class TokenizerPreset:
    name: str = "???"
    model: VQGANConfig = field(default_factory=VQGANConfig)
    loss: VQLossConfig = field(default_factory=VQLossConfig)
    optim: TokenizerOptimConfig = field(default_factory=TokenizerOptimConfig)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> TokenizerPreset:
    """The preset ``name`` as a typed dataclass (ValueError naming the known ones if unknown)."""
    merged = OmegaConf.merge(OmegaConf.structured(TokenizerPreset), preset_values(name))
    return OmegaConf.to_object(merged)


def preset_values(name: str) -> DictConfig:
    """The values of ``name``.yaml over those of the presets its defaults list names, as hydra
    composes them (``schema`` and ``_self_`` are hydra's and add no values)."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown tokenizer preset {name!r}; known: {', '.join(preset_names())}")
    values = OmegaConf.load(path)
    parents = [d for d in values.pop("defaults", []) if d not in ("schema", "_self_")]
    return OmegaConf.merge(*(preset_values(parent) for parent in parents), values)


def build_vqgan(name: str) -> VQGAN:
    """A freshly initialised VQGAN of preset ``name``."""
    return VQGAN(load_preset(name).model)
