"""KID and IS: parity with clean-fid, torch-fidelity and torchmetrics on identical features, and
seeded determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from optional import import_if_installed

from evaluation import EvaluationError, inception_score, kernel_inception_distance


def features(seed: int, n: int = 120, dim: int = 64, shift: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal((n, dim)) * 0.5 + shift, 0.0)


def torch_fidelity_kid(a: np.ndarray, b: np.ndarray, *, subsets: int, subset_size: int,
                       seed: int) -> dict:  # fmt: skip
    """torch-fidelity's KID (cubic polynomial kernel) of features a and b. It is a test
    dependency (the [test] extra): a failed import fails the test."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    return kid_features_to_metric(
        torch.from_numpy(a),
        torch.from_numpy(b),
        kid_subsets=subsets,
        kid_subset_size=subset_size,
        rng_seed=seed,
        verbose=False,
        kid_kernel="poly",
        kid_kernel_poly_degree=3,
        kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1,
    )


def test_kid_single_full_subset_matches_all_three_libraries() -> None:
    a, b = features(0), features(1, shift=0.4)
    value, _, m = kernel_inception_distance(a, b, num_subsets=1, subset_size=len(a))
    assert m == len(a)
    from cleanfid.fid import kernel_distance

    references = {"clean-fid": kernel_distance(b, a, num_subsets=1, max_subset_size=len(a))}
    from torchmetrics.image.kid import poly_mmd

    references["torchmetrics"] = float(poly_mmd(torch.from_numpy(a), torch.from_numpy(b)))
    out = torch_fidelity_kid(a, b, subsets=1, subset_size=len(a), seed=2020)
    references["torch-fidelity"] = out["kernel_inception_distance_mean"]
    for name, reference in references.items():
        assert value == pytest.approx(reference, rel=1e-10, abs=1e-14), name


def test_kid_subsets_match_torch_fidelity_with_the_same_seed() -> None:
    a, b = features(2, n=90), features(3, n=80, shift=0.35)
    mean, std, _ = kernel_inception_distance(a, b, num_subsets=7, subset_size=50, seed=11)
    out = torch_fidelity_kid(a, b, subsets=7, subset_size=50, seed=11)
    assert mean == pytest.approx(out["kernel_inception_distance_mean"], rel=1e-10)
    assert std == pytest.approx(out["kernel_inception_distance_std"], rel=1e-8)


def test_kid_is_deterministic_and_caps_the_subset_size() -> None:
    a, b = features(4, n=30), features(5, n=40)
    with pytest.warns(UserWarning, match="subset size reduced from 1000 to 30"):
        first = kernel_inception_distance(a, b, num_subsets=5)
    with pytest.warns(UserWarning):
        assert kernel_inception_distance(a, b, num_subsets=5) == first
    with pytest.raises(EvaluationError, match="NaN/Inf"):
        kernel_inception_distance(np.full((4, 3), np.nan), b[:, :3])


def test_inception_score_matches_torch_fidelity() -> None:
    tf = import_if_installed("torch_fidelity.metric_isc")
    logits = np.random.default_rng(6).standard_normal((100, 1008)) * 3
    mean, std = inception_score(logits, splits=10, seed=2020)
    out = tf.isc_features_to_metric(
        torch.from_numpy(logits).float(), splits=10, shuffle=True, rng_seed=2020
    )
    # torch-fidelity gets float32 logits (its input contract); we cast the same values to float64.
    mean32, _ = inception_score(logits.astype(np.float32), splits=10, seed=2020)
    assert mean32 == pytest.approx(out["inception_score_mean"], rel=1e-10)
    assert mean == pytest.approx(out["inception_score_mean"], rel=1e-5)
    assert std >= 0
    with pytest.raises(EvaluationError, match="IS needs logits"):
        inception_score(logits[:5], splits=10)
