"""Model files: load a transformer with its tokenizers, and the SHA-256-checked bundle.

A usable model is up to three files: the transformer (``nuwa.model.checkpoint.save_model``), the
VQGAN its tokens come from, and optionally a PG-VQGAN for video frames
(``nuwa.tokenizer.save_tokenizer``). The bundle is those files in ``nuwa/bundled/``, optionally a
second transformer for video (temporal extent > 0) over the same tokenizer, plus a
``SHA256SUMS`` (``sha256sum`` format) that every file must match before it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from nuwa.checkpoint import CheckpointError, read_metadata
from nuwa.device import resolve_device
from nuwa.io import read_text_file, sha256_file
from nuwa.model.checkpoint import load_model
from nuwa.model.transformer import Nuwa
from nuwa.tokenizer import PGVQGAN, VQGAN, codes_sha256, load_tokenizer

BUNDLE_DIR = Path(__file__).resolve().parent / "bundled"
BUNDLE_FILES = {
    "model": "model.safetensors",
    "tokenizer": "tokenizer.safetensors",
    "pg_tokenizer": "pg_tokenizer.safetensors",  # optional: PG-VQGAN for video frames
    "video_model": "video_model.safetensors",  # optional: the animation / text-to-video model
}
OPTIONAL_FILES = ("pg_tokenizer", "video_model")
# The SHA-256 of each file the package ships, pinned here so a bundle whose files and SHA256SUMS
# were both replaced is still refused. `python -m nuwa.train.export` prints these lines.
PINNED_SHA256 = {
    "model.safetensors": "53670facf556e6143f54a9e68b09590bdadde8da8880fbaa35c69aab1cc26bc3",
    "tokenizer.safetensors": "8f6c9ac9dce7b5f10e65daeec759cad11487d5abdf23e7d752c3e7f457dd9846",
    "video_model.safetensors": "a3567473d8b8eda1062cd84927b2ead1457065bc7ccd1e734d137e4ad0852915",
}


class BundleMissingError(CheckpointError):
    """The bundled model files are not in ``nuwa/bundled/``."""


class TokenizerMismatchWarning(UserWarning):
    """The tokenizer does not make the tokens the model was trained on."""


@dataclass
class ModelFiles:
    """What :func:`load_files` returns: the modules plus how results should name them."""

    model: Nuwa
    tokenizer: VQGAN
    pg_tokenizer: PGVQGAN | None
    model_id: str  # e.g. "nuwa-small-procedural@1a2b3c4d" (files_digest's first 8 hex digits)
    checkpoint_sha256: dict[str, str]  # per file: model, tokenizer[, pg_tokenizer]


def load_files(
    paths: dict[str, Path],
    device: str | torch.device = "cpu",
    digests: dict[str, str] | None = None,
) -> ModelFiles:
    """Load ``paths`` ({"model", "tokenizer"[, "pg_tokenizer"]}) onto ``device``.

    Raises :class:`CheckpointError` (one line) for a missing, unreadable or wrong-kind file. Warns
    :class:`TokenizerMismatchWarning` when the model records which tokenizer its training tokens
    came from and this one differs: by its encoder and codebook (``codes_sha256``) where the
    model records them, so a decoder fine-tune of that tokenizer is accepted, else by file.
    """
    device = resolve_device(device)
    try:
        model = load_model(paths["model"], device=device)
    except (FileNotFoundError, ValueError) as err:  # e.g. its frozen text tower's weights
        raise CheckpointError(f"cannot load model {paths['model']}: {err}") from err
    tokenizer = load_tokenizer(paths["tokenizer"], kind="vqgan").to(device)
    pg = None
    if "pg_tokenizer" in paths:
        pg = load_tokenizer(paths["pg_tokenizer"], kind="pg_vqgan").to(device)
    digests = digests or {name: sha256_file(path) for name, path in paths.items()}
    meta = read_metadata(paths["model"])
    trained_on, ours = tokenizer_identity(meta.get("data"), tokenizer, digests["tokenizer"])
    if trained_on and trained_on != ours:
        warnings.warn(
            f"model {paths['model']} was trained on tokens of tokenizer {trained_on[:8]}, but "
            f"{paths['tokenizer']} is {ours[:8]}: unless it is the same tokenizer saved again, "
            "samples will not decode to what the model learned",
            TokenizerMismatchWarning,
            stacklevel=2,
        )
    model_id = f"{model_name(meta)}@{files_digest(digests)[:8]}"
    return ModelFiles(model, tokenizer, pg, model_id, digests)


def files_digest(digests: dict[str, str]) -> str:
    """One SHA-256 for a model's files: over the canonical JSON of ``{role: file sha256}``. The
    model id every command prints and the checkpoint digest results record both come from it."""
    text = json.dumps(digests, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def tokenizer_identity(
    data: dict | None, tokenizer: VQGAN, file_sha256: str
) -> tuple[str | None, str]:
    """(the tokenizer a model's training tokens came from, as its ``data`` metadata records it;
    the same identity of ``tokenizer``): the encoder+codebook digest where the model records
    one, so a decoder fine-tune matches, else the tokenizer file's SHA-256 (older runs)."""
    data = data if isinstance(data, dict) else {}
    if data.get("tokenizer_codes_sha256"):
        return data["tokenizer_codes_sha256"], codes_sha256(tokenizer)
    return data.get("tokenizer_sha256"), file_sha256


