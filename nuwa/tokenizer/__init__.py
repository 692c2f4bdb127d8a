"""Visual tokenizer: VQGAN (images) and PG-VQGAN (video frames), f=16, any canvas size."""

from nuwa.tokenizer.load import codes_sha256, load_tokenizer, save_tokenizer
from nuwa.tokenizer.pg import PGVQGAN
from nuwa.tokenizer.presets import TokenizerPreset, build_vqgan, load_preset, preset_names
from nuwa.tokenizer.vqgan import DOWNSAMPLE, VQGAN, VQGANConfig

__all__ = [
    "DOWNSAMPLE",
    "PGVQGAN",
    "VQGAN",
    "TokenizerPreset",
    "VQGANConfig",
    "build_vqgan",
    "codes_sha256",
    "load_preset",
    "load_tokenizer",
    "preset_names",
    "save_tokenizer",
]
