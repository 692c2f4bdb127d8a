"""`nuwa-data`: make the procedural data set, print the LHQC-repro split, verify real data.

Subcommands live in the SUBCOMMANDS table ({name: (add_arguments, run)}), so another module
adds one with a single line. Bad input ends with one line on stderr naming the file and the fix,
and exit code 2; never a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from nuwa.data import splits
from nuwa.data.contact_sheet import write_contact_sheet
from nuwa.data.landscapes import DATASET_NAME, caption_for, render_landscape, sample_scene
from nuwa.data.loaders import SOURCES_HELP, load_records
from nuwa.data.records import DataError
from nuwa.data.shards import add_tokenize_arguments, run_tokenize
from nuwa.errors import run_reporting
from nuwa.io import atomic_write_bytes, atomic_write_json, atomic_write_text

# ---------------------------------------------------------------- synth


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Render procedural landscapes (PNG) or panning videos (MP4 / PNG frames) + metadata.jsonl."""
    parser.add_argument("--kind", choices=("image", "video"), default="image")
    parser.add_argument("--n", type=_positive, default=16, help="how many images or videos")
    parser.add_argument("--width", type=_at_least_16, default=256)
    parser.add_argument("--height", type=_at_least_16, default=256)
    parser.add_argument("--frames", type=_positive, default=16, help="frames per video")
    parser.add_argument("--speed", type=float, default=4.0, help="video pan, px/frame at depth 1")
    parser.add_argument("--fps", type=_positive, default=8)
    parser.add_argument("--video-format", choices=("mp4", "png"), default="mp4")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the first item")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--contact-sheet", type=Path, help="also write a contact sheet PNG")


MAX_SYNTH_PIXELS = 16384 * 16384  # a canvas renders in float32 with a few full-size layers