def bundle_files(directory: str | Path | None = None) -> tuple[dict[str, Path], dict[str, str]]:
    """The bundle's file paths and their SHA-256, each checked against ``SHA256SUMS`` and, for
    the package's own bundle, against ``PINNED_SHA256``.

    Raises :class:`BundleMissingError` when the bundle is not there, :class:`CheckpointError`
    when a file is missing, unlisted or does not match its listed or pinned SHA-256.
    """
    directory = Path(directory) if directory is not None else BUNDLE_DIR
    pinned = PINNED_SHA256 if directory.resolve() == BUNDLE_DIR else {}
    sums_path = directory / "SHA256SUMS"
    needed = [BUNDLE_FILES["model"], BUNDLE_FILES["tokenizer"], "SHA256SUMS"]
    missing = [name for name in needed if not (directory / name).is_file()]
    if missing:
        raise BundleMissingError(
            f"the bundled model is not in {directory} yet (missing {', '.join(missing)}); "
            "pass checkpoint= and tokenizer= paths instead"
        )
    sums = read_sha256sums(sums_path)
    paths, digests = {}, {}
    for name, filename in BUNDLE_FILES.items():
        path = directory / filename
        if name in OPTIONAL_FILES and not path.is_file() and filename not in sums:
            continue
        if filename not in sums:
            raise CheckpointError(f"{sums_path} lists no SHA-256 for {filename}")
        if not path.is_file():
            raise CheckpointError(f"{path} is listed in {sums_path} but missing")
        paths[name], digests[name] = path, sha256_file(path)
        if digests[name] != sums[filename]:
            raise CheckpointError(
                f"{path} has SHA-256 {digests[name]}, but {sums_path} says {sums[filename]}: "
                "the file is corrupt or was replaced"
            )
        if pinned and digests[name] != pinned.get(filename):
            raise CheckpointError(
                f"{path} has SHA-256 {digests[name]}, but this version of nuwa-infinity shipped "
                f"{pinned.get(filename, 'no such file')}: reinstall the package to restore it"
            )
    return paths, digests


def check_compatible(model: Nuwa, tokenizer: VQGAN, pg: PGVQGAN | None) -> None:
    """Raise :class:`CheckpointError` unless the three modules belong together."""
    codes = tokenizer.config.codebook_size
    if model.codebook_size != codes:
        raise CheckpointError(
            f"the model predicts {model.codebook_size} codes but the tokenizer has {codes}: "
            "they were not trained together"
        )
    if pg is None:
        return
    theirs, ours = pg.vqgan.state_dict(), tokenizer.state_dict()
    if theirs.keys() != ours.keys() or any(
        theirs[k].shape != ours[k].shape or not torch.equal(theirs[k].cpu(), ours[k].cpu())
        for k in ours
    ):
        raise CheckpointError("the PG-VQGAN was not built on this tokenizer (its VQGAN differs)")


def read_sha256sums(path: Path) -> dict[str, str]:
    """``sha256sum`` output (``<hex>  <name>`` per line) -> ``{name: hex}``; a malformed file
    raises :class:`CheckpointError` naming it and the line."""
    sums = {}
    text = read_text_file(path, "a SHA256SUMS file", error=CheckpointError)
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            digest, _, name = line.strip().partition(" ")
            if not re.fullmatch(r"[0-9a-fA-F]{64}", digest) or not name.strip():
                raise CheckpointError(
                    f"{path} line {number} is not '<sha256>  <file name>'; restore the file "
                    "(reinstall the package for the bundle, or run sha256sum again)"
                )
            sums[name.strip().lstrip("*")] = digest.lower()
    return sums


def model_name(meta: dict) -> str:
    """Readable name from a model checkpoint's metadata (as ``nuwa-train`` writes it):
    ``name`` if set, else ``nuwa-<preset>[-<data source>][-<ablation>]``."""
    if isinstance(meta.get("name"), str):
        return meta["name"]
    data = meta.get("data")
    source = (data.get("name") or data.get("source")) if isinstance(data, dict) else data
    source = source if isinstance(source, str) else None  # e.g. a shards' source record
    ablation = meta.get("ablation") if meta.get("ablation") not in (None, "none") else None
    parts = ["nuwa", meta.get("preset") or "custom", source and Path(str(source)).name, ablation]
    return "-".join(str(p) for p in parts if p)
