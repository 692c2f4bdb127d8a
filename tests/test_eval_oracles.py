"""Value oracles: each metric class against its formula, computed again here from the class's own
features (or pixels) with independent code: scipy's matrix square root, loops instead of
vectorised sums, crops cut by hand. A change to a reduction, a split count, a kernel sign or a
frame selection shows up as a different number."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
from harness_fakes import TINY_IMAGE, TINY_VIDEO, register_tiny_extractors

import evaluation
from evaluation.motion_fd import MotionFD
from evaluation.swd import sliced_wasserstein

register_tiny_extractors()


def images(seed: int, n: int, height: int = 64, width: int = 64, level: int = 0) -> list:
    """Smooth random pictures: a low-frequency pattern per image plus ``level`` brightness."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 200, (n, height // 16, width // 16, 3)).astype(np.uint8)
    big = small.repeat(16, axis=1).repeat(16, axis=2).astype(np.int64) + level
    return [np.clip(image, 0, 255).astype(np.uint8) for image in big]


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """‖μa − μb‖² + tr(Σa + Σb − 2 (Σa Σb)^½), with scipy's sqrtm."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_fid_compares_generated_with_real() -> None:
    generated, real = images(0, 40), images(1, 40, level=30)
    metric = evaluation.FID(TINY_IMAGE, progress=False)
    metric.update(generated, real=False)
    metric.update(real, real=True)
    expected = frechet(metric.extract(generated), metric.extract(real))
    assert metric.compute().value == pytest.approx(expected, rel=1e-6)
    assert expected > 1e-3  # the two sets differ, so generated-vs-generated would be caught


def test_block_fid_is_the_mean_over_positions_of_per_position_fid() -> None:
    # 512 x 768 with the shifted pass: 2 x 3 aligned + 1 x 2 shifted = 8 positions, so a median
    # or a pooled number differs from the mean
    generated = images(2, 20, 512, 768)
    real = images(3, 20, 512, 768, level=40)
    metric = evaluation.BlockFID(TINY_IMAGE, shifted_pass=True, progress=False)
    metric.update(generated, real=False)
    metric.update(real, real=True)
    result = metric.compute()
    tops_lefts = [(256 * i, 256 * j) for i in range(2) for j in range(3)]
    tops_lefts += [(128, 128), (128, 384)]
    plain = evaluation.FID(TINY_IMAGE, progress=False)  # same preprocessing, one block each

    def blocks(canvases, top, left):
        return plain.extract([c[top : top + 256, left : left + 256] for c in canvases])

    per_position = [frechet(blocks(generated, t, l), blocks(real, t, l)) for t, l in tops_lefts]
    assert len(result.per_position) == 8
    assert sorted(result.per_position.values()) == pytest.approx(sorted(per_position), rel=1e-6)
    assert result.position_mean.value == pytest.approx(np.mean(per_position), rel=1e-6)
    median = np.median(per_position)  # far outside the tolerance: a median would be caught
    assert abs(np.mean(per_position) - median) > 1e-4 * median
    every_block = [
        np.concatenate([blocks(s, t, l) for t, l in tops_lefts]) for s in (generated, real)
    ]
    assert result.pooled.value == pytest.approx(frechet(*every_block), rel=1e-6)


def polynomial_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD², kernel (xᵀy / d + 1)³, with explicit loops over pairs."""
    m, d = x.shape

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_is_the_mean_unbiased_mmd_over_seeded_subsets() -> None:
    generated, real = images(4, 24), images(5, 24, level=25)
    metric = evaluation.KID(TINY_IMAGE, num_subsets=3, subset_size=12, seed=7, progress=False)
    metric.update(generated, real=False)
    metric.update(real, real=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = metric.compute().value
    fg, fr = metric.extract(generated).astype(np.float64), metric.extract(real).astype(np.float64)
    rng = np.random.RandomState(7)  # the documented draw: generated subset, then real, per subset
    draws = []
    for _ in range(3):
        x = fg[rng.choice(24, 12, replace=False)]
        draws.append(polynomial_mmd(x, fr[rng.choice(24, 12, replace=False)]))
    assert value == pytest.approx(np.mean(draws), rel=1e-9)
    assert np.mean(draws) > 0  # a sign flip would be caught


def test_inception_score_uses_ten_seeded_splits() -> None:
    generated = images(6, 40)
    metric = evaluation.InceptionScore(TINY_IMAGE, progress=False)
    metric.update(generated)
    value = metric.compute().value
    logits = metric.extract(generated).astype(np.float64)
    assert logits.shape == (40, 10)
    shuffled = logits[np.random.RandomState(2020).permutation(40)]
    scores = []
    for part in np.split(shuffled, 10):
        p = np.exp(part - part.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        marginal = p.mean(axis=0)
        scores.append(np.exp(np.mean([np.sum(row * np.log(row / marginal)) for row in p])))
    assert value == pytest.approx(np.mean(scores), rel=1e-9)
    one_split = np.exp(np.mean(np.sum(p * np.log(p / p.mean(axis=0)), axis=1)))
    assert abs(np.mean(scores) - one_split) > 1e-6


def test_sliced_wasserstein_is_the_mean_absolute_projected_shift() -> None:
    a = np.random.default_rng(0).standard_normal((64, 5))
    shift = np.array([3.0, -1.0, 0.5, 0.0, 2.0])
    value = sliced_wasserstein(a, a + shift, np.random.RandomState(9), repeats=2, directions=16)
    rng, projected = np.random.RandomState(9), []
    for _ in range(2):  # the documented draw: [D, directions] normals, unit columns
        dirs = rng.standard_normal((5, 16))
        dirs /= np.linalg.norm(dirs, axis=0)
        projected.extend(abs(shift @ dirs))  # W1 between a set and its translate: |θ·shift|
    assert value == pytest.approx(np.mean(projected), rel=1e-12)
    assert abs(np.mean(projected) - np.mean(np.square(projected))) > 0.1  # W1, not W2²


def test_fvd_measures_the_first_sixteen_frames() -> None:
    rng = np.random.default_rng(3)

    def clips(level: int) -> list[np.ndarray]:  # 20 frames: the last 4 differ from the first
        base = rng.integers(0, 200, (10, 20, 4, 4, 3)).repeat(16, axis=2).repeat(16, axis=3)
        base[:, 16:] = 255 - base[:, 16:]
        return list(np.clip(base + level, 0, 255).astype(np.uint8))

    generated, real = clips(0), clips(40)
    metric = evaluation.FVD(TINY_VIDEO, progress=False)
    metric.update(generated, real=False)
    metric.update(real, real=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", evaluation.FewSamplesWarning)
        value = metric.compute().value
    first = [metric.extract([c[:16] for c in side]) for side in (generated, real)]
    last = [metric.extract([c[-16:] for c in side]) for side in (generated, real)]
    assert value == pytest.approx(frechet(*first), rel=1e-6)
    assert abs(frechet(*first) - frechet(*last)) > 1e-3


def test_motion_fd_compares_log_frame_changes_at_each_lag() -> None:
    rng = np.random.default_rng(5)

    def pans(step: int) -> list[np.ndarray]:  # 12 clips of 16 frames panning ``step`` px/frame
        wide = rng.integers(0, 220, (12, 4, 40, 3)).repeat(16, axis=1).repeat(16, axis=2)
        return [
            np.stack([w[:, step * t : step * t + 64] for t in range(16)]).astype(np.uint8)
            for w in wide
        ]

    generated, real = pans(8), pans(2)
    metric = MotionFD(TINY_IMAGE, progress=False)
    metric.update(generated, real=False)
    metric.update(real, real=True)
    value = metric.compute().value
    frame_features = evaluation.FID(TINY_IMAGE, progress=False)  # the same extractor, per frame

    def descriptor(clip: np.ndarray) -> list[float]:
        f = frame_features.extract(list(clip)).astype(np.float64)
        return [
            np.log(
                1e-3 + np.mean([np.sqrt(np.mean((f[t + k] - f[t]) ** 2)) for t in range(16 - k)])
            )
            for k in (1, 2, 4, 8)
        ]

    expected = frechet(np.array([descriptor(c) for c in generated]),
                       np.array([descriptor(c) for c in real]))  # fmt: skip
    assert value == pytest.approx(expected, rel=1e-5)
    assert expected > 0.1  # a fast pan does not move like a slow one