def run_synth(args: argparse.Namespace) -> int:
    """Write each item atomically and skip items already complete, so a killed run resumes."""
    if args.width * args.height > MAX_SYNTH_PIXELS:
        raise DataError(
            f"--width {args.width} --height {args.height} is {args.width * args.height:,} px, "
            f"more than the {MAX_SYNTH_PIXELS:,} px (16384 x 16384) one item may have; "
            "ask for a smaller size"
        )
    if args.kind == "video" and args.video_format == "mp4" and (args.width % 2 or args.height % 2):
        raise DataError(
            f"MP4 (H.264) needs even --width/--height, got {args.width}x{args.height}; "
            "use even sizes or --video-format png"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = range(args.seed, args.seed + args.n)
    write = _synth_image if args.kind == "image" else _synth_video
    rows, previews, made = [], [], 0
    for seed in tqdm(seeds, desc=f"synth {args.kind}", unit=args.kind):
        row, preview, was_made = write(args, seed)
        rows.append(row)
        previews.append(preview)
        made += was_made
    metadata = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    atomic_write_text(args.out / "metadata.jsonl", metadata)
    video_only = ("frames", "speed", "fps", "video_format")
    settings = {
        k: str(v) if isinstance(v, Path) else v
        for k, v in vars(args).items()
        if k not in ("run", "command") and (args.kind == "video" or k not in video_only)
    }
    atomic_write_json(args.out / "synth.json", {"dataset": DATASET_NAME, **settings})
    if args.contact_sheet:
        captions = [r["caption"] for r in rows]
        write_contact_sheet(args.contact_sheet, previews, captions=captions)
    print(
        f"{DATASET_NAME}: {len(rows)} {args.kind}s in {args.out} ({made} rendered, "
        f"{len(rows) - made} already complete)"
        + (f"; contact sheet {args.contact_sheet}" if args.contact_sheet else "")
    )
    return 0


def _synth_image(args: argparse.Namespace, seed: int) -> tuple[dict, np.ndarray, bool]:
    name = f"landscape_{seed:07d}.png"
    path = args.out / name
    params = sample_scene(seed)
    image = _existing_image(path, (args.width, args.height))
    made = image is None
    if made:
        image = render_landscape(seed, args.width, args.height).image
        atomic_write_bytes(path, _png(image))
    row = {
        "file_name": name,
        "id": f"proc_{seed:07d}",
        "seed": seed,
        "caption": caption_for(params),
    }
    return {**row, "params": asdict(params)}, image, made


def _synth_video(args: argparse.Namespace, seed: int) -> tuple[dict, np.ndarray, bool]:
    from nuwa.data.video import render_pan_video, write_mp4

    stem = f"pan_{seed:07d}"
    path = args.out / (f"{stem}.mp4" if args.video_format == "mp4" else stem)
    made = not _video_complete(path, args)
    video = render_pan_video(seed, args.width, args.height, args.frames, args.speed)
    if made and args.video_format == "mp4":
        write_mp4(path, video.frames, args.fps)
    elif made:
        _write_frame_dir(path, video.frames)
    row = {
        "file_name": path.name,
        "id": f"proc_pan_{seed:07d}",
        "seed": seed,
        "caption": video.caption,
        "frames": args.frames,
        "fps": args.fps,
        "params": asdict(video.params),
        "pan": asdict(video.pan),
    }
    return row, video.frames[0], made


def _existing_image(path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """The image at `path` if a previous run completed it at this size (atomic writes mean a
    file that exists is whole); None if it must be rendered."""
    if not path.is_file():
        return None
    with Image.open(path) as image:
        if image.size != size:
            return None
        return np.asarray(image.convert("RGB"))


def _video_complete(path: Path, args: argparse.Namespace) -> bool:
    if args.video_format == "png":
        frames = sorted(path.glob("*.png")) if path.is_dir() else []
        if len(frames) != args.frames:
            return False
        with Image.open(frames[0]) as first:
            return first.size == (args.width, args.height)
    if not path.is_file():
        return False
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return (stream.width, stream.height, stream.frames) == (
            args.width,
            args.height,
            args.frames,
        )


def _write_frame_dir(path: Path, frames: np.ndarray) -> None:
    """PNG frames 000.png ... written into a temporary folder, then renamed into place."""
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        for t, frame in enumerate(frames):
            (tmp / f"{t:03d}.png").write_bytes(_png(frame))
        if path.exists():
            shutil.rmtree(path)  # an incomplete or different-size leftover of this same item
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- split, verify, check, sheet


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """Print the LHQC-repro split's ids (7-digit LHQ indices) or its digest."""
    parser.add_argument("name", choices=(splits.SPLIT_NAME,))
    parser.add_argument("--split", choices=splits.SPLITS, default="test")
    parser.add_argument("--digest", action="store_true", help="print the sha256 of the id list")
    parser.add_argument("--out", type=Path, help="write the ids to this file instead of stdout")


def run_split(args: argparse.Namespace) -> int:
    indices = splits.split_indices()[args.split]
    if args.digest:
        print(splits.split_digest(indices))
        return 0
    text = "\n".join(f"{i:07d}" for i in indices) + "\n"
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Pin (first run) or check (later runs) LHQ file hashes; check train/test leakage."""
    parser.add_argument("--source", type=Path, required=True, help="folder of LHQ images")
    parser.add_argument("--manifest", type=Path, default=splits.MANIFEST_PATH)


def run_verify(args: argparse.Namespace) -> int:
    from nuwa.data.verify import verify

    report = verify(args.source, args.manifest)
    print(report.summary())
    for path in report.mismatched[:10]:
        print(f"hash mismatch: {path} differs from the pinned sha256", file=sys.stderr)
    return 0 if report.ok else 1


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """Read every record of a data source once, reporting the first bad file."""
    _add_source_arguments(parser)


def run_check(args: argparse.Namespace) -> int:
    count = sum(1 for _ in tqdm(_records(args), desc="check", unit="image"))
    print(f"{args.source}: {count} records OK" + (f" at {args.size}px" if args.size else ""))
    return 0


def add_contact_sheet_arguments(parser: argparse.ArgumentParser) -> None:
    """Write a contact sheet PNG of the first images of any data source."""
    _add_source_arguments(parser, default_limit=16)
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--columns", type=_positive, default=4)


def run_contact_sheet(args: argparse.Namespace) -> int:
    records = list(_records(args))
    if not records:
        raise DataError(f"{args.source}: no records to show; check the source and --split")
    captions = [r.text or r.id for r in records]
    write_contact_sheet(
        args.out, [r.image for r in records], captions=captions, columns=args.columns
    )
    print(f"contact sheet of {len(records)} records: {args.out}")
    return 0


def _add_source_arguments(
    parser: argparse.ArgumentParser, default_limit: int | None = None
) -> None:
    parser.add_argument("source", help=SOURCES_HELP)
    parser.add_argument("--size", type=_positive, help="canonical preprocessing to this size")
    parser.add_argument("--split", choices=splits.SPLITS)
    parser.add_argument("--limit", type=_positive, default=default_limit)
    parser.add_argument("--manifest", type=Path, default=splits.MANIFEST_PATH)


def _records(args: argparse.Namespace):
    return load_records(
        args.source, size=args.size, split=args.split, limit=args.limit, manifest=args.manifest
    )


# ---------------------------------------------------------------- entry point

SUBCOMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {
    "synth": (add_synth_arguments, run_synth),
    "split": (add_split_arguments, run_split),
    "verify": (add_verify_arguments, run_verify),
    "check": (add_check_arguments, run_check),
    "contact-sheet": (add_contact_sheet_arguments, run_contact_sheet),
    "tokenize": (add_tokenize_arguments, run_tokenize),
}


def build_parser() -> argparse.ArgumentParser:
    """The `nuwa-data` parser with one subparser per SUBCOMMANDS entry."""
    parser = argparse.ArgumentParser(
        prog="nuwa-data",
        description="Make the procedural data set, print the LHQC-repro split, verify real data.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, run) in SUBCOMMANDS.items():
        summary = (add_arguments.__doc__ or "").strip().splitlines()[0:1]
        sub = commands.add_parser(name, help=summary[0] if summary else None)
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; exit code 0 ok, 1 a check failed, 2 bad input or usage."""
    args = build_parser().parse_args(argv)
    return run_reporting("nuwa-data", lambda: args.run(args))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _at_least_16(text: str) -> int:
    value = int(text)
    if value < 16:
        raise argparse.ArgumentTypeError(f"must be >= 16 px, got {value}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**31), got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
