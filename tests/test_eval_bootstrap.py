"""Bootstrap intervals over samples: reproducible from the seed, centred on the value, narrower
with more samples, one-line errors for bad input; every metric gives one when asked, and
Block-FID resamples whole canvases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from harness_fakes import TINY_CLIP, TINY_IMAGE, TINY_VIDEO, register_tiny_extractors

import evaluation
from evaluation import EvaluationError
from evaluation.bootstrap import MIN_INTERVAL_SAMPLES, Interval, bootstrap_interval
from evaluation.frechet import FeatureStats, fid_from_features, fid_from_stats
from nuwa.data.landscapes import render_landscape

REPLICATES = 50


@pytest.fixture(scope="module", autouse=True)
def _tiny_extractors() -> None:
    register_tiny_extractors()


def gaussians(n: int, dim: int = 8, shift: float = 0.5, seed: int = 0) -> dict[str, np.ndarray]:
    """Two Gaussian feature sets [n, dim], the real one shifted by ``shift``."""
    rng = np.random.default_rng(seed)
    return {"generated": rng.normal(size=(n, dim)), "real": rng.normal(shift, 1.0, (n, dim))}


def fid_statistic(features: dict[str, np.ndarray]):
    def statistic(indices: dict[str, np.ndarray]) -> float:
        return fid_from_features(*(features[s][indices[s]] for s in ("generated", "real")))

    return statistic


def sizes_of(features: dict[str, np.ndarray]) -> dict[str, int]:
    return {side: len(rows) for side, rows in features.items()}


def test_the_same_seed_gives_the_identical_interval_another_seed_another() -> None:
    features = gaussians(32)
    statistic, sizes = fid_statistic(features), sizes_of(features)
    first = bootstrap_interval(statistic, sizes, replicates=REPLICATES, seed=3)
    again = bootstrap_interval(statistic, sizes, replicates=REPLICATES, seed=3)
    other = bootstrap_interval(statistic, sizes, replicates=REPLICATES, seed=4)
    assert first == again and (first.low, first.high) != (other.low, other.high)
    assert first.to_json() == {
        "low": first.low,
        "high": first.high,
        "level": 0.95,
        "replicates": REPLICATES,
        "seed": 3,
        "method": "percentile, bias-shifted",
        "bias": first.bias,
    }
    assert Interval.from_json(first.to_json()) == first


def test_interval_is_centred_on_the_value_even_where_the_replicates_are_biased() -> None:
    """Duplicated items inflate FID: every replicate here lies above the point estimate, so the
    plain percentile interval would miss it; the shifted one contains it."""
    features = gaussians(32, dim=16, shift=0.3, seed=1)
    statistic = fid_statistic(features)
    value = statistic({side: np.arange(32) for side in features})
    interval = bootstrap_interval(statistic, sizes_of(features), replicates=200)
    assert interval.bias > 0 and interval.low + interval.bias > value  # the plain percentiles
    assert interval.low <= value <= interval.high
    mean = bootstrap_interval(
        lambda idx: float(features["generated"][idx["generated"], 0].mean()),
        {"generated": 32},
        replicates=200,
    )
    assert abs(mean.bias) < 0.05 and mean.low < features["generated"][:, 0].mean() < mean.high


def test_interval_shrinks_as_the_sample_count_grows() -> None:
    widths = []
    for n in (16, 64, 256):
        features = gaussians(n, seed=n)
        interval = bootstrap_interval(fid_statistic(features), sizes_of(features), replicates=100)
        widths.append(interval.high - interval.low)
    assert widths[0] > widths[1] > widths[2] > 0


def test_fid_from_features_equals_fid_from_stats() -> None:
    for n, dim in ((12, 16), (40, 8)):  # the nuclear-norm shortcut and the D x D path
        generated, real = gaussians(n, dim).values()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", evaluation.FewSamplesWarning)
            expected = fid_from_stats(*map(FeatureStats.from_features, (generated, real)))
        assert fid_from_features(generated, real) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: bootstrap_interval(s, {"generated": 7, "real": 9}), "generated has 7"),
        (lambda s: bootstrap_interval(s, {"generated": 8}, replicates=5), "too few for an"),
        (lambda s: bootstrap_interval(s, {"generated": 8}, level=95), "level must lie in"),
        (lambda s: bootstrap_interval(lambda i: float("nan"), {"generated": 8}), "not finite"),
        (lambda s: evaluation.FID(TINY_IMAGE, bootstrap=3), "bootstrap=3 replicates"),
        (lambda s: evaluation.SWD(bootstrap=True), "whole number of replicates"),
    ],
)
def test_bad_input_is_a_one_line_error(call, message) -> None:
    statistic = fid_statistic(gaussians(16))
    with pytest.raises(EvaluationError, match=message) as error:
        call(statistic)
    assert "\n" not in str(error.value)


def test_a_metric_with_too_few_samples_for_an_interval_says_so(landscapes) -> None:
    metric = evaluation.FID(TINY_IMAGE, progress=False, bootstrap=REPLICATES)
    metric.update(landscapes[:5], real=False)
    metric.update(landscapes[5:10], real=True)
    message = "too few samples .* generated has 5, real has 5"
    with pytest.raises(EvaluationError, match=message), warnings.catch_warnings():
        warnings.simplefilter("ignore", evaluation.FewSamplesWarning)
        metric.compute()
    assert MIN_INTERVAL_SAMPLES == 8


@pytest.fixture(scope="module")
def landscapes() -> list[np.ndarray]:
    return [render_landscape(seed, 64, 48).image for seed in range(20)]


def _generated_vs_real(make, generated, real):
    """(result without bootstrap, result with, result with again) of one metric."""
    results = []
    for replicates in (0, REPLICATES, REPLICATES):
        metric = make(replicates)
        metric.update(generated, real=False)
        metric.update(real, real=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # few samples for the covariance / KID subsets
            results.append(metric.compute())
    return results


def _assert_interval(plain, with_interval, again) -> None:
    assert plain.interval is None and plain.to_json()["interval"] is None
    assert with_interval.value == plain.value  # the bootstrap never moves the value
    assert with_interval.metric_id == plain.metric_id  # nor the metric id
    interval = with_interval.interval
    assert interval.replicates == REPLICATES and interval.seed == 7
    assert interval.low <= with_interval.value <= interval.high
    assert again.interval == interval
    assert with_interval.to_json()["interval"] == interval.to_json()


@pytest.mark.parametrize("name", ["FID", "KID"])
def test_fid_and_kid_give_intervals(landscapes, name) -> None:
    def make(replicates):
        options = {"subset_size": 8, "num_subsets": 10} if name == "KID" else {}
        metric_cls = getattr(evaluation, name)
        return metric_cls(
            TINY_IMAGE, progress=False, bootstrap=replicates, bootstrap_seed=7, **options
        )

    _assert_interval(*_generated_vs_real(make, landscapes[:10], landscapes[10:]))


def test_swd_gives_an_interval_over_images() -> None:
    images = [render_landscape(seed, 32, 32).image for seed in range(16)]

    def make(replicates):  # few patches and directions: the test is about the resampling
        options = {"patches_per_image": 16, "directions": 16}
        return evaluation.SWD(bootstrap=replicates, bootstrap_seed=7, **options)

    _assert_interval(*_generated_vs_real(make, images[:8], images[8:]))


def _pan(seed: int, frames: int) -> np.ndarray:
    """A clip panning across a procedural panorama: uint8 [frames, 32, 32, 3]."""
    panorama = render_landscape(seed, 32 + 4 * frames, 32).image
    return np.stack([panorama[:, 4 * t : 4 * t + 32] for t in range(frames)])


def test_fvd_gives_an_interval_over_clips() -> None:
    def make(replicates):
        return evaluation.FVD(
            TINY_VIDEO, frames=4, progress=False, bootstrap=replicates, bootstrap_seed=7
        )

    generated = [_pan(seed, 4) for seed in range(8)]
    real = [_pan(seed, 4) for seed in range(50, 58)]
    _assert_interval(*_generated_vs_real(make, generated, real))


def test_inception_score_gives_an_interval(landscapes) -> None:
    results = []
    for replicates in (0, REPLICATES, REPLICATES):
        metric = evaluation.InceptionScore(
            TINY_IMAGE, splits=2, progress=False, bootstrap=replicates, bootstrap_seed=7
        )
        metric.update(landscapes[:12])
        results.append(metric.compute())
    _assert_interval(*results)


def test_clip_sim_resamples_whole_samples(landscapes) -> None:
    captions = [f"a landscape number {i}" for i in range(16)]
    results = []
    for replicates in (0, REPLICATES, REPLICATES):
        metric = evaluation.CLIPSim(
            TINY_CLIP, progress=False, bootstrap=replicates, bootstrap_seed=7
        )
        metric.update(landscapes[:16], captions, images_per_sample=2)  # 8 "clips" of 2 frames
        results.append(metric.compute())
    _assert_interval(*results)
    with pytest.raises(EvaluationError, match="not a whole number of samples of 2 images"):
        metric.update(landscapes[:3], captions[:3], images_per_sample=2)
    metric = evaluation.CLIPSim(TINY_CLIP, progress=False, bootstrap=REPLICATES)
    metric.update(landscapes[:14], captions[:14], images_per_sample=2)  # 7 samples: too few
    with pytest.raises(EvaluationError, match="generated has 7"):
        metric.compute()


def _doubled(seed: int) -> np.ndarray:
    """A 256x512 canvas whose right block repeats its left block."""
    block = render_landscape(seed, 256, 256).image
    return np.concatenate([block, block], axis=1)


def test_block_fid_resamples_whole_canvases() -> None:
    """Both block positions of a doubled canvas hold the same block, so if a resample takes the
    same canvases at every position, each replicate's position mean equals the one-block FID of
    those canvases, and the interval equals that of the left blocks alone. Positions resampled
    independently would average two different FIDs and narrow it."""
    generated, real = [_doubled(s) for s in range(8)], [_doubled(s) for s in range(100, 108)]
    doubled = evaluation.BlockFID(TINY_IMAGE, progress=False, bootstrap=REPLICATES)
    single = evaluation.BlockFID(TINY_IMAGE, progress=False, bootstrap=REPLICATES)
    for metric, crop in ((doubled, slice(None)), (single, slice(0, 256))):
        metric.update([c[:, crop] for c in generated], real=False)
        metric.update([c[:, crop] for c in real], real=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", evaluation.FewSamplesWarning)
        both, one = doubled.compute(), single.compute()
    assert sorted(both.per_position) == ["r0c0", "r0c1"] and list(one.per_position) == ["r0c0"]
    mean, alone = both.position_mean.interval, one.position_mean.interval
    assert (mean.low, mean.high) == pytest.approx((alone.low, alone.high), rel=1e-6)
    pooled = both.pooled.interval
    assert pooled is not None and pooled.low <= both.pooled.value <= pooled.high
    assert pooled.seed == mean.seed == 0


def test_intervals_need_every_item_in_one_process(tmp_path, landscapes) -> None:
    metric = evaluation.FID(TINY_IMAGE, progress=False, bootstrap=REPLICATES)
    with pytest.raises(EvaluationError, match="hold no per-item features"):
        metric.load_real_stats(tmp_path / "real.npz")
    metric.update(landscapes[:8], real=False)
    metric.update(landscapes[8:16], real=True)
    store = f"file://{tmp_path / 'store'}"
    torch.distributed.init_process_group("gloo", init_method=store, rank=0, world_size=1)
    try:
        with pytest.raises(EvaluationError, match="a process group is initialised"):
            metric.compute()
    finally:
        torch.distributed.destroy_process_group()
