"""The remaining metrics end to end on surrogate extractors: IS, CLIP-SIM, FVD, SWD."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import evaluation
from evaluation import EvaluationError
from evaluation.swd import laplacian_pyramid
from nuwa.data.landscapes import render_landscape


@pytest.fixture(scope="module")
def landscapes() -> list[np.ndarray]:
    return [render_landscape(seed, 128, 96).image for seed in range(8)]


def test_inception_score_on_surrogate_logits(landscapes) -> None:
    metric = evaluation.InceptionScore(evaluation.SURROGATE_INCEPTION, splits=2, progress=False)
    metric.update(landscapes[:4])
    result = metric.compute()
    expected = evaluation.inception_score(metric.extract(landscapes[:4]), splits=2)[0]
    assert result.value == pytest.approx(expected, rel=1e-12) and result.n == {"generated": 4}
    assert "surrogate" in result.metric_id.label and not result.metric_id.paper_comparable


def test_clip_sim_is_the_mean_raw_cosine(landscapes) -> None:
    captions = ["rolling hills at sunset", "a calm lake", "snowy peaks under a blue sky"]
    metric = evaluation.CLIPSim(evaluation.SURROGATE_CLIP, progress=False)
    metric.update(landscapes[:3], captions)
    value = metric.compute().value
    model = metric.model
    preprocess = evaluation.preprocess.get_preprocess("openai-clip-224")
    with torch.inference_mode():
        image = model(torch.stack([preprocess(im) for im in landscapes[:3]]))["image_embed"]
        text = model.embed_text(captions)
    expected = torch.nn.functional.cosine_similarity(image.double(), text.double()).mean()
    assert value == pytest.approx(float(expected), rel=1e-5)
    assert "cos" in metric.metric_id.label
    with pytest.raises(EvaluationError, match="one caption string per image"):
        metric.update(landscapes[:2], ["only one"])


def _pan(seed: int, frames: int) -> np.ndarray:
    """A clip panning across a procedural panorama: uint8 [frames, 48, 48, 3]."""
    panorama = render_landscape(seed, 48 + 4 * frames, 48).image
    return np.stack([panorama[:, 4 * t : 4 * t + 48] for t in range(frames)])


def test_fvd_on_surrogate_video_features() -> None:
    metric = evaluation.FVD(evaluation.SURROGATE_VIDEO, progress=False)
    assert metric.metric_id.label.startswith("fvd@1 · r3d18.surrogate_seed0@1 · fvd2048_16f")
    metric.update([_pan(seed, 18) for seed in range(3)], real=False)
    metric.update([_pan(seed, 16) for seed in range(10, 13)], real=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", evaluation.FewSamplesWarning)
        result = metric.compute()
    assert np.isfinite(result.value) and result.value > 0
    assert result.n == {"generated": 3, "real": 3}
    with pytest.raises(
        EvaluationError, match="clip #0 has 12 frames; fvd2048_16f needs at least 16"
    ):
        metric.update([_pan(0, 12)], real=False)
    with pytest.raises(EvaluationError, match="needs a video extractor"):
        evaluation.FVD(evaluation.SURROGATE_INCEPTION)


def test_laplacian_pyramid_reconstructs_the_image() -> None:
    image = torch.from_numpy(render_landscape(1, 64, 64).image.transpose(2, 0, 1)[None]).double()
    levels = laplacian_pyramid(image, min_size=16)
    assert [lv.shape[-1] for lv in levels] == [64, 32, 16]
    from evaluation.swd import _blur

    current = levels[-1]
    for band in reversed(levels[:-1]):
        up = torch.zeros_like(band)
        up[:, :, ::2, ::2] = current
        current = band + 4.0 * _blur(up)
    torch.testing.assert_close(current, image)


def test_swd_separates_distributions_and_is_deterministic(landscapes) -> None:
    noise = [
        np.random.default_rng(i).integers(0, 256, (96, 128, 3), dtype=np.uint8) for i in range(4)
    ]

    def swd(generated, real) -> evaluation.MetricResult:
        metric = evaluation.SWD(patches_per_image=64)
        metric.update(generated, real=False)
        metric.update(real, real=True)
        return metric.compute()

    same = swd(landscapes[:4], landscapes[4:])
    different = swd(noise, landscapes[4:])
    assert same.value < different.value
    assert swd(landscapes[:4], landscapes[4:]).value == same.value
    assert same.details["levels"] == 3 and same.metric_id.extractor == "none"
    with pytest.raises(EvaluationError, match="one size"):
        metric = evaluation.SWD()
        metric.update(landscapes[:2], real=False)
        metric.update([np.zeros((64, 64, 3), np.uint8)], real=True)
