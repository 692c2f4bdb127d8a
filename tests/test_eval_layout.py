"""Row-profile L1 (``evaluation.layout``): its value by hand, that it sees layout rather than
texture, its interval and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import EvaluationError, RowProfileL1
from nuwa.data.landscapes import render_landscape


@pytest.fixture(scope="module")
def scenes() -> np.ndarray:
    return np.stack([render_landscape(2_000_000 + i, 128, 128).image for i in range(8)])


def score(generated: np.ndarray, real: np.ndarray, bootstrap: int = 0):
    metric = RowProfileL1(bootstrap=bootstrap)
    metric.update(generated, real)
    return metric.compute()


def test_value_by_hand_and_the_shuffled_level():
    rng = np.random.default_rng(0)
    fake, real = (rng.integers(0, 256, (3, 8, 5, 3), dtype=np.uint8) for _ in range(2))
    rows = lambda x: x.astype(np.float64).mean(axis=2)  # noqa: E731
    by_hand = [np.abs(rows(fake)[i] - rows(real)[i]).mean() for i in range(3)]
    shuffled = [np.abs(rows(fake)[i] - rows(real)[i - 1]).mean() for i in range(3)]
    result = score(fake, real)
    assert result.value == pytest.approx(np.mean(by_hand), rel=1e-12)
    assert result.details["shuffled_scene"] == pytest.approx(np.mean(shuffled), rel=1e-12)
    assert result.n == {"pairs": 3} and result.metric_id.paper_comparable is False
    assert score(real, real).value == 0.0


def test_it_sees_layout_not_texture(scenes):
    """Upside down or another scene scores far above mild noise and a horizontal flip (the same
    rows), the damage a texture statistic would rank the other way round."""
    rng = np.random.default_rng(1)
    noisy = np.clip(scenes + rng.normal(0, 8, scenes.shape), 0, 255).astype(np.uint8)
    damaged = {
        "noise": score(noisy, scenes).value,
        "mirrored": score(scenes[:, :, ::-1], scenes).value,
        "upside_down": score(scenes[:, ::-1], scenes).value,
        "other_scene": score(np.roll(scenes, 1, axis=0), scenes).value,
    }
    assert damaged["mirrored"] < 1e-9 < damaged["noise"] < 2
    assert damaged["upside_down"] > 10 * damaged["noise"]
    assert damaged["other_scene"] > 5 * damaged["noise"]


def test_interval_over_pairs_holds_the_value(scenes):
    result = score(scenes[:, ::-1], scenes, bootstrap=50)
    assert result.interval.low <= result.value <= result.interval.high
    assert result.interval.replicates == 50


def test_errors_are_one_line(scenes):
    with pytest.raises(EvaluationError, match="pairs; got 2 generated and 3 real"):
        score(scenes[:2], scenes[:3])
    with pytest.raises(EvaluationError, match="one size"):
        score(scenes[:2, :64], scenes[:2])
    with pytest.raises(EvaluationError, match="at least 2 pairs"):
        score(scenes[:1], scenes[:1])
