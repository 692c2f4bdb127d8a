"""Procedural landscapes: determinism, the committed fixture, tileability, asymmetry, captions.

The fixture in tests/fixtures/procedural was made with (from the repository root)
    nuwa-data synth --kind image --n 6 --width 512 --height 256 --seed 0 \
        --out tests/fixtures/procedural
    (cd tests/fixtures/procedural && sha256sum landscape_*.png > SHA256SUMS)
Regenerate it only when the generator changes on purpose.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nuwa.data.landscapes import (
    CLOUD_COVERS,
    DATASET_NAME,
    GROUNDS,
    RIDGE_KINDS,
    TIMES_OF_DAY,
    caption_for,
    render_landscape,
    sample_scene,
)
from nuwa.io import sha256_bytes, sha256_file

FIXTURE = Path(__file__).parent / "fixtures" / "procedural"


def test_same_seed_gives_identical_bytes_and_different_seeds_differ() -> None:
    a, b = render_landscape(7, 192, 96), render_landscape(7, 192, 96)
    assert a.image.dtype == np.uint8 and a.image.shape == (96, 192, 3)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.params == b.params and a.caption == b.caption
    assert not np.array_equal(a.image, render_landscape(8, 192, 96).image)


def test_fresh_process_renders_the_same_bytes() -> None:
    """No hidden global state: another interpreter produces the same pixels."""
    code = (
        "from nuwa.data.landscapes import render_landscape; from nuwa.io import sha256_bytes; "
        "print(sha256_bytes(render_landscape(11, 128, 64).image.tobytes()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == sha256_bytes(render_landscape(11, 128, 64).image.tobytes())


def test_committed_fixture_files_match_their_sha256() -> None:
    pinned = dict(
        reversed(line.split()) for line in (FIXTURE / "SHA256SUMS").read_text().splitlines()
    )
    assert len(pinned) == 6
    for name, digest in pinned.items():
        assert sha256_file(FIXTURE / name) == digest, name


def test_generator_reproduces_the_fixture() -> None:
    """Same seed -> the fixture's pixels. On this machine they are identical; numpy's SIMD
    exp/power may differ by one float LSB on other CPUs, so allow rare +-1 after rounding."""
    rows = [json.loads(line) for line in (FIXTURE / "metadata.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == list(range(6))
    for row in rows:
        committed = np.asarray(Image.open(FIXTURE / row["file_name"]).convert("RGB"))
        scene = render_landscape(row["seed"], 512, 256)
        diff = np.abs(scene.image.astype(int) - committed.astype(int))
        assert diff.max() <= 1, row["file_name"]
        assert (diff > 0).mean() < 1e-3, row["file_name"]
        assert scene.caption == row["caption"]
        assert json.loads(json.dumps(asdict(scene.params))) == row["params"]


def test_any_width_is_horizontally_tileable() -> None:
    for width in (100, 333, 640):
        image = render_landscape(4, width, 128).image.astype(np.int32)
        seam = np.abs(image[:, 0] - image[:, -1]).mean()
        neighbours = np.abs(np.diff(image, axis=1)).mean()
        assert seam <= 2 * neighbours + 1, (width, seam, neighbours)


def test_rows_vary_far_more_than_columns() -> None:
    """Landscape asymmetry: median var(row means) / var(column means) on 256x256 crops."""
    ratios = []
    for seed in range(24):
        image = render_landscape(seed, 512, 256).image.astype(np.float64).mean(-1)
        for left in (0, 256):
            crop = image[:, left : left + 256]
            ratios.append(crop.mean(1).var() / (crop.mean(0).var() + 1e-9))
    assert np.median(ratios) > 10, np.median(ratios)


def test_caption_is_made_of_the_scene_parameters() -> None:
    numbers = {2: "two", 3: "three", 4: "four"}
    sky_words = {"day": "blue", "sunset": "sunset", "dusk": "dusk"}
    ground_words = {"meadow": "a grassy meadow", "desert": "a sandy desert", "lake": "a calm lake"}
    seen = set()
    for seed in range(60):
        p = sample_scene(seed)
        article = "an" if p.cloud_cover == "overcast" else "a"
        assert caption_for(p) == (
            f"{article} {p.cloud_cover} {sky_words[p.time_of_day]} sky over "
            f"{numbers[p.n_ridges]} ranges of {p.ridge_kind} above {ground_words[p.ground]}"
        )
        assert len(p.ridge_depths) == len(p.ridge_tops) == p.n_ridges
        assert list(p.ridge_depths) == sorted(p.ridge_depths, reverse=True)  # far to near
        assert min(p.ridge_tops) > 0 and max(p.ridge_tops) < p.horizon < 1  # sky, ridges, ground
        seen.update([p.time_of_day, p.cloud_cover, p.ridge_kind, p.ground, p.n_ridges])
    assert seen >= {*TIMES_OF_DAY, *CLOUD_COVERS, *RIDGE_KINDS, *GROUNDS, 2, 3, 4}


def _band_features(image: np.ndarray) -> np.ndarray:
    bands = np.array_split(image.astype(np.float32) / 255, 8, axis=0)
    return np.concatenate(
        [np.concatenate([b.mean((0, 1)) for b in bands])]
        + [
            [b.mean(-1).std() for b in bands],
            [np.abs(np.diff(b.mean(-1), axis=1)).mean() for b in bands],
        ]
    )


def test_captions_are_checkable_from_pixels() -> None:
    """A linear probe on band colour statistics recovers the caption's attributes from the image
    (held-out scenes; chance is 1/3), so text-to-image has a real text<->image link offline."""
    scenes = [render_landscape(seed, 128, 96) for seed in range(240)]
    features = np.array([_band_features(s.image) for s in scenes])
    features = (features - features[:160].mean(0)) / (features[:160].std(0) + 1e-6)
    design = np.c_[features, np.ones(len(features))]
    floors = {"time_of_day": 0.95, "ground": 0.95, "cloud_cover": 0.8, "ridge_kind": 0.7}
    for attribute, floor in floors.items():
        labels = np.array([getattr(s.params, attribute) for s in scenes])
        classes = sorted(set(labels))
        onehot = (labels[:, None] == np.array(classes)[None, :]).astype(np.float64)
        train = design[:160]
        weights = np.linalg.solve(train.T @ train + np.eye(train.shape[1]), train.T @ onehot[:160])
        accuracy = (np.array(classes)[(design[160:] @ weights).argmax(1)] == labels[160:]).mean()
        assert accuracy >= floor, (attribute, accuracy)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="seed"):
        render_landscape(-1, 64, 64)
    with pytest.raises(ValueError, match="16"):
        render_landscape(0, 8, 64)
    assert DATASET_NAME == "procedural-landscapes-v1"
