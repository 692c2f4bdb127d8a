"""The real-weights loaders, end to end, on stand-in files laid out like the real ones: random
tensors with the real keys and shapes (the pytorch-fid port; OpenAI's CLIP state dict at a tiny
width, from which open_clip infers the architecture), or TorchScript archives with the real call
signatures (NVIDIA's Inception, StyleGAN-V's I3D). Each stand-in's SHA-256 is
registered for the test in place of the published one, so the hash check runs as it would."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest
import torch
from torch import nn

from evaluation.extractors import _REGISTRY, load_extractor
from evaluation.extractors.inception import tf2015_inception_v3
from nuwa.io import sha256_file


class _NvidiaLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2048, kernel_size=299)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # [B, 2048, 1, 1], as NVIDIA's `layers` returns pool3


class _NvidiaInception(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = _NvidiaLayers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _I3D(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 400)

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
        return_features: bool = False,
    ) -> torch.Tensor:  # fmt: skip
        pooled = x.mean(dim=(2, 3, 4))
        return self.head(pooled / 127.5 - 1.0 if rescale else pooled)


def pt_port(path) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    state = tf2015_inception_v3().state_dict()
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, path)
    return state


def torchscript(module: nn.Module):
    def write(path) -> None:
        torch.manual_seed(0)
        torch.jit.script(module()).save(str(path))

    return write


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """``stand_in(name, write)``: write the file for extractor ``name`` where the loader looks
    first, register its SHA-256, and return the loaded extractor."""
    monkeypatch.setenv("NUWA_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("NUWA_WEIGHTS_LIBRARY_CACHES", "0")

    def load(name: str, write) -> nn.Module:
        spec = _REGISTRY[name]
        path = tmp_path / spec.weights.filename
        written = write(path)
        weights = replace(spec.weights, sha256=sha256_file(path))
        monkeypatch.setitem(_REGISTRY, name, replace(spec, weights=weights))
        module = load_extractor(name)
        module.written = written
        return module

    return load


def test_the_pytorch_fid_port_loads_every_tensor_into_its_place(stand_in):
    module = stand_in("inception_v3.tf2015.pt_port@1", pt_port)
    loaded = module.net.state_dict()
    for key, value in module.written.items():
        torch.testing.assert_close(loaded[key], value.to(loaded[key].dtype), msg=key)
    with torch.inference_mode():
        out = module(torch.full((2, 3, 299, 299), 128.0))
    assert out["pool3"].shape == (2, 2048) and out["logits_unbiased"].shape == (2, 1008)


def test_nvidia_torchscript_inception_is_called_through_its_layers(stand_in):
    module = stand_in("inception_v3.tf2015.nvidia_ts@1", torchscript(_NvidiaInception))
    x = torch.rand(2, 3, 299, 299) * 255
    with torch.inference_mode():
        pool3 = module(x)["pool3"]
        expected = module.scripted.layers((x - 128.0) / 128.0).view(2, 2048)
    assert pool3.shape == (2, 2048)
    torch.testing.assert_close(pool3, expected)


def test_the_i3d_is_called_with_stylegan_v_keywords(stand_in):
    module = stand_in("i3d.stylegan_v_ts@1", torchscript(_I3D))
    clips = torch.rand(2, 3, 16, 32, 32) * 255
    with torch.inference_mode():
        logits = module(clips)["logits400"]
        expected = module.scripted.head(clips.mean(dim=(2, 3, 4)) / 127.5 - 1.0)  # rescale=True
    torch.testing.assert_close(logits, expected)


def openai_clip(path) -> dict[str, torch.Tensor]:
    """OpenAI's CLIP state-dict layout (open_clip reads the sizes off the shapes), 14 MB."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    vision = CLIPVisionCfg(layers=1, width=64, patch_size=32, image_size=224, head_width=64)
    text = CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1)
    state = CLIP(embed_dim=32, vision_cfg=vision, text_cfg=text, quick_gelu=True).state_dict()
    torch.save(state, path)
    return state


def test_openai_clip_loads_through_open_clip_and_embeds_images_and_text(stand_in):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # open_clip tries torch.jit.load first
        module = stand_in("clip_vit_b32.openai@1", openai_clip)
    loaded = module.model.state_dict()
    for key, value in module.written.items():  # open_clip keeps most OpenAI weights in float16
        assert torch.equal(loaded[key], value) or torch.equal(loaded[key], value.half().float())
    with torch.inference_mode():
        image = module(torch.zeros(2, 3, 224, 224))["image_embed"]
        text = module.embed_text(["a lake at dusk", "snowy peaks"])
    assert image.shape == (2, 32) and text.shape == (2, 32)
