"""The NUWA-Infinity vision decoder: config, presets, blocks, model, patch decoding, checkpoints."""

from nuwa.model.config import PRESETS, NuwaConfig, preset
from nuwa.model.transformer import Nuwa, TextStates, count_parameters

__all__ = ["PRESETS", "Nuwa", "NuwaConfig", "TextStates", "count_parameters", "preset"]
