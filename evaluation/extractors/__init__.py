"""Feature-extractor registry: immutable records of what computed a feature, and how to load it.

Each entry records the architecture, the weights file (full hash, size, source URLs kept as
documentation, licence), the expected input, the preprocessing and the output layers. Its
`provenance()` goes into every metric id. Surrogates (seeded random init, no file) carry
"surrogate" in their name and are never paper-comparable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from evaluation.errors import EvaluationError
from evaluation.extractors import clip, inception, landscape, video
from evaluation.extractors.seeded_init import SEEDED_INIT
from evaluation.preprocess import get_preprocess
from evaluation.weights import WeightsFile

TORCH_HUB = "{torch_hub}/checkpoints/"


@dataclass(frozen=True)
class ExtractorSpec:
    """One registry entry. ``outputs`` maps output names to dimensions; ``build`` loads the module
    (which maps a preprocessed batch to a dict of those outputs)."""

    name: str
    modality: str  # "image" or "video"
    architecture: str
    weights: WeightsFile | None
    surrogate_seed: int | None
    paper_weights: bool
    preprocessing: str
    input: str
    outputs: dict[str, int]
    default_output: str
    build: Callable[[ExtractorSpec], nn.Module] = field(compare=False, repr=False)

    @property
    def is_surrogate(self) -> bool:
        return self.surrogate_seed is not None

    def provenance(self) -> dict[str, Any]:
        """JSON-able record hashed into metric ids (paths and URLs excluded: they do not change
        the numbers; the weights hash does)."""
        weights = None
        if self.weights is not None:
            weights = {
                "filename": self.weights.filename,
                "hash": self.weights.expected,
                "size_bytes": self.weights.size_bytes,
            }
        return {
            "name": self.name,
            "modality": self.modality,
            "architecture": self.architecture,
            "weights": weights,
            "surrogate_init": {"scheme": SEEDED_INIT, "seed": self.surrogate_seed}
            if self.is_surrogate
            else None,
            "preprocessing": {
                "name": self.preprocessing,
                **get_preprocess(self.preprocessing).description,
            },
            "input": self.input,
            "outputs": self.outputs,
        }


INCEPTION_TS_WEIGHTS = WeightsFile(
    filename="inception-2015-12-05.pt",
    sha256="f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4",
    size_bytes=None,
    urls=(
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
    ),
    license="Apache-2.0 (TensorFlow models); TorchScript export by NVIDIA (StyleGAN2-ADA)",
    hash_source="recorded by a third-party public project, not published by NVIDIA; "
    "`nuwa-eval weights fetch` checks the download against it",
    library_paths=("/tmp/inception-2015-12-05.pt",),  # clean-fid's fixed download location
)
INCEPTION_PORT_WEIGHTS = WeightsFile(
    filename="pt_inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    size_bytes=None,
    urls=(
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
    ),
    license="Apache-2.0 (TensorFlow models, converted by pytorch-fid)",
    hash_source="recorded by a third-party project for torch-fidelity's copy; its first 8 hex "
    "digits equal the torch.hub name suffix 6726825d both libraries use",
    library_paths=(
        TORCH_HUB + "pt_inception-2015-12-05-6726825d.pth",
        TORCH_HUB + "weights-inception-2015-12-05-6726825d.pth",
    ),
)
CLIP_OPENAI_WEIGHTS = WeightsFile(
    filename="ViT-B-32.pt",
    sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    size_bytes=None,
    urls=(
        "https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
    ),
    license="MIT (OpenAI CLIP)",
    hash_source="the SHA-256 OpenAI embeds in the download URL (open_clip/pretrained.py)",
    library_paths=("~/.cache/clip/ViT-B-32.pt",),  # open_clip's and OpenAI clip's cache
)
I3D_WEIGHTS = WeightsFile(
    filename="i3d_torchscript.pt",
    sha256=None,
    git_blob_sha1="93daef59c7ae0e9e8f76225521407e60cbafa6aa",
    size_bytes=None,
    urls=(
        "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
        "https://github.com/JunyaoHu/common_metrics_on_video_quality/raw/main/fvd/styleganv/i3d_torchscript.pt",
    ),
    license="Apache-2.0 (tf.hub I3D Kinetics-400); TorchScript port by the StyleGAN-V authors",
    hash_source="no published SHA-256; git blob SHA-1 of fvd/styleganv/i3d_torchscript.pt in "
    "JunyaoHu/common_metrics_on_video_quality, which states it is StyleGAN-V's file",
)

LANDSCAPE_WEIGHTS = WeightsFile(
    filename="landscape_net.procedural_v1.safetensors",
    sha256="208b4d07aaf43076bea049bffa7d9151365902a7d2bc957deddc86469d76256e",
    size_bytes=None,
    urls=(),
    license="MIT (trained by this project: `python -m evaluation.landscape_train`)",
    hash_source="pinned here when the shipped file was trained (evaluation/extractors/weights/"
    "MODEL_CARD.md)",
    packaged=Path(__file__).resolve().parent
    / "weights"
    / "landscape_net.procedural_v1.safetensors",
)

INCEPTION_INPUT = "float32 [B, 3, 299, 299] RGB in [0, 255]"
TF2015_PORT_ARCH = (
    "Inception v3, TF-2015 graph layout (torchvision Inception3 + pytorch-fid FID blocks)"
)

_REGISTRY: dict[str, ExtractorSpec] = {}


def register_extractor(spec: ExtractorSpec) -> ExtractorSpec:
    """Add ``spec`` to the registry; names are immutable (re-registering one is an error)."""
    if spec.name in _REGISTRY:
        raise EvaluationError(f"extractor {spec.name!r} is already registered; bump its @version")
    if spec.is_surrogate != ("surrogate" in spec.name):
        raise EvaluationError(
            f"extractor {spec.name!r}: surrogates, and only they, say so in the name"
        )
    _REGISTRY[spec.name] = spec
    return spec


for _spec in (
    ExtractorSpec(
        name="inception_v3.tf2015.nvidia_ts@1",
        modality="image",
        architecture="Inception v3, TF-2015 graph, NVIDIA TorchScript export "
        "(clean-fid, StyleGAN2-ADA)",
        weights=INCEPTION_TS_WEIGHTS,
        surrogate_seed=None,
        paper_weights=True,
        preprocessing="clean-pil-bicubic-299",
        input=INCEPTION_INPUT,
        outputs={"pool3": 2048},
        default_output="pool3",
        build=inception.build_nvidia_torchscript,
    ),
    ExtractorSpec(
        name="inception_v3.tf2015.pt_port@1",
        modality="image",
        architecture=TF2015_PORT_ARCH,
        weights=INCEPTION_PORT_WEIGHTS,
        surrogate_seed=None,
        paper_weights=True,
        preprocessing="clean-pil-bicubic-299",
        input=INCEPTION_INPUT,
        outputs={"pool3": 2048, "logits_unbiased": 1008},
        default_output="pool3",
        build=inception.build_pt_port,
    ),
    ExtractorSpec(
        name="inception_v3.surrogate_seed0@1",
        modality="image",
        architecture=TF2015_PORT_ARCH,
        weights=None,
        surrogate_seed=0,
        paper_weights=False,
        preprocessing="clean-pil-bicubic-299",
        input=INCEPTION_INPUT,
        outputs={"pool3": 2048, "logits_unbiased": 1008},
        default_output="pool3",
        build=inception.build_surrogate,
    ),
    ExtractorSpec(
        name="clip_vit_b32.openai@1",
        modality="image",
        architecture=f"CLIP ViT-B/32 (open_clip {clip.OPEN_CLIP_NAME})",
        weights=CLIP_OPENAI_WEIGHTS,
        surrogate_seed=None,
        paper_weights=True,
        preprocessing="openai-clip-224",
        input="float32 [B, 3, 224, 224], CLIP-normalised",
        outputs={"image_embed": 512},
        default_output="image_embed",
        build=clip.build_openai,
    ),
    ExtractorSpec(
        name="clip_vit_b32.surrogate_seed0@1",
        modality="image",
        architecture=f"CLIP ViT-B/32 (open_clip {clip.OPEN_CLIP_NAME}), open_clip init",
        weights=None,
        surrogate_seed=0,
        paper_weights=False,
        preprocessing="openai-clip-224",
        input="float32 [B, 3, 224, 224], CLIP-normalised",
        outputs={"image_embed": 512},
        default_output="image_embed",
        build=clip.build_surrogate,
    ),
    ExtractorSpec(
        name="landscape_net.procedural_v1@1",
        modality="image",
        architecture="LandscapeNet (evaluation/extractors/landscape.py): 4 strided conv stages "
        f"{landscape.LandscapeNetConfig().to_json()}, supervised on procedural-landscapes-v1 "
        "scene parameters and a 4x4 cover map",
        weights=LANDSCAPE_WEIGHTS,
        surrogate_seed=None,
        paper_weights=False,
        preprocessing="landscape-area-128",
        input="float32 [B, 3, 128, 128] in [0, 255]",
        outputs={"layout": 64, "cells": 256, "attributes": 15, "horizon": 1},
        default_output="layout",
        build=landscape.build_landscape_net,
    ),
    ExtractorSpec(
        name="i3d.stylegan_v_ts@1",
        modality="video",
        architecture="I3D Kinetics-400 (tf.hub weights), StyleGAN-V TorchScript port",
        weights=I3D_WEIGHTS,
        surrogate_seed=None,
        paper_weights=True,
        preprocessing="stylegan-v-i3d-input",
        input="float32 [B, 3, T, H, W] in [0, 255]",
        outputs={"logits400": 400},
        default_output="logits400",
        build=video.build_i3d,
    ),
    ExtractorSpec(
        name="r3d18.surrogate_seed0@1",
        modality="video",
        architecture="R3D-18 (torchvision), trunk to global average pool; frames resized "
        "bilinearly to 112x112 inside the extractor, [0, 255] -> [-1, 1]",
        weights=None,
        surrogate_seed=0,
        paper_weights=False,
        preprocessing="stylegan-v-i3d-input",
        input="float32 [B, 3, T, H, W] in [0, 255]",
        outputs={"pool512": 512},
        default_output="pool512",
        build=video.build_r3d_surrogate,
    ),
):
    register_extractor(_spec)


def list_extractors() -> list[ExtractorSpec]:
    """All registered entries, sorted by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def get_extractor_spec(name: str) -> ExtractorSpec:
    """The entry called ``name``; a one-line error lists the known names otherwise."""
    if name not in _REGISTRY:
        raise EvaluationError(f"unknown feature extractor {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def load_extractor(name: str) -> nn.Module:
    """Build the module for ``name`` on the CPU in eval mode (weights hash-checked first).
    Move it with `.to(device)` afterwards."""
    spec = get_extractor_spec(name)
    module = spec.build(spec)
    module.spec = spec
    return module.eval()


def all_weights() -> list[WeightsFile]:
    """Every weights file some entry needs (each once), for `nuwa-eval weights`."""
    seen: dict[str, WeightsFile] = {}
    for spec in list_extractors():
        if spec.weights is not None:
            seen.setdefault(spec.weights.filename, spec.weights)
    return list(seen.values())
