"""One entry point, `load_records`, for every data source; all of them yield the same `Record`.

Sources (a string, a path, or a ProceduralRecords):
  "procedural" / "procedural:N"  the embedded procedural landscapes (procedural-landscapes-v1)
  a folder of images             LHQ as released (lhq_1024/, lhq_1024_jpg/, lhq_256/): 7-digit
                                 index file names become ids "lhq_0001234"
  a folder with metadata.jsonl   a `datasets` imagefolder (one metadata.jsonl per split folder,
                                 or one at the root for a single split, as `nuwa-data synth` writes)
  a .parquet file or folder      e.g. the parquet files of a Hub mirror, read with `datasets`
  "hf://owner/name"              a Hub dataset, streamed (needs network; never used by tests)

Parquet and Hub rows carry no LHQ index, so they are matched to LHQ ids by content (file sha256,
then perceptual hash) against the hashes `nuwa-data verify` pinned in the manifest, never by row
order. Every image goes through the canonical preprocessing of records.py.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from nuwa.data import splits
from nuwa.data.landscapes import DATASET_NAME, render_landscape
from nuwa.data.records import (
    IMAGE_EXTENSIONS,
    DataError,
    Record,
    decode_image,
    load_image,
    preprocess,
)
from nuwa.io import sha256_bytes

LHQ_NAME = re.compile(r"^\d{7}$")
# Files that may sit beside LHQ images (the release's metadata.json) without being an error.
ALLOWED_NON_IMAGES = {"metadata.json", "synth.json"}
DEFAULT_PROCEDURAL_N = 64
# Disjoint seed ranges, so procedural train/val/test never share a scene.
PROCEDURAL_SEED_BASE = {"train": 0, "val": 1_000_000, "test": 2_000_000}
SOURCES_HELP = (
    "a folder of images, an imagefolder with metadata.jsonl, a .parquet file, "
    "'procedural[:N]', or hf://owner/name"
)


@dataclass(frozen=True)
class ProceduralRecords:
    """The embedded data set as a source: `n` landscapes of width x height from disjoint seeds.

    Ids are "proc_<seed>", text is the caption made from the scene parameters. Seeds start at
    PROCEDURAL_SEED_BASE[split] unless `first_seed` is given.
    """

    n: int = DEFAULT_PROCEDURAL_N
    width: int = 256
    height: int = 256
    split: str = "test"
    first_seed: int | None = None

    name = DATASET_NAME

    def seeds(self) -> range:
        if self.split not in PROCEDURAL_SEED_BASE:
            raise DataError(f"procedural split {self.split!r} unknown; use train, val or test")
        first = PROCEDURAL_SEED_BASE[self.split] if self.first_seed is None else self.first_seed
        return range(first, first + self.n)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Record]:
        for seed in self.seeds():
            scene = render_landscape(seed, self.width, self.height)
            yield Record(f"proc_{seed:07d}", scene.image, scene.caption)


def load_records(
    source: str | os.PathLike | ProceduralRecords,
    *,
    size: int | None = None,
    split: str | None = None,
    limit: int | None = None,
    manifest: str | os.PathLike | None = None,
) -> Iterator[Record]:
    """Yield Records (image uint8 [size, size, 3], or native [H, W, 3] if size is None).

    `split` selects "train"/"val"/"test": the LHQC-repro v1 split for LHQ sources, the split
    folder of an imagefolder, or a seed range of the procedural set. `manifest` (default: the
    packaged LHQC-repro manifest) supplies pinned hashes, captions and leak flags. Bad input
    raises DataError with a one-line message naming the file and the fix.
    """
    if split is not None and split not in splits.SPLITS:
        raise DataError(f"split {split!r} unknown; use one of {', '.join(splits.SPLITS)}")
    manifest = Path(manifest) if manifest is not None else splits.MANIFEST_PATH
    records = _open(source, size, split, manifest)
    return islice(records, limit) if limit is not None else records


def _open(source, size: int | None, split: str | None, manifest: Path) -> Iterator[Record]:
    if isinstance(source, ProceduralRecords):
        return iter(source)
    text = str(source)
    if text == "procedural" or text.startswith("procedural:"):
        count = text.partition(":")[2] or str(DEFAULT_PROCEDURAL_N)
        if not count.isdigit():
            raise DataError(f"{text!r}: write procedural:N with N a whole number of images")
        side = size or 256
        return iter(ProceduralRecords(int(count), side, side, split or "test"))
    if text.startswith("hf://"):
        return _hub_records(text.removeprefix("hf://"), size, split, manifest)
    path = Path(text)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; pass {SOURCES_HELP}")
    if path.is_file():
        if path.suffix != ".parquet":
            raise DataError(f"{path}: a data source must be {SOURCES_HELP}")
        return _parquet_records([path], size, split, manifest)
    if _metadata_files(path):
        return _imagefolder_records(path, size, split, manifest)
    parquet = sorted(path.glob("*.parquet"))
    if parquet and not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir()):
        return _parquet_records(parquet, size, split, manifest)
    return _folder_records(path, size, split, manifest)


# ---------------------------------------------------------------- LHQ-style image folders


def scan_image_folder(root: Path) -> list[Path]:
    """Sorted image files under `root` (recursive, hidden files skipped).

    A file that is not an image raises DataError, so a half-extracted archive or a stray file
    never silently changes what is measured.
    """
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; pass the folder that holds the images")
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.is_dir():
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            files.append(path)
        elif path.name not in ALLOWED_NON_IMAGES:
            raise DataError(
                f"{path}: not an image (expected {'/'.join(IMAGE_EXTENSIONS)}); "
                f"move it out of {root}"
            )
    if not files:
        raise DataError(f"{root}: no images found; pass the folder that holds the images")
    return files


def lhq_index(path: Path) -> int | None:
    """The LHQ index of a file named like 0001234.png, else None."""
    return int(path.stem) if LHQ_NAME.match(path.stem) else None


def _folder_records(
    root: Path, size: int | None, split: str | None, manifest: Path
) -> Iterator[Record]:
    files = scan_image_folder(root)
    lhq_named = any(lhq_index(f) is not None for f in files)
    index = _manifest_index(manifest) if lhq_named else _ManifestIndex({}, {}, {}, set())
    for path in files:
        lhq = lhq_index(path)
        if split is not None:
            if lhq is None or lhq >= splits.N_LHQ:
                raise DataError(
                    f"{path}: --split needs LHQ file names (7-digit index < {splits.N_LHQ}, "
                    f"e.g. 0001234.png); rename the files or drop --split"
                )
            if splits.split_of(lhq) != split or lhq in index.leaks:
                continue
        record_id = splits.lhq_id(lhq) if lhq is not None else path.stem
        yield Record(record_id, load_image(path, size), index.captions.get(lhq))


@dataclass(frozen=True)
class _ManifestIndex:
    by_sha256: dict[str, int]
    by_phash: dict[str, int]
    captions: dict[int, str]
    leaks: set[int]


@functools.lru_cache(maxsize=4)
def _read_manifest_index(path: Path, mtime_ns: int) -> _ManifestIndex:
    rows = splits.read_manifest(path)
    phash_counts: dict[str, int] = {}
    for r in rows:
        if r.phash:
            phash_counts[r.phash] = phash_counts.get(r.phash, 0) + 1
    return _ManifestIndex(
        by_sha256={h: r.lhq_index for r in rows for h in r.sha256.values()},
        # a perceptual hash shared by two LHQ images identifies neither of them
        by_phash={r.phash: r.lhq_index for r in rows if r.phash and phash_counts[r.phash] == 1},
        captions={r.lhq_index: r.caption for r in rows if r.caption},
        leaks={r.lhq_index for r in rows if r.leak_of is not None},
    )


def _manifest_index(path: Path) -> _ManifestIndex:
    """Lookups from a manifest, re-read whenever the file changes (verify pins in place)."""
    if not path.is_file():
        raise DataError(f"{path}: manifest not found; pass --manifest with an existing one")
    return _read_manifest_index(path, path.stat().st_mtime_ns)


# ---------------------------------------------------------------- datasets imagefolder


def _metadata_files(root: Path) -> list[Path]:
    return sorted([*root.glob("metadata.jsonl"), *root.glob("*/metadata.jsonl")])


def _check_metadata(metadata: Path) -> None:
    """Every row names an existing image: `datasets` would otherwise drop or fail obscurely."""
    with open(metadata, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(
                    f"{metadata}:{line_no}: not valid JSON; fix or delete this line"
                ) from None
            name = row.get("file_name") if isinstance(row, dict) else None
            if not isinstance(name, str):
                raise DataError(f"{metadata}:{line_no}: row has no file_name; add one")
            if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                raise DataError(
                    f"{metadata}:{line_no}: {name} is not an image file name; "
                    "an imagefolder lists images only"
                )
            if not (metadata.parent / name).is_file():
                raise DataError(
                    f"{metadata}:{line_no}: names {name}, which is missing from "
                    f"{metadata.parent}; restore the file or delete the row"
                )


def _imagefolder_records(
    root: Path, size: int | None, split: str | None, manifest: Path
) -> Iterator[Record]:
    import datasets

    for metadata in _metadata_files(root):
        _check_metadata(metadata)
    try:
        rows = datasets.load_dataset(
            "imagefolder", data_dir=str(root), split=split or "train", streaming=True
        )
    except ValueError as err:  # e.g. "Bad split: val. Available splits: ['train']"
        raise DataError(f"{root}: {err}; pick one of those splits") from None
    rows = rows.cast_column("image", datasets.Image(decode=False))
    yield from _rows_to_records(rows, str(root), size, None, manifest)


# ---------------------------------------------------------------- parquet and the Hub


def _parquet_records(
    files: list[Path], size: int | None, split: str | None, manifest: Path
) -> Iterator[Record]:
    import datasets

    rows = datasets.load_dataset(
        "parquet", data_files=[str(f) for f in files], split="train", streaming=True
    )
    if isinstance(rows.features, dict) and isinstance(rows.features.get("image"), datasets.Image):
        rows = rows.cast_column("image", datasets.Image(decode=False))
    yield from _rows_to_records(rows, str(files[0].parent), size, split, manifest)


def _hub_records(
    repo_id: str, size: int | None, split: str | None, manifest: Path
) -> Iterator[Record]:
    """Stream a Hub dataset's "train" split (e.g. larrygzlb1994/lhq_256); LHQC-repro splits
    are then selected by content hash, since the mirror's rows carry no LHQ index."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        raise DataError(
            f"hf://{repo_id}: HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set; unset both to stream "
            "it, or download its parquet files and pass their folder"
        )
    import datasets

    rows = datasets.load_dataset(repo_id, split="train", streaming=True)
    rows = rows.cast_column("image", datasets.Image(decode=False))
    yield from _rows_to_records(rows, f"hf://{repo_id}", size, split, manifest)


