"""Block-FID@1 end to end: folder -> blocks -> surrogate features -> per-position and pooled FID,
pinned to a golden value committed with its metric id; plus the feature cache, stored reference
statistics, the block geometry and bad-input errors.

Regenerate the golden (only after an intended change, with a bumped version where the numbers
move): .venv/bin/python tests/test_eval_block_fid.py --write-golden
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import evaluation
from evaluation import (
    SURROGATE_INCEPTION,
    BlockFID,
    EvaluationError,
    MetricIdMismatch,
    Region,
    block_positions,
    require_same_metric,
)
from nuwa.data.landscapes import render_landscape

GOLDEN = Path(__file__).parent / "fixtures" / "eval" / "block_fid_e2e.json"
GOLDEN_COMMAND = ".venv/bin/python tests/test_eval_block_fid.py --write-golden"
# Right-extend geometry at small scale: 384x640 canvases, the right 384 columns generated; the
# region holds one aligned block (r0c1) and one half-block-shifted block (s0c1).
CANVAS = (384, 640)
REGION = Region(top=0, left=256, height=384, width=384)
GENERATED_SEEDS, REAL_SEEDS = range(5), range(100, 105)


def write_canvases(root: Path) -> tuple[Path, Path]:
    """Procedural landscapes as PNG folders: (generated, real)."""
    folders = []
    for name, seeds in (("generated", GENERATED_SEEDS), ("real", REAL_SEEDS)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            image = render_landscape(seed, width=CANVAS[1], height=CANVAS[0]).image
            Image.fromarray(image).save(folder / f"{seed:04d}.png")
        folders.append(folder)
    return folders[0], folders[1]


def make_metric(cache_dir: Path | None = None, **overrides) -> BlockFID:
    options = {"region": REGION, "shifted_pass": True, "progress": False, "cache_dir": cache_dir}
    return BlockFID(SURROGATE_INCEPTION, **(options | overrides))


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    root = tmp_path_factory.mktemp("block_fid")
    generated, real = write_canvases(root)
    metric = make_metric(root / "cache")
    metric.update(generated, real=False)
    metric.update(real, real=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", evaluation.FewSamplesWarning)  # 5 samples, 2048 dims
        result = metric.compute()
    return root, generated, real, metric, result


@pytest.mark.slow
def test_block_fid_end_to_end_matches_golden(e2e) -> None:
    _, _, _, metric, result = e2e
    golden = json.loads(GOLDEN.read_text())
    assert result.position_mean.metric_id.digest == golden["metric_id"], (
        "the Block-FID definition changed; if intended, bump its version and regenerate with "
        + GOLDEN_COMMAND
    )
    assert result.pooled.metric_id.digest == golden["pooled_metric_id"]
    assert sorted(result.per_position) == ["r0c1", "s0c1"]
    # Features agree to ~1e-7 across thread counts and batch sizes here; rendering and BLAS can
    # move the last bits across machines, so the pin is loose enough for that, tight for bugs.
    assert result.position_mean.value == pytest.approx(golden["position_mean"], rel=2e-3)
    assert result.pooled.value == pytest.approx(golden["pooled"], rel=2e-3)
    for key, value in golden["per_position"].items():
        assert result.per_position[key] == pytest.approx(value, rel=2e-3)
    assert result.position_mean.value == pytest.approx(np.mean(list(result.per_position.values())))
    assert result.position_mean.n == {"generated": 5, "real": 5}
    assert result.pooled.details["blocks"] == {"generated": 10, "real": 10}
    assert not result.position_mean.metric_id.paper_comparable
    assert "surrogate" in result.position_mean.metric_id.label
    with pytest.raises(MetricIdMismatch):
        require_same_metric([result.position_mean.metric_id, result.pooled.metric_id])


@pytest.mark.filterwarnings("ignore::evaluation.FewSamplesWarning")
def test_rerun_from_cache_extracts_nothing(e2e, monkeypatch) -> None:
    root, generated, real, first, _ = e2e

    def no_model(name):
        raise AssertionError("the extractor was loaded although every chunk is cached")

    monkeypatch.setattr("evaluation.metric_base.load_extractor", no_model)
    again = make_metric(root / "cache")
    again.update(generated, real=False)
    again.update(real, real=True)
    assert again.cache.misses == 0 and again.cache.hits == 2
    for side in ("generated", "real"):
        for key, stats in first.stats[side].items():
            np.testing.assert_array_equal(again.stats[side][key].sum_outer, stats.sum_outer)
    assert again.manifests() == first.manifests()
    functional = evaluation.block_fid(
        generated, real, region=REGION, extractor=SURROGATE_INCEPTION, shifted_pass=True,
        cache_dir=root / "cache", progress=False,
    )  # fmt: skip
    assert functional.per_position == e2e[4].per_position


def test_reference_statistics_are_stored_with_their_metric_id(e2e, tmp_path) -> None:
    _, _, _, metric, _ = e2e
    metric.save_real_stats(tmp_path / "real.npz")
    reused = make_metric()
    reused.load_real_stats(tmp_path / "real.npz", manifest_hash=metric.manifests()["real"])
    assert reused.manifests() == {"real": metric.manifests()["real"]}
    for key, stats in metric.stats["real"].items():
        assert reused.stats["real"][key].n == stats.n
        np.testing.assert_array_equal(reused.stats["real"][key].sum_outer, stats.sum_outer)
    with pytest.raises(MetricIdMismatch, match="holds statistics for"):
        make_metric(shifted_pass=False).load_real_stats(tmp_path / "real.npz")
    with pytest.raises(EvaluationError, match="recompute it"):
        make_metric().load_real_stats(tmp_path / "real.npz", manifest_hash="0" * 64)


def test_features_match_cleanfid_folder_pipeline_with_the_same_extractor(e2e) -> None:
    """Our loader + clean resize + batching gives clean-fid's features for the same module."""
    from cleanfid.fid import get_folder_features

    _, generated, _, _, _ = e2e
    subset = generated.parent / "subset"
    subset.mkdir()
    for path in sorted(generated.glob("*.png"))[:3]:
        (subset / path.name).write_bytes(path.read_bytes())
    fid = evaluation.FID(SURROGATE_INCEPTION, progress=False, batch_size=2)
    ours = fid.extract(subset)
    model = fid.model
    reference = get_folder_features(
        str(subset),
        model=lambda x: model(x)["pool3"],
        num_workers=0,
        batch_size=4,
        device="cpu",
        mode="clean",
        verbose=False,
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-6)


