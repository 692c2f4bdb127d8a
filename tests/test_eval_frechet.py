"""Fréchet distance and streaming statistics: parity with clean-fid, torchmetrics and
torch-fidelity on identical seeded features, closed forms, exact merging, distributed merging."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from evaluation import (
    EvaluationError,
    FeatureStats,
    FewSamplesWarning,
    fid_from_stats,
    frechet_distance,
)
from evaluation.cache import save_mu_sigma_npz


def pool3_like(seed: int, n: int, dim: int, shift: float) -> np.ndarray:
    """Non-negative, low-rank features shaped like Inception pool3 activations: [n, dim]."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((dim // 2, dim))
    return np.maximum(rng.standard_normal((n, dim // 2)) @ basis / np.sqrt(dim) + shift, 0.0)


def ours(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = FeatureStats.from_features(a), FeatureStats.from_features(b)
    return frechet_distance(sa.mean(), sa.cov(), sb.mean(), sb.cov())


def ours_small_set_path(a: np.ndarray, b: np.ndarray) -> float:
    """fid_from_stats, which takes the exact nuclear-norm shortcut when both n < D <= 256 rows."""
    sa, sb = FeatureStats.from_features(a), FeatureStats.from_features(b)
    assert sa.rows is not None and sb.rows is not None
    return fid_from_stats(sa, sb)


CASES = [(600, 64, 1e-9), (300, 160, 1e-9), (100, 160, 1e-6)]  # N < D: singular covariances


@pytest.mark.parametrize(("n", "dim", "rtol"), CASES)
def test_parity_with_cleanfid_torchmetrics_torch_fidelity(n: int, dim: int, rtol: float) -> None:
    a, b = pool3_like(0, n, dim, 0.30), pool3_like(1, n, dim, 0.35)
    values = {"eigh": _quiet(ours, a, b)}
    if n < dim:
        values["nuclear-norm shortcut"] = _quiet(ours_small_set_path, a, b)
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    references = {}
    from cleanfid.fid import fid_from_feats  # a project dependency: must run

    references["clean-fid fid_from_feats"] = _quiet(fid_from_feats, a, b)
    from torchmetrics.image.fid import _compute_fid  # a project dependency: must run

    tensors = [torch.from_numpy(x) for x in (mu1, s1, mu2, s2)]
    references["torchmetrics _compute_fid (float64)"] = float(_compute_fid(*tensors))
    # torch-fidelity is a test dependency (the [test] extra): a failed import fails this test
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    stats1, stats2 = {"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}
    references["torch-fidelity"] = fid_statistics_to_metric(stats1, stats2, False)[
        "frechet_inception_distance"
    ]
    for path, value in values.items():
        for name, reference in references.items():
            assert abs(value - reference) <= rtol * abs(reference), (path, name, value, reference)


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def test_equal_covariances_give_squared_mean_distance() -> None:
    rng = np.random.default_rng(3)
    root = rng.standard_normal((32, 32))
    sigma = root @ root.T
    mu1, mu2 = rng.standard_normal(32), rng.standard_normal(32)
    expected = float(((mu1 - mu2) ** 2).sum())
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert frechet_distance(np.zeros(8), np.eye(8), np.ones(8), np.eye(8)) == pytest.approx(8.0)


def test_identical_sets_give_zero_and_result_is_symmetric() -> None:
    a, b = pool3_like(4, 400, 128, 0.3), pool3_like(5, 400, 128, 0.4)
    assert abs(ours(a, a)) < 1e-6
    assert ours(a, b) == pytest.approx(ours(b, a), rel=1e-9)
    assert isinstance(ours(a, b), float)


def test_streaming_statistics_equal_two_pass_and_merge_exactly() -> None:
    features = pool3_like(6, 300, 48, 0.3)
    whole = FeatureStats.from_features(features)
    np.testing.assert_allclose(whole.mean(), features.mean(0), rtol=1e-12)
    np.testing.assert_allclose(whole.cov(), np.cov(features, rowvar=False), rtol=1e-9, atol=1e-12)
    shards = [FeatureStats.from_features(part) for part in np.split(features, [7, 150, 151])]
    merged = sum(shards[1:], shards[0])
    assert merged.n == whole.n
    np.testing.assert_allclose(merged.sum_outer, whole.sum_outer, rtol=1e-12)
    batched = FeatureStats.empty(48)
    for batch in np.array_split(features, 9):
        batched.update(batch.astype(np.float32))  # float32 input is accumulated in float64
    np.testing.assert_allclose(batched.cov(), whole.cov(), rtol=1e-5, atol=1e-7)


def test_bad_statistics_inputs_are_clear_errors() -> None:
    with pytest.raises(EvaluationError, match="at least 2 samples"):
        FeatureStats.from_features(np.ones((1, 4))).cov()
    with pytest.raises(EvaluationError, match="NaN/Inf"):
        FeatureStats.from_features(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(EvaluationError, match="NaN/Inf"):
        frechet_distance(np.zeros(2), np.eye(2), np.array([np.inf, 0]), np.eye(2))
    with pytest.raises(EvaluationError, match="covariances must be"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.warns(FewSamplesWarning, match="only 3 samples for 8-dimensional"):
        FeatureStats.from_features(pool3_like(7, 3, 8, 0.3)).cov()


def test_matrices_that_are_not_covariances_are_refused_not_scored() -> None:
    zero = np.zeros(3)
    negative = np.diag([1.0, 1.0, -5.0])  # once scored -4.0
    asymmetric = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # once 1.17
    with pytest.raises(EvaluationError, match="sigma1 is not positive semi-definite"):
        frechet_distance(zero, negative, zero, np.eye(3))
    with pytest.raises(EvaluationError, match="sigma2 is not positive semi-definite"):
        frechet_distance(zero, np.eye(3), zero, negative)
    with pytest.raises(EvaluationError, match="sigma1 is not symmetric"):
        frechet_distance(zero, asymmetric, zero, np.eye(3))
    # a singular covariance (fewer samples than dimensions) is a covariance: it is scored
    rows = np.random.default_rng(0).normal(size=(5, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        stats = FeatureStats.from_features(rows)
        sigma = stats.cov()
    assert frechet_distance(stats.mean(), sigma, stats.mean() + 1.0, sigma) == pytest.approx(
        64.0, rel=1e-6
    )


def test_mu_sigma_npz_is_read_by_cleanfid(tmp_path) -> None:
    from cleanfid.fid import frechet_distance as cleanfid_frechet

    a, b = pool3_like(8, 300, 32, 0.3), pool3_like(9, 300, 32, 0.4)
    save_mu_sigma_npz(tmp_path / "a.npz", FeatureStats.from_features(a))
    save_mu_sigma_npz(tmp_path / "b.npz", FeatureStats.from_features(b))
    sa, sb = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    reference = _quiet(cleanfid_frechet, sa["mu"], sa["sigma"], sb["mu"], sb["sigma"])
    assert ours(a, b) == pytest.approx(reference, rel=1e-9)


def _rank_main(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    features = pool3_like(10, 100, 16, 0.3)[rank::world]
    reduced = FeatureStats.from_features(features).all_reduce()
    np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **reduced.to_arrays())
    torch.distributed.destroy_process_group()


def test_all_reduce_across_two_gloo_ranks_equals_the_union(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    torch.multiprocessing.spawn(
        _rank_main, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True
    )
    whole = FeatureStats.from_features(pool3_like(10, 100, 16, 0.3))
    for rank in range(2):
        reduced = FeatureStats.from_arrays(dict(np.load(tmp_path / f"rank{rank}.npz")))
        assert reduced.n == 100
        np.testing.assert_allclose(reduced.cov(), whole.cov(), rtol=1e-12, atol=1e-14)
