"""The LHQC-repro v1 split, the committed manifest, hash pinning (verify) and leakage checks."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nuwa.data import splits
from nuwa.data.landscapes import render_landscape
from nuwa.data.loaders import load_records
from nuwa.data.records import DataError
from nuwa.data.verify import verify


def test_split_digests_match_the_published_rule() -> None:
    indices = splits.split_indices()
    assert (
        splits.split_digest(indices["test"])
        == splits.TEST_DIGEST
        == ("6fce0b1bd23182171544993a2821c16f603a0ce9cbdf80ee31137a086f552f69")
    )
    assert (
        splits.split_digest(indices["val"])
        == splits.VAL_DIGEST
        == ("47f78e98a00b011fcbe4ed3188b074ebce9eaf5f3cd195135139622954d39d23")
    )
    assert [len(indices[s]) for s in ("train", "val", "test")] == [84_000, 1_000, 5_000]
    assert indices["test"][:10] == (5, 30, 43, 61, 63, 78, 79, 82, 106, 107)
    every = sorted(indices["train"] + indices["val"] + indices["test"])
    assert every == list(range(splits.N_LHQ))  # a partition: no index in two splits
    per_decile = np.bincount(np.array(indices["test"]) // 9_000)
    assert np.all(np.abs(per_decile - 500) <= 60), per_decile  # spread over LHQ's likelihood order


def test_committed_manifest_agrees_with_the_rule() -> None:
    rows = splits.read_manifest()
    assert [r.lhq_index for r in rows] == list(range(splits.N_LHQ))
    digests = splits.manifest_digests(rows)
    assert digests["test"] == splits.TEST_DIGEST and digests["val"] == splits.VAL_DIGEST
    assert all(splits.split_of(r.lhq_index) == r.split for r in rows[:2000])


def test_manifest_writes_are_byte_reproducible(tmp_path: Path) -> None:
    rows = splits.build_manifest()[:50]
    rows[5].sha256["lhq256_png"] = "ab" * 32
    splits.write_manifest(rows, tmp_path / "a.jsonl.gz")
    splits.write_manifest(rows, tmp_path / "b.jsonl.gz")
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    assert splits.read_manifest(tmp_path / "a.jsonl.gz") == rows


def test_perceptual_hash_survives_reencoding_but_tells_scenes_apart() -> None:
    image = Image.fromarray(render_landscape(3, 256, 256).image)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    jpeg = Image.open(buffer)
    small = image.resize((128, 128), Image.Resampling.LANCZOS)
    reference = splits.perceptual_hash(image)
    assert splits.hamming(reference, splits.perceptual_hash(jpeg)) <= splits.NEAR_DUPLICATE_BITS
    assert splits.hamming(reference, splits.perceptual_hash(small)) <= splits.NEAR_DUPLICATE_BITS
    other = Image.fromarray(render_landscape(4, 256, 256).image)
    assert splits.hamming(reference, splits.perceptual_hash(other)) > 8


def _lhq_folder(root: Path, pictures: dict[int, int]) -> Path:
    """A fake LHQ256-style folder: {lhq index: procedural seed of its picture} as 0000005.png."""
    root.mkdir(parents=True)
    for index, seed in pictures.items():
        Image.fromarray(render_landscape(seed, 64, 64).image).save(root / f"{index:07d}.png")
    return root


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    copy = tmp_path / "manifest.jsonl.gz"
    shutil.copy(splits.MANIFEST_PATH, copy)
    return copy


def test_verify_pins_on_first_use_then_checks(tmp_path: Path, manifest: Path) -> None:
    # 5 and 30 are test images; 0 and 1 are train, and 0 is the same picture as test image 5.
    folder = _lhq_folder(tmp_path / "lhq_256", {5: 100, 30: 101, 0: 100, 1: 102})
    first = verify(folder, manifest, progress=False)
    assert (first.files, first.pinned, first.verified, first.mismatched) == (4, 4, 0, [])
    assert first.shared_indices == 0 and first.duplicates == [(0, 5)] and first.ok
    rows = {r.lhq_index: r for r in splits.read_manifest(manifest)}
    assert set(rows[5].sha256) == {"lhq64_png"} and rows[5].phash and rows[0].leak_of == 5

    second = verify(folder, manifest, progress=False)
    assert (second.pinned, second.verified, second.mismatched) == (0, 4, [])

    Image.fromarray(render_landscape(103, 64, 64).image).save(folder / "0000030.png")
    third = verify(folder, manifest, progress=False)
    assert third.mismatched == [str(folder / "0000030.png")] and not third.ok

    train = [r.id for r in load_records(folder, split="train", manifest=manifest)]
    assert train == ["lhq_0000001"]  # lhq_0000000 duplicates a test image, so it is excluded
    test = [r.id for r in load_records(folder, split="test", manifest=manifest)]
    assert test == ["lhq_0000005", "lhq_0000030"]


def test_verify_rejects_foreign_files_and_edited_manifests(tmp_path: Path, manifest: Path) -> None:
    folder = _lhq_folder(tmp_path / "data", {7: 1})
    Image.fromarray(render_landscape(2, 32, 32).image).save(folder / "holiday.png")
    with pytest.raises(DataError, match="holiday.png: not an LHQ file name"):
        verify(folder, manifest, progress=False)
    rows = splits.read_manifest(manifest)
    rows[5].split, rows[0].split = "train", "test"
    splits.write_manifest(rows, manifest)
    with pytest.raises(DataError, match="splits differ"):
        verify(folder, manifest, progress=False)


def test_cross_split_duplicates_use_hamming_distance() -> None:
    rows = [
        splits.ManifestRow(0, "train", phash="ffff0000ffff0000"),
        splits.ManifestRow(1, "train", phash="ffff0000ffff0003"),  # 2 bits from the test image
        splits.ManifestRow(2, "val", phash="0000ffff0000ffff"),
        splits.ManifestRow(5, "test", phash="ffff0000ffff0000"),
    ]
    assert splits.cross_split_duplicates(rows) == [(0, 5), (1, 5)]
