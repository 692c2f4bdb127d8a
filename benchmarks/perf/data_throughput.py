"""Procedural data throughput on this CPU, against reading the same images the canonical way.

    python -m benchmarks.perf.data_throughput [--repeats 8] [--out FILE.json]

For each size it times `render_landscape` (images/s) and, as the baseline measured in the same
run, the canonical loader on the same pixels stored as PNG (decode + Lanczos to 256 + centre
crop), which is what a harness pays per real LHQ1024 image. ratio > 1 means generating a
procedural image is cheaper than loading a real one from disk. One panning video row reports
frames/s. Numbers depend on the CPU and on other load; the JSON records both.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image

from nuwa.data.landscapes import render_landscape
from nuwa.data.records import load_image
from nuwa.data.video import render_pan_video
from nuwa.io import atomic_write_json


def _rate(fn, repeats: int) -> float:
    """Calls per second of `fn(i)` over `repeats` calls, after one warm-up call."""
    fn(10_000)
    start = time.perf_counter()
    for i in range(repeats):
        fn(i)
    return repeats / (time.perf_counter() - start)


def measure(repeats: int) -> list[dict]:
    rows = []
    for width, height in ((256, 256), (512, 256), (1024, 1024)):
        png = io.BytesIO()
        Image.fromarray(render_landscape(0, width, height).image).save(png, format="PNG")
        data = png.getvalue()
        generate = _rate(lambda i, w=width, h=height: render_landscape(i, w, h), repeats)
        load = _rate(lambda i, d=data: load_image(d, 256, "bench"), repeats)
        rows.append(
            {
                "what": f"render_landscape {width}x{height}",
                "images_per_s": round(generate, 2),
                "baseline": "PNG decode + Lanczos to 256",
                "baseline_images_per_s": round(load, 2),
                "ratio": round(generate / load, 2),
            }
        )
    frames = 16
    video = _rate(lambda i: render_pan_video(i, 256, 256, frames), max(2, repeats // 4))
    rows.append(
        {"what": f"render_pan_video 256x256x{frames}", "frames_per_s": round(video * frames, 1)}
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("outputs/perf/data_throughput.json"))
    args = parser.parse_args(argv)
    rows = measure(args.repeats)
    print(f"{'what':34} {'images/s':>9} {'baseline/s':>11} {'ratio':>6}")
    for row in rows:
        if "images_per_s" in row:
            rates = row["images_per_s"], row["baseline_images_per_s"], row["ratio"]
            line = "{:9.2f} {:11.2f} {:6.2f}".format(*rates)
        else:
            line = f"{row['frames_per_s']:9.1f} frames/s"
        print(f"{row['what']:34} {line}")
    atomic_write_json(
        args.out,
        {
            "benchmark": "data_throughput",
            "repeats": args.repeats,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "numpy": np.__version__,
            "rows": rows,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
