"""Feature-extraction throughput of our FID pipeline against clean-fid with the same extractor,
and the re-run speed-up from the feature cache. Prints a table and writes JSON.

Both sides get the same surrogate Inception module (clean-fid through `custom_feat_extractor`),
the same PNG folders of procedural landscapes and the same batch size, in one process. The
ratio that matters is images/s of the feature stage (ours / clean-fid); end-to-end times include
each library's Fréchet step and are printed too.

    .venv/bin/python -m benchmarks.perf.metric_throughput --images 24 --size 256
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from evaluation import FID, SURROGATE_INCEPTION
from evaluation.cache import FeatureCache
from nuwa.data.landscapes import render_landscape
from nuwa.io import atomic_write_json


def write_folders(root: Path, images: int, size: int) -> tuple[Path, Path]:
    """``images`` generated and ``images`` real landscapes as PNG folders."""
    folders = (root / "generated", root / "real")
    for offset, folder in zip((0, 10_000), folders, strict=True):
        folder.mkdir(parents=True)
        for seed in range(offset, offset + images):
            Image.fromarray(render_landscape(seed, size, size).image).save(folder / f"{seed}.png")
    return folders


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="images per folder (two folders)")
    parser.add_argument("--size", type=int, default=256, help="square image side in pixels")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--cleanfid-workers", type=int, default=0, help="clean-fid DataLoader workers"
    )
    parser.add_argument("--repeats", type=int, default=2, help="best of this many timings")
    parser.add_argument("--out", default="outputs/perf/metric_throughput.json")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, tmp: Path) -> dict:
    """Time clean-fid and our FID on the same extractor and folders (under ``tmp``): seconds per
    stage (best of ``args.repeats``, interleaved), both FIDs, the largest feature difference,
    and the feature cache's cold and warm misses."""
    from cleanfid.fid import compute_fid, get_folder_features

    generated, real = write_folders(tmp, args.images, args.size)
    metric = FID(SURROGATE_INCEPTION, batch_size=args.batch_size, progress=False)
    model = metric.model  # the one module both pipelines run
    cleanfid = dict(
        num_workers=args.cleanfid_workers,
        batch_size=args.batch_size,
        device=torch.device("cpu"),
        mode="clean",
        verbose=False,
    )

    def cleanfid_extractor(x: torch.Tensor) -> torch.Tensor:
        return model(x)["pool3"]

    def cleanfid_features():
        return [
            get_folder_features(str(folder), model=cleanfid_extractor, **cleanfid)
            for folder in (generated, real)
        ]

    def update_both() -> FID:
        metric.reset()
        metric.update(generated, real=False)
        metric.update(real, real=True)
        return metric

    rows: dict[str, float] = {}
    for _ in range(args.repeats):  # interleaved, best of: the CPU is shared
        theirs, seconds = timed(cleanfid_features)
        rows["clean-fid features"] = min(rows.get("clean-fid features", np.inf), seconds)
        mine, seconds = timed(lambda: [metric.extract(f) for f in (generated, real)])
        rows["ours features"] = min(rows.get("ours features", np.inf), seconds)
    cleanfid_value, rows["clean-fid compute_fid (end to end)"] = timed(
        lambda: compute_fid(
            str(generated), str(real), custom_feat_extractor=cleanfid_extractor, **cleanfid
        )
    )
    our_value, rows["ours FID update+compute (end to end)"] = timed(
        lambda: update_both().compute().value
    )
    metric.cache = cold = FeatureCache(tmp / "cache")
    _, rows["ours update, cold cache"] = timed(update_both)
    metric.cache = warm = FeatureCache(tmp / "cache")
    _, rows["ours update, warm cache"] = timed(update_both)
    return {
        "seconds": rows,
        "max_abs_feature_difference": max(
            float(np.abs(a - b).max()) for a, b in zip(mine, theirs, strict=True)
        ),
        "fid": {"ours": our_value, "clean-fid": cleanfid_value},
        "cache_warm_misses": warm.misses,
        "cache_cold_misses": cold.misses,
    }


def print_report(report: dict) -> None:
    n, rows = report["images"], report["seconds"]
    print(
        f"{'stage':42s} {'seconds':>9s} {'images/s':>9s}   "
        f"({n} images, {report['size']}px, batch {report['batch_size']})"
    )
    for name, seconds in rows.items():
        print(f"{name:42s} {seconds:9.2f} {n / seconds:9.2f}")
    fid = report["fid"]
    print(
        f"feature stage ratio ours/clean-fid: {report['ratio_features_ours_over_cleanfid']:.2f} "
        f"(max |feature diff| {report['max_abs_feature_difference']:.2e})"
    )
    print(
        f"end-to-end ratio ours/clean-fid:    {report['ratio_end_to_end_ours_over_cleanfid']:.2f} "
        f"(FID ours {fid['ours']:.6f}, clean-fid {fid['clean-fid']:.6f})"
    )
    print(
        f"feature cache re-run speed-up:      {report['cache_speedup_warm_over_cold']:.1f}x "
        f"({report['cache_warm_misses']} misses on the re-run)"
    )
    load = report["env"]["load_average_before"]
    print(f"load average before the run: {load} (shared CPU: compare ratios, not absolutes)")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    warnings.simplefilter("ignore")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        measured = measure(args, Path(tmp))
    rows, n = measured["seconds"], 2 * args.images
    report = {
        "images": n,
        "size": args.size,
        "batch_size": args.batch_size,
        "cleanfid_workers": args.cleanfid_workers,
        **measured,
        "images_per_s": {k: n / v for k, v in rows.items()},
        "ratio_features_ours_over_cleanfid": rows["clean-fid features"] / rows["ours features"],
        "ratio_end_to_end_ours_over_cleanfid": rows["clean-fid compute_fid (end to end)"]
        / rows["ours FID update+compute (end to end)"],
        "cache_speedup_warm_over_cold": rows["ours update, cold cache"]
        / rows["ours update, warm cache"],
        "env": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "load_average_before": load_before,
            "extractor": SURROGATE_INCEPTION,
        },
    }
    print_report(report)
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
