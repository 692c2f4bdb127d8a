"""`nuwa-data verify`: pin LHQ file hashes on first use, check them later, and check leakage.

Trust on first use: the committed manifest has no hashes (we never had the pixels). The first
run over a user's LHQ folder records each file's sha256 (per variant, e.g. "lhq256_png") and a
perceptual hash; later runs recompute the sha256 and report every file that changed. Pins are
saved atomically every `checkpoint_every` files, so a killed run keeps its finished work.

Leakage: train and test must share no LHQ index (true by construction; checked in case the
manifest was edited) and no picture. LHQ contains exact and near duplicates, so every train/val
image whose perceptual hash is within NEAR_DUPLICATE_BITS of a test image is flagged in the
manifest (`leak_of`) and dropped by the loaders from train/val.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from nuwa.data import splits
from nuwa.data.loaders import lhq_index, scan_image_folder
from nuwa.data.records import DataError, decode_image


@dataclass
class VerifyReport:
    """What one verify run found; `ok` is False on any hash mismatch or shared index."""

    manifest: Path
    files: int = 0
    pinned: int = 0
    verified: int = 0
    mismatched: list[str] = field(default_factory=list)
    shared_indices: int = 0
    duplicates: list[tuple[int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched and self.shared_indices == 0

    def summary(self) -> str:
        return (
            f"{self.files} files: {self.verified} verified, {self.pinned} newly pinned, "
            f"{len(self.mismatched)} mismatched; leakage: {self.shared_indices} shared "
            f"train/test indices, {len(self.duplicates)} train/val images duplicating a test "
            f"image (flagged and excluded from train/val) [manifest {self.manifest}]"
        )


def verify(
    source: str | Path,
    manifest: str | Path = splits.MANIFEST_PATH,
    *,
    progress: bool = True,
    checkpoint_every: int = 1000,
) -> VerifyReport:
    """Pin or check the hashes of every LHQ file under `source` against `manifest` (in place)."""
    source, manifest = Path(source), Path(manifest)
    if not manifest.is_file():
        raise DataError(f"{manifest}: manifest not found; pass --manifest with an existing one")
    rows = splits.read_manifest(manifest)
    expected = {"test": splits.TEST_DIGEST, "val": splits.VAL_DIGEST}
    digests = splits.manifest_digests(rows)
    if any(digests[name] != digest for name, digest in expected.items()):
        raise DataError(
            f"{manifest}: its splits differ from the {splits.SPLIT_NAME} rule; restore the "
            "committed manifest (git checkout) instead of editing it"
        )
    by_index = {r.lhq_index: r for r in rows}
    report = VerifyReport(manifest)
    files = scan_image_folder(source)
    unsaved = 0
    for path in tqdm(files, desc="verify", unit="file", disable=not progress):
        index = lhq_index(path)
        row = by_index.get(index) if index is not None else None
        if row is None:
            raise DataError(
                f"{path}: not an LHQ file name (0000000.png ... {splits.N_LHQ - 1:07d}.png); "
                f"move it out of {source}"
            )
        digest = splits.file_sha256(path)
        try:
            with Image.open(path) as header:
                width, height = header.size
        except OSError:
            raise DataError(f"{path}: corrupt image; re-extract this file") from None
        variant = splits.variant_of(path, width, height)
        report.files += 1
        pinned = row.sha256.get(variant)
        if pinned is None:
            row.sha256[variant] = digest
            report.pinned += 1
            unsaved += 1
        elif pinned == digest:
            report.verified += 1
        else:
            report.mismatched.append(str(path))
        if row.phash is None:
            row.phash = splits.perceptual_hash(decode_image(path))
            unsaved += 1
        if unsaved >= checkpoint_every:
            _save(rows, manifest)
            unsaved = 0
    train = {r.lhq_index for r in rows if r.split == "train"}
    report.shared_indices = len(train & {r.lhq_index for r in rows if r.split == "test"})
    report.duplicates = splits.cross_split_duplicates(rows)
    leak_of = dict(report.duplicates)
    for r in rows:
        flag = leak_of.get(r.lhq_index) if r.split != "test" else None
        if r.leak_of != flag:
            r.leak_of = flag
            unsaved += 1
    if unsaved:
        _save(rows, manifest)
    return report


def _save(rows: list[splits.ManifestRow], manifest: Path) -> None:
    try:
        splits.write_manifest(rows, manifest)
    except PermissionError:
        raise DataError(
            f"{manifest}: cannot write pinned hashes there; copy it somewhere writable and "
            "pass --manifest COPY"
        ) from None
