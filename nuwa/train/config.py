"""Structured configs behind nuwa/conf/*.yaml, registered in hydra's ConfigStore.

Each config group's YAML names ``schema`` in its defaults, so hydra type-checks the values at
compose time. The root config (train.yaml) is plain YAML: a new stage adds its own groups
(e.g. ``model``) without touching the ones here.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from nuwa.tokenizer.presets import TokenizerPreset
from nuwa.train.recipe import Ablation, Recipe


@dataclass
class DataConfig:
    source: str = "procedural"  # procedural | pan_videos | any load_records source (a folder...)
    size: int = 256  # px side of the (square) training and held-out images
    train_items: int = 512  # images (or videos) rendered/loaded once; crops are drawn from them
    val_items: int = 32  # held-out images (or videos) for grids and the final evaluation
    frames: int = 8  # frames per video (pan_videos)


def register_configs() -> None:
    """Register every group schema (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(group="tokenizer", name="schema", node=TokenizerPreset)
    cs.store(group="data", name="schema", node=DataConfig)
    cs.store(group="model", name="schema", node=Recipe)
    cs.store(group="ablation", name="schema", node=Ablation)
