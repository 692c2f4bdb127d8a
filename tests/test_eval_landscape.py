"""The landscape feature network and the metrics built on it: provenance, determinism, bad input,
and that the offline metrics see what they claim to see (small n, fast)."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from benchmarks.diagnostics.metric_sanity import disturb, video_clips
from evaluation import FID, LANDSCAPE_FEATURES, EvaluationError, WeightsError, get_extractor_spec
from evaluation import extractors as registry
from evaluation.attribute_agreement import AttributeAgreement, caption_labels, derangement
from evaluation.extractors.landscape import ATTRIBUTES, detail_statistics
from evaluation.frechet import fid_from_features
from evaluation.landscape_train import (
    HELDOUT_SEED_BASE,
    TRAIN_SEED_BASE,
    TrainConfig,
    assert_disjoint_seeds,
    scene_views,
)
from evaluation.motion_fd import MotionFD, motion_descriptors
from nuwa.data.landscapes import caption_attributes, caption_for, render_landscape, sample_scene
from nuwa.data.loaders import PROCEDURAL_SEED_BASE

TEST = PROCEDURAL_SEED_BASE["test"]


@pytest.fixture(scope="module")
def scenes():
    return [render_landscape(seed, 256, 256) for seed in range(TEST, TEST + 48)]


def test_packaged_weights_match_the_pinned_hash_and_are_small():
    weights = get_extractor_spec(LANDSCAPE_FEATURES).weights
    path = weights.resolve()  # raises unless the SHA-256 pinned in code matches
    assert path == weights.packaged and path.stat().st_size <= 5 * 2**20


def test_features_are_deterministic_and_batch_independent(scenes):
    images = [scene.image for scene in scenes[:6]]
    first = FID(LANDSCAPE_FEATURES, progress=False).extract(images)
    again = FID(LANDSCAPE_FEATURES, progress=False, batch_size=2).extract(images[:3])
    assert first.shape == (6, 64)
    np.testing.assert_array_equal(FID(LANDSCAPE_FEATURES, progress=False).extract(images), first)
    np.testing.assert_allclose(again, first[:3], rtol=0, atol=1e-5)


def test_metric_id_changes_with_the_weights_hash(monkeypatch):
    before = FID(LANDSCAPE_FEATURES).metric_id
    spec = get_extractor_spec(LANDSCAPE_FEATURES)
    other = dataclasses.replace(spec, weights=dataclasses.replace(spec.weights, sha256="0" * 64))
    monkeypatch.setitem(registry._REGISTRY, LANDSCAPE_FEATURES, other)
    after = FID(LANDSCAPE_FEATURES).metric_id
    assert after != before and not after.paper_comparable
    assert "landscape_net.procedural_v1@1" in after.label


def test_a_weights_file_with_a_wrong_hash_is_refused(tmp_path, monkeypatch):
    spec = get_extractor_spec(LANDSCAPE_FEATURES)
    bad = tmp_path / spec.weights.filename
    shutil.copyfile(spec.weights.packaged, bad)
    with open(bad, "r+b") as f:  # flip one byte of the tensors
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    monkeypatch.setenv("NUWA_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="refusing to load it") as error:
        FID(LANDSCAPE_FEATURES, progress=False).extract([np.zeros((64, 64, 3), np.uint8)] * 2)
    assert "\n" not in str(error.value)


def test_a_missing_weights_file_says_where_to_put_it(tmp_path, monkeypatch):
    spec = get_extractor_spec(LANDSCAPE_FEATURES)
    gone = dataclasses.replace(spec.weights, packaged=tmp_path / "nowhere.safetensors")
    monkeypatch.setitem(
        registry._REGISTRY, LANDSCAPE_FEATURES, dataclasses.replace(spec, weights=gone)
    )
    monkeypatch.setenv("NUWA_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("NUWA_WEIGHTS_LIBRARY_CACHES", "0")
    with pytest.raises(WeightsError, match=f"not found; put it at {tmp_path}"):
        FID(LANDSCAPE_FEATURES, progress=False).extract([np.zeros((64, 64, 3), np.uint8)] * 2)


def test_nan_features_are_a_one_line_error(monkeypatch):
    metric = FID(LANDSCAPE_FEATURES, progress=False)

    def nan_model(x):
        return {"layout": torch.full((len(x), 64), float("nan"))}

    monkeypatch.setattr(metric, "_model", nan_model)
    with pytest.raises(EvaluationError, match="NaN/Inf features"):
        metric.extract([np.zeros((64, 64, 3), np.uint8)] * 2)


def test_evaluator_seeds_are_disjoint_from_every_split(monkeypatch):
    assert_disjoint_seeds(TrainConfig())
    assert min(TRAIN_SEED_BASE, HELDOUT_SEED_BASE) >= max(PROCEDURAL_SEED_BASE.values()) + 10**6
    monkeypatch.setattr("evaluation.landscape_train.TRAIN_SEED_BASE", TEST + 5)
    with pytest.raises(ValueError, match="overlap"):
        assert_disjoint_seeds(TrainConfig())


def test_training_views_and_their_labels():
    views, labels = scene_views(TRAIN_SEED_BASE)
    assert views.shape == (6, 128, 128, 3) and views.dtype == np.uint8
    whole, top_left, bottom_left = labels[0], labels[1], labels[3]
    np.testing.assert_allclose(whole["cover"].sum(0), 1.0, atol=1e-5)
    # The top blocks of a scene hold no ground; the bottom ones are mostly ground.
    assert top_left["cover"][3].max() == 0 and bottom_left["cover"][3, -1].min() == 1
    assert whole["horizon"][0] == pytest.approx(sample_scene(TRAIN_SEED_BASE).horizon)


def test_detail_statistics_fall_with_blur(scenes):
    image = torch.from_numpy(scenes[0].image).permute(2, 0, 1)[None].float()
    blurred = torch.from_numpy(disturb("blur", 4.0, [scenes[0].image], [])[0])
    sharp = detail_statistics(image, 4)
    soft = detail_statistics(blurred.permute(2, 0, 1)[None].float(), 4)
    assert (soft[:, 0] < sharp[:, 0]).float().mean() > 0.9


@pytest.mark.parametrize("kind", ["vflip", "half_swap", "band_shuffle", "noise", "hue"])
def test_landscape_fid_sees_each_disturbance(scenes, kind):
    images = [scene.image for scene in scenes]
    reference, second, donors = images[:16], images[16:32], images[32:48]
    metric = FID(LANDSCAPE_FEATURES, progress=False)
    ref = metric.extract(reference)

    def fid(other):
        return fid_from_features(metric.extract(other), ref)

    floor = fid(second)
    assert fid(disturb(kind, LEVEL_FULL[kind], second, donors)) > 2 * floor


LEVEL_FULL = {"vflip": 1.0, "half_swap": 1.0, "band_shuffle": 1.0, "noise": 0.25, "hue": 120.0}


def test_disturbances_touch_the_fraction_they_name(scenes):
    images = [scene.image for scene in scenes[:8]]
    for kind in ("vflip", "half_swap", "band_shuffle"):
        out = disturb(kind, 0.5, images, images[::-1])
        changed = sum(not np.array_equal(a, b) for a, b in zip(out, images, strict=True))
        assert changed == 4, kind


def test_caption_attributes_invert_captions():
    for seed in range(50):
        params = sample_scene(seed)
        found = caption_attributes("a camera panning right across " + caption_for(params))
        assert found == {name: getattr(params, name) for name in ATTRIBUTES}
    assert caption_attributes("a photo of a cat") is None


def test_attribute_agreement_beats_shuffled_captions(scenes):
    metric = AttributeAgreement(LANDSCAPE_FEATURES, progress=False)
    metric.update([s.image for s in scenes], [s.caption for s in scenes])
    result = metric.compute()
    assert result.value > result.details["shuffled_captions"] + 0.2
    assert set(result.details["per_attribute"]) == set(ATTRIBUTES)


def test_attribute_agreement_refuses_foreign_captions():
    with pytest.raises(EvaluationError, match="not a procedural-landscapes caption"):
        caption_labels(["a mountain lake at dawn"])
    perm = derangement(10)
    assert sorted(perm.tolist()) == list(range(10)) and not np.any(perm == np.arange(10))


def test_motion_descriptors_order_pan_frozen_and_slideshow():
    features = np.cumsum(np.full((2, 16, 4), 0.1), axis=1)  # a steady drift
    frozen = np.zeros((1, 16, 4))
    steady, still = motion_descriptors(features), motion_descriptors(frozen)
    assert np.all(np.diff(steady[0]) > 0) and np.all(still < steady)
    with pytest.raises(EvaluationError, match="more than 8 frames"):
        motion_descriptors(np.zeros((1, 8, 4)))


@pytest.mark.slow
def test_motion_fd_ranks_real_pans_first():
    clips = video_clips(8)
    metric = MotionFD(LANDSCAPE_FEATURES, progress=False)
    reference = metric.descriptors(clips["reference"])

    def distance(kind):
        return fid_from_features(metric.descriptors(clips[kind]), reference)

    real = distance("real pans (second set)")
    assert all(distance(kind) > 3 * real for kind in ("slideshow", "frozen", "shuffled order"))


def test_the_battery_check_flags_weak_and_non_monotone_disturbances():
    from benchmarks.diagnostics.metric_sanity import LEVELS, check

    def rows(values):
        return [
            {"level": lv, "value": v, "times_floor": v}
            for lv, v in zip(LEVELS["noise"], values, strict=True)
        ]

    good = {"floor": {"value": 1.0}} | {kind: rows([2, 4, 8, 16]) for kind in LEVELS}
    assert check({"x": good}, "x") == []
    weak = good | {"blur": rows([2, 3, 4, 5]), "hue": rows([2, 12, 11, 20])}
    problems = check({"x": weak}, "x")
    assert any(p.startswith("blur: full level 5.0x") for p in problems)
    assert any(p.startswith("hue: FID does not rise") for p in problems)


def test_bundle_history_lists_the_bundle_commits_oldest_first():
    from benchmarks.experiments.bundle_history import bundle_commits

    commits = bundle_commits()
    assert len(commits) >= 4 and len(set(commits)) == len(commits)