def test_block_positions_grid_shift_and_region() -> None:
    assert [p[0] for p in block_positions(512, 512)] == ["r0c0", "r0c1", "r1c0", "r1c1"]
    shifted = block_positions(512, 512, shifted_pass=True)
    assert shifted[-1] == ("s0c0", 128, 128) and len(shifted) == 5
    right_half = Region(0, 512, 1024, 512)
    keys = {k for k, _, _ in block_positions(1024, 1024, 256, True, right_half)}
    assert keys == {
        "r0c2",
        "r0c3",
        "r1c2",
        "r1c3",
        "r2c2",
        "r2c3",
        "r3c2",
        "r3c3",
        "s0c2",
        "s1c2",
        "s2c2",
    }
    assert block_positions(200, 1000) == []


def test_metric_ids_change_with_every_protocol_parameter() -> None:
    base = make_metric().metric_id
    variants = [
        make_metric(shifted_pass=False),
        make_metric(region=Region(0, 0, 384, 512)),
        make_metric(region=None),
        make_metric(block=128),
        BlockFID(evaluation.PAPER_INCEPTION, region=REGION, shifted_pass=True),
    ]
    digests = {base.digest} | {m.metric_id.digest for m in variants}
    assert len(digests) == 1 + len(variants)
    assert make_metric().metric_id == base  # deterministic
    assert BlockFID(evaluation.PAPER_INCEPTION, region=REGION).metric_id.paper_comparable
    assert not BlockFID(evaluation.PAPER_INCEPTION, shifted_pass=True).metric_id.paper_comparable
    assert not make_metric(shifted_pass=False).metric_id.paper_comparable  # surrogate weights


def test_bad_inputs_are_clear_errors(tmp_path) -> None:
    metric = make_metric()
    rgb = np.zeros((256, 256, 3), np.uint8)
    with pytest.raises(EvaluationError, match="mixed image sizes"):
        metric.update([rgb, np.zeros((256, 512, 3), np.uint8)], real=False)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "b.png")
    with pytest.raises(EvaluationError, match="mode 'L'"):
        metric.update(tmp_path, real=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match="contains no files"):
        metric.update(tmp_path / "empty", real=False)
    with pytest.raises(EvaluationError, match="image set is empty"):
        metric.update([], real=False)
    with pytest.raises(EvaluationError, match="dtype float32"):
        metric.update([rgb.astype(np.float32)], real=False)
    with pytest.raises(EvaluationError, match="no 256x256 block inside region"):
        metric.update([rgb], real=False)  # 256x256 canvas, region starts at column 256
    one = make_metric(region=None)
    one.update([rgb], real=False)
    one.update([rgb, rgb], real=True)
    with pytest.raises(EvaluationError, match="block position r0c0 has 1 generated block"):
        one.compute()


def test_nan_features_are_an_error() -> None:
    import torch

    class NaNExtractor(torch.nn.Module):
        def forward(self, x):
            return {"pool3": torch.full((x.shape[0], 2048), float("nan"))}

    metric = make_metric(region=None)
    metric._model = NaNExtractor()
    with pytest.raises(EvaluationError, match="NaN/Inf features"):
        metric.update([np.zeros((256, 256, 3), np.uint8)], real=False)


def write_golden(root: Path) -> None:
    generated, real = write_canvases(root)
    metric = make_metric()
    metric.update(generated, real=False)
    metric.update(real, real=True)
    result = metric.compute()
    GOLDEN.write_text(
        json.dumps(
            {
                "metric_id": result.position_mean.metric_id.digest,
                "metric_label": result.position_mean.metric_id.label,
                "pooled_metric_id": result.pooled.metric_id.digest,
                "position_mean": result.position_mean.value,
                "pooled": result.pooled.value,
                "per_position": result.per_position,
                "command": GOLDEN_COMMAND,
                "data": f"render_landscape seeds {list(GENERATED_SEEDS)} vs {list(REAL_SEEDS)}, "
                f"{CANVAS[0]}x{CANVAS[1]}, region {REGION.as_list()}",
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    print(GOLDEN.read_text())


if __name__ == "__main__" and "--write-golden" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_golden(Path(tmp))
