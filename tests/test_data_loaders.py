"""Every data source yields the same Record through the same canonical preprocessing."""

from __future__ import annotations

import io
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from optional import import_if_installed
from PIL import Image

from nuwa.data import splits
from nuwa.data.landscapes import render_landscape
from nuwa.data.loaders import ProceduralRecords, load_records
from nuwa.data.records import DataError, Record, load_image, preprocess
from nuwa.data.verify import verify


def _png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _landscape(seed: int, width: int = 48, height: int = 48) -> np.ndarray:
    return render_landscape(seed, width, height).image


def test_canonical_preprocessing_is_min_side_lanczos_then_centre_crop() -> None:
    image = Image.fromarray(_landscape(0, 300, 200))
    expected = np.asarray(image.resize((192, 128), Image.Resampling.LANCZOS))[:, 32:160]
    assert np.array_equal(preprocess(image, 128, "x"), expected)
    tall = Image.fromarray(_landscape(0, 100, 150))
    assert np.array_equal(preprocess(tall, 100, "x"), np.asarray(tall)[25:125])  # crop only
    assert preprocess(image, None, "x").shape == (200, 300, 3)
    with pytest.raises(
        DataError, match=r"x: image is 300x200, smaller than the requested size 256"
    ):
        preprocess(image, 256, "x")


def test_lhq_folder_ids_sizes_and_split(tmp_path: Path) -> None:
    root = tmp_path / "LHQ256" / "lhq_256"  # archives extract into a nested folder
    root.mkdir(parents=True)
    for index in (0, 5, 30, 31):
        Image.fromarray(_landscape(index, 64, 64)).save(root / f"{index:07d}.png")
    records = list(load_records(tmp_path / "LHQ256", size=32))
    assert [r.id for r in records] == ["lhq_0000000", "lhq_0000005", "lhq_0000030", "lhq_0000031"]
    assert all(r.image.shape == (32, 32, 3) and r.image.dtype == np.uint8 for r in records)
    assert all(r.text is None for r in records)  # the manifest has no captions yet
    assert records[1].image.tobytes() == load_image(root / "0000005.png", 32).tobytes()
    test = [r.id for r in load_records(tmp_path / "LHQ256", split="test")]
    assert test == ["lhq_0000005", "lhq_0000030"]  # 0 and 31 are train in LHQC-repro v1
    assert len(list(load_records(tmp_path / "LHQ256", limit=3))) == 3


def test_jpg_folder_like_lhq1024_jpg(tmp_path: Path) -> None:
    Image.fromarray(_landscape(1, 80, 80)).save(tmp_path / "0000001.jpg", quality=95)
    (record,) = load_records(tmp_path, size=40)
    assert record.id == "lhq_0000001" and record.image.shape == (40, 40, 3)


def test_imagefolder_with_metadata_per_split(tmp_path: Path) -> None:
    for split, indices in {"train": (0, 1), "test": (5, 30)}.items():
        folder = tmp_path / split
        folder.mkdir()
        rows = []
        for index in indices:
            Image.fromarray(_landscape(index)).save(folder / f"{index:07d}.png")
            rows.append({"file_name": f"{index:07d}.png", "text": f"caption {index}"})
        (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    test = list(load_records(tmp_path, split="test", size=32))
    assert [(r.id, r.text) for r in test] == [
        ("lhq_0000005", "caption 5"),
        ("lhq_0000030", "caption 30"),
    ]
    assert test[0].image.shape == (32, 32, 3)
    with pytest.raises(DataError, match="Bad split: val"):
        list(load_records(tmp_path, split="val"))


def test_synth_output_is_an_imagefolder_with_captions() -> None:
    fixture = Path(__file__).parent / "fixtures" / "procedural"
    records = list(load_records(fixture, limit=2))
    assert [r.id for r in records] == ["proc_0000000", "proc_0000001"]
    assert records[0].text == render_landscape(0, 512, 256).caption
    assert records[0].image.shape == (256, 512, 3)


def test_parquet_rows_get_lhq_ids_by_content_hash_not_row_order(tmp_path: Path) -> None:
    datasets = import_if_installed("datasets")
    lhq = tmp_path / "lhq_256"
    lhq.mkdir()
    for index in (0, 5, 30, 31):
        (lhq / f"{index:07d}.png").write_bytes(_png_bytes(_landscape(index)))
    manifest = tmp_path / "manifest.jsonl.gz"
    shutil.copy(splits.MANIFEST_PATH, manifest)
    verify(lhq, manifest, progress=False)  # pins the sha256 of each file

    files = sorted(lhq.iterdir())
    random.Random(0).shuffle(files)  # the mirror's row order means nothing
    table = datasets.Dataset.from_dict(
        {"image": [{"bytes": f.read_bytes(), "path": None} for f in files]},
        features=datasets.Features({"image": datasets.Image()}),
    )
    table.to_parquet(str(tmp_path / "mirror.parquet"))
    records = {r.id: r for r in load_records(tmp_path / "mirror.parquet", manifest=manifest)}
    assert set(records) == {"lhq_0000000", "lhq_0000005", "lhq_0000030", "lhq_0000031"}
    for index in (0, 5):
        assert np.array_equal(
            records[f"lhq_{index:07d}"].image, load_image(lhq / f"{index:07d}.png", None)
        )
    test = [
        r.id for r in load_records(tmp_path / "mirror.parquet", split="test", manifest=manifest)
    ]
    assert sorted(test) == ["lhq_0000005", "lhq_0000030"]

    unknown = tmp_path / "unknown.parquet"
    pd.DataFrame({"image": [_png_bytes(_landscape(77))], "text": ["x"]}).to_parquet(unknown)
    (record,) = load_records(unknown, manifest=manifest)
    assert record.id.startswith("sha256_") and record.text == "x"
    with pytest.raises(DataError, match="matches no LHQ image pinned"):
        list(load_records(unknown, split="test", manifest=manifest))


def test_parquet_folder_with_id_and_caption_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "image": [_png_bytes(_landscape(i, 40, 40)) for i in range(3)],
            "id": ["a", "b", "c"],
            "caption": ["one", "two", "three"],
        }
    )
    frame.to_parquet(tmp_path / "part-0.parquet")
    records = list(load_records(tmp_path, size=32))
    assert [(r.id, r.text, r.image.shape) for r in records] == [
        ("a", "one", (32, 32, 3)),
        ("b", "two", (32, 32, 3)),
        ("c", "three", (32, 32, 3)),
    ]


def test_procedural_source_like_any_other() -> None:
    records = list(load_records("procedural:3", size=64))
    assert [r.id for r in records] == ["proc_2000000", "proc_2000001", "proc_2000002"]
    assert records[0].text == render_landscape(2_000_000, 64, 64).caption
    assert np.array_equal(records[0].image, render_landscape(2_000_000, 64, 64).image)
    train = next(iter(load_records(ProceduralRecords(n=1, width=96, height=48, split="train"))))
    assert (
        isinstance(train, Record)
        and train.id == "proc_0000000"
        and train.image.shape == (48, 96, 3)
    )
    with pytest.raises(DataError, match="procedural:N"):
        load_records("procedural:many")


def test_hub_ids_never_touch_the_network_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="hf://larrygzlb1994/lhq_256: HF_HUB_OFFLINE"):
        list(load_records("hf://larrygzlb1994/lhq_256", size=256))


def test_unknown_split_and_missing_source(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="split 'dev' unknown"):
        load_records("procedural", split="dev")
    with pytest.raises(DataError, match=f"{tmp_path / 'nope'}: no such file or folder"):
        load_records(tmp_path / "nope")