def _rows_to_records(
    rows: Iterable[dict], origin: str, size: int | None, split_filter: str | None, manifest: Path
) -> Iterator[Record]:
    """Decode `datasets` rows ({"image": {"bytes", "path"}, text/caption/id ...}) into Records.

    Ids come from an "id" or "lhq_index" column, an LHQ file name, or the manifest's pinned
    content hashes; `split_filter` (LHQC-repro split) needs one of these to find the index.
    """
    index: _ManifestIndex | None = None
    for row_no, row in enumerate(rows):
        image = row.get("image")
        if isinstance(image, dict):
            data, path = image.get("bytes"), image.get("path")
        else:
            data, path = image, None
        if not isinstance(data, bytes) and path is None:
            raise DataError(f"{origin}: row {row_no} has no 'image' column with image bytes")
        name = path or f"{origin} row {row_no}"
        if data is None:
            data = Path(path).read_bytes()
        lhq = row.get("lhq_index")
        if lhq is None and path is not None:
            lhq = lhq_index(Path(path))
        decoded = decode_image(data, name)
        if lhq is None and row.get("id") is None:
            index = index or _manifest_index(manifest)
            lhq = index.by_sha256.get(sha256_bytes(data))
            if lhq is None:
                lhq = index.by_phash.get(splits.perceptual_hash(decoded))
        if split_filter is not None:
            if lhq is None:
                raise DataError(
                    f"{name}: matches no LHQ image pinned in {manifest}, so "
                    "its LHQC-repro split is unknown; pin hashes first with "
                    "`nuwa-data verify --source <your LHQ folder>` or drop --split"
                )
            index = index or _manifest_index(manifest)
            if splits.split_of(int(lhq)) != split_filter or int(lhq) in index.leaks:
                continue
        if row.get("id") is not None:
            record_id = str(row["id"])
        elif lhq is not None:
            record_id = splits.lhq_id(int(lhq))
        else:
            record_id = f"sha256_{sha256_bytes(data)[:16]}"
        text = row.get("text", row.get("caption"))
        yield Record(record_id, preprocess(decoded, size, name), text)
