"""Pre-tokenised shards for transformer training: ``nuwa-data tokenize`` and ``TokenShards``.

Layout of an output folder (nanoGPT ``prepare.py`` style, plus an index)::

    index.json          tokenizer (file, sha256, codes_sha256, codebook size), source, and
                        one row per item: id, shard, offset, shape ([h, w] or [F, h, w]),
                        caption, source_sha256
    shard_00000.bin     uint16 token ids of consecutive items, flattened row-major

A shard file is written whole and atomically, then the index is rewritten atomically, so a
killed run keeps every finished shard and a rerun continues after the last one (same
tokenizer and source, else a clear error). Token grids keep each item's size: a wide canvas
is stored as one [h, w] grid, tokenised tile by tile like everything else.
"""

from __future__ import annotations

import argparse
import json
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from nuwa.checkpoint import CheckpointError
from nuwa.data.records import DataError
from nuwa.io import atomic_write_bytes, atomic_write_json, sha256_bytes, sha256_file

INDEX = "index.json"
FORMAT_VERSION = 1
VIDEO_PREFIX = "pan_videos:"  # procedural panning videos: "pan_videos:N"


def add_tokenize_arguments(parser: argparse.ArgumentParser) -> None:
    """Tokenise images or videos with a trained tokenizer into uint16 shards + index.json."""
    parser.add_argument("--tokenizer", type=Path, required=True, help="tokenizer .safetensors")
    parser.add_argument(
        "--source",
        required=True,
        help="any load_records source (folder, imagefolder, parquet, 'procedural:N'), "
        f"or '{VIDEO_PREFIX}N' for procedural panning videos",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--size", type=int, default=256, help="square image side (px)")
    parser.add_argument("--split", choices=("train", "val", "test"), default=None)
    parser.add_argument("--frames", type=int, default=8, help="frames per video")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many items")
    parser.add_argument("--shard-items", type=int, default=256, help="items per shard file")
    parser.add_argument("--batch-size", type=int, default=8)


def run_tokenize(args: argparse.Namespace) -> int:
    """Write (or continue) the shards in ``args.out``; returns the exit code (0)."""
    from nuwa.tokenizer import codes_sha256, load_tokenizer

    try:
        tokenizer = load_tokenizer(args.tokenizer)
    except CheckpointError as err:
        raise DataError(str(err)) from None
    if tokenizer.config.codebook_size > 2**16:
        raise DataError(f"codebook of {tokenizer.config.codebook_size} codes does not fit uint16")
    header = {
        "format_version": FORMAT_VERSION,
        "tokenizer": {
            "file": str(args.tokenizer),
            "sha256": sha256_file(args.tokenizer),
            "codes_sha256": codes_sha256(tokenizer),
            "codebook_size": tokenizer.config.codebook_size,
        },
        "source": {
            "source": args.source,
            "size": args.size,
            "split": args.split,
            "frames": args.frames if args.source.startswith(VIDEO_PREFIX) else None,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    index = _existing_index(args.out, header)
    done = len(index["items"])
    items = islice(_items(args), done, args.limit)
    total = None if args.limit is None else max(args.limit - done, 0)
    pending: list[tuple[dict[str, Any], np.ndarray]] = []
    bar = tqdm(total=total, desc="tokenize", unit="item")
    for batch in _batches(items, args.batch_size):
        pending += _tokenize_batch(tokenizer, batch)
        bar.update(len(batch))
        while len(pending) >= args.shard_items:
            _write_shard(args.out, index, pending[: args.shard_items])
            pending = pending[args.shard_items :]
    bar.close()
    if pending:
        _write_shard(args.out, index, pending)
    n_tokens = sum(int(np.prod(item["shape"])) for item in index["items"])
    print(
        f"nuwa-data tokenize: {len(index['items'])} items ({len(index['items']) - done} new, "
        f"{n_tokens} tokens) in {len(index['shards'])} shards at {args.out}"
    )
    return 0


def _existing_index(out: Path, header: dict[str, Any]) -> dict[str, Any]:
    path = out / INDEX
    if not path.exists():
        return {**header, "shards": [], "items": []}
    index = json.loads(path.read_text(encoding="utf-8"))
    for key in ("format_version", "tokenizer", "source"):
        if index.get(key) != header[key]:
            raise DataError(
                f"{out} holds shards made with another {key} ({index.get(key)}); "
                "use a new --out or the original settings"
            )
    return index


def _items(args: argparse.Namespace):
    """Yield (id, uint8 pixels [H, W, 3] or [F, H, W, 3], caption) from the source."""
    if args.source.startswith(VIDEO_PREFIX):
        from nuwa.data.loaders import PROCEDURAL_SEED_BASE
        from nuwa.data.video import render_pan_video

        count = args.source.removeprefix(VIDEO_PREFIX)
        if not count.isdigit():
            raise DataError(f"{args.source!r}: write {VIDEO_PREFIX}N with N a whole number")
        first = PROCEDURAL_SEED_BASE[args.split or "train"]
        for seed in range(first, first + int(count)):
            video = render_pan_video(seed, args.size, args.size, args.frames)
            yield f"proc_pan_{seed:07d}", video.frames, video.caption
        return
    from nuwa.data.loaders import load_records

    for record in load_records(args.source, size=args.size, split=args.split):
        yield record.id, record.image, record.text


def _batches(items, size: int):
    while batch := list(islice(items, size)):
        yield batch


def _tokenize_batch(tokenizer, batch: list) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Encode items of equal shape together; each gets its index row and uint16 tokens."""
    tokens_of: dict[int, torch.Tensor] = {}
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, (_, pixels, _) in enumerate(batch):
        by_shape.setdefault(pixels.shape, []).append(i)
    for shape, members in by_shape.items():
        stacked = np.stack([batch[i][1] for i in members]).reshape(-1, *shape[-3:])
        try:
            tokens = tokenizer.encode(stacked)  # frames of videos are just more images
        except ValueError as err:
            raise DataError(f"{batch[members[0]][0]}: {err}") from None
        grids = tokens.view(len(members), *shape[:-3], *tokens.shape[-2:])
        tokens_of.update(zip(members, grids, strict=True))
    out = []
    for i, (item_id, pixels, caption) in enumerate(batch):
        row = {
            "id": item_id,
            "shape": list(tokens_of[i].shape),
            "caption": caption,
            "source_sha256": sha256_bytes(np.ascontiguousarray(pixels).tobytes()),
        }
        out.append((row, tokens_of[i].numpy().astype(np.uint16)))
    return out


def _write_shard(out: Path, index: dict[str, Any], items: list) -> None:
    shard = len(index["shards"])
    name = f"shard_{shard:05d}.bin"
    offset, rows = 0, []
    for row, tokens in items:
        rows.append({**row, "shard": shard, "offset": offset})
        offset += tokens.size
    data = np.concatenate([tokens.ravel() for _, tokens in items]).astype("<u2").tobytes()
    atomic_write_bytes(out / name, data)
    index["shards"].append({"file": name, "tokens": offset, "sha256": sha256_bytes(data)})
    index["items"].extend(rows)
    atomic_write_json(out / INDEX, index)


class TokenShards:
    """Random access to a ``nuwa-data tokenize`` folder.

    ``shards[i]`` -> (int64 tokens [h, w] or [F, h, w], caption or None). Shards are
    memory-mapped, so opening a large set costs only the index.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        index_path = self.path / INDEX
        if not index_path.is_file():
            raise DataError(f"{self.path}: no {INDEX}; make shards with `nuwa-data tokenize`")
        try:
            self.index = json.loads(index_path.read_text(encoding="utf-8"))
            self.items: list[dict[str, Any]] = self.index["items"]
            files = [self.path / shard["file"] for shard in self.index["shards"]]
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(
                f"{index_path} is not a shard index ({err}); make the shards again with "
                "`nuwa-data tokenize`"
            ) from None
        self._shards = [self._open(file) for file in files]
        for number, item in enumerate(self.items):
            end = item["offset"] + int(np.prod(item["shape"]))
            if not 0 <= item["shard"] < len(files) or end > len(self._shards[item["shard"]]):
                raise DataError(
                    f"{files[min(item['shard'], len(files) - 1)]} is shorter than {INDEX} says "
                    f"(item {number} ends at token {end}): the file is truncated; make the "
                    "shards again with `nuwa-data tokenize`"
                )

    def _open(self, file: Path) -> np.memmap | np.ndarray:
        if not file.is_file():
            raise DataError(f"{file} is listed in {INDEX} but missing; tokenize again")
        if file.stat().st_size % 2:
            raise DataError(f"{file} has an odd number of bytes: it is truncated; tokenize again")
        if file.stat().st_size == 0:
            return np.zeros(0, dtype="<u2")  # np.memmap cannot map an empty file
        return np.memmap(file, dtype="<u2", mode="r")

    @property
    def codebook_size(self) -> int:
        return int(self.index["tokenizer"]["codebook_size"])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str | None]:
        item = self.items[i]
        n = int(np.prod(item["shape"]))
        flat = self._shards[item["shard"]][item["offset"] : item["offset"] + n]
        tokens = torch.from_numpy(flat.astype(np.int64)).view(*item["shape"])
        return tokens, item["caption"]
