"""Metric sanity battery: does a feature space see known damage? (Heusel et al. 2017, App. A)

    python -m benchmarks.diagnostics.metric_sanity [--n 128] [--out outputs/metric_sanity]

Two independent sets of n held-out real 256² procedural images (test split) give the floor: FID
between undisturbed real sets. Each disturbance is applied to the second set at four levels, and
FID against the first set is reported for the landscape network and the surrogate Inception side
by side, as a value with its bootstrap 95% interval and as a multiple of that extractor's floor.
A feature space fit to judge samples rises with every level of every disturbance.

Disturbances (levels in ``LEVELS``): Gaussian noise (σ in [0, 1] units), Gaussian blur (σ px),
black rectangles (count), vertical flip, half-swap (the right half from another scene) and
64-px row-band shuffle (each: the fraction of images disturbed), hue rotation (degrees).

Two more checks run on the same held-out scenes. Text alignment: attribute agreement of real
images with their own captions against the same images with deranged captions. Video: Motion FD
of real pans (test split) against a second set of real pans, and against a slideshow (each frame
from another scene), frozen clips (the first frame repeated) and shuffled clips (the same frames
in a random order), each with its interval.

Writes ``sanity.json``, ``sanity.md`` (the tables) and ``sanity.png`` (multiple of the floor per
level) into ``--out``. Procedural data and project-trained or surrogate features only: nothing
here is comparable to a paper number.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter
from tqdm import tqdm

from evaluation import FID, LANDSCAPE_FEATURES, SURROGATE_INCEPTION, FewSamplesWarning
from evaluation.attribute_agreement import AttributeAgreement
from evaluation.bootstrap import bootstrap_interval
from evaluation.frechet import fid_from_features
from evaluation.motion_fd import MotionFD
from nuwa.data.landscapes import render_landscape
from nuwa.data.loaders import PROCEDURAL_SEED_BASE
from nuwa.data.video import render_pan_video
from nuwa.io import atomic_write_json, atomic_write_text

SIZE = 256
BAND = 64
LEVELS: dict[str, tuple[float, ...]] = {
    "noise": (0.02, 0.05, 0.1, 0.25),
    "blur": (1.0, 2.0, 4.0, 8.0),
    "rectangles": (1, 2, 4, 8),
    "vflip": (0.25, 0.5, 0.75, 1.0),
    "half_swap": (0.25, 0.5, 0.75, 1.0),
    "band_shuffle": (0.25, 0.5, 0.75, 1.0),
    "hue": (15.0, 30.0, 60.0, 120.0),
}
EXTRACTORS = (LANDSCAPE_FEATURES, SURROGATE_INCEPTION)
REPLICATES = 200
FRAMES = 16
VIDEO_KINDS = ("real pans (second set)", "slideshow", "frozen", "shuffled order")


def real_images(first_seed: int, n: int) -> list[np.ndarray]:
    """n held-out scenes uint8 [256, 256, 3] starting at ``first_seed``."""
    return [render_landscape(s, SIZE, SIZE).image for s in range(first_seed, first_seed + n)]


def _chosen(n: int, fraction: float, rng: np.random.Generator) -> set[int]:
    return set(rng.choice(n, size=round(fraction * n), replace=False).tolist())


def _hue_rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate the chroma plane of YIQ by ``degrees`` (luma kept)."""
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    angle = np.deg2rad(degrees)
    rotate = np.array(
        [[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]]
    )
    matrix = np.linalg.inv(to_yiq) @ rotate @ to_yiq
    return np.clip(image.astype(np.float64) @ matrix.T + 0.5, 0, 255).astype(np.uint8)


def disturb(
    kind: str, level: float, images: list[np.ndarray], donors: list[np.ndarray], seed: int = 0
) -> list[np.ndarray]:
    """``images`` with disturbance ``kind`` at ``level`` (seeded; ``donors`` feed half-swaps)."""
    rng = np.random.default_rng(seed)
    if kind == "noise":
        noisy = [image + rng.normal(0, level * 255, image.shape) for image in images]
        return [np.clip(image, 0, 255).astype(np.uint8) for image in noisy]
    if kind == "blur":
        return [gaussian_filter(image, sigma=(level, level, 0)) for image in images]
    if kind == "rectangles":
        out = []
        for image in images:
            image = image.copy()
            for _ in range(int(level)):
                h, w = rng.integers(SIZE // 8, SIZE // 3, 2)
                top, left = rng.integers(0, SIZE - h), rng.integers(0, SIZE - w)
                image[top : top + h, left : left + w] = 0
            out.append(image)
        return out
    if kind == "hue":
        return [_hue_rotate(image, level) for image in images]
    chosen = _chosen(len(images), level, rng)
    out = []
    for i, image in enumerate(images):
        if i not in chosen:
            out.append(image)
        elif kind == "vflip":
            out.append(image[::-1].copy())
        elif kind == "half_swap":
            out.append(np.concatenate([image[:, : SIZE // 2], donors[i][:, SIZE // 2 :]], 1))
        elif kind == "band_shuffle":
            bands = image.reshape(SIZE // BAND, BAND, SIZE, 3)
            order = np.roll(np.arange(len(bands)), rng.integers(1, len(bands)))  # never identity
            out.append(bands[rng.permutation(order)].reshape(image.shape).copy())
        else:
            raise ValueError(f"unknown disturbance {kind!r}; known: {sorted(LEVELS)}")
    return out


def fid_with_interval(reference: np.ndarray, other: np.ndarray, seed: int = 0) -> dict:
    """FID between two feature sets [n, D] with its bootstrap 95% interval."""

    def statistic(indices: dict[str, np.ndarray]) -> float:
        return fid_from_features(other[indices["generated"]], reference[indices["real"]])

    all_rows = {"generated": np.arange(len(other)), "real": np.arange(len(reference))}
    interval = bootstrap_interval(
        statistic,
        {side: len(rows) for side, rows in all_rows.items()},
        replicates=REPLICATES,
        seed=seed,
    )
    return {"value": statistic(all_rows), "low": interval.low, "high": interval.high}


def text_alignment(n: int, cache_dir: Path) -> dict:
    """Attribute agreement of n held-out images with their own and with deranged captions."""
    base = PROCEDURAL_SEED_BASE["test"]
    scenes = [render_landscape(s, 512, 512) for s in range(base, base + n)]
    metric = AttributeAgreement(
        LANDSCAPE_FEATURES, cache_dir=cache_dir, progress=False, bootstrap=REPLICATES
    )
    metric.update([scene.image for scene in scenes], [scene.caption for scene in scenes])
    result = metric.compute()
    shuffled = result.details["shuffled_captions_interval"]
    return {
        "real pairs": {
            "value": result.value,
            "low": result.interval.low,
            "high": result.interval.high,
        },
        "shuffled captions": {
            "value": result.details["shuffled_captions"],
            "low": shuffled["low"],
            "high": shuffled["high"],
        },
    }


def video_clips(n: int) -> dict[str, list[np.ndarray]]:
    """Real pans (two independent sets of n) and the three broken kinds made from the second."""
    base = PROCEDURAL_SEED_BASE["test"]
    first, second = (
        [render_pan_video(s, SIZE, SIZE, FRAMES).frames for s in range(start, start + n)]
        for start in (base, base + n)
    )
    rng = np.random.default_rng(0)
    return {
        "reference": first,
        "real pans (second set)": second,
        "slideshow": [np.stack([second[(i + t) % n][t] for t in range(FRAMES)]) for i in range(n)],
        "frozen": [np.repeat(clip[:1], FRAMES, axis=0) for clip in second],
        "shuffled order": [clip[rng.permutation(FRAMES)] for clip in second],
    }


def video_coherence(n: int, cache_dir: Path) -> dict:
    """Motion FD [interval] of each clip kind against the reference pans."""
    clips = video_clips(n)
    metric = MotionFD(LANDSCAPE_FEATURES, frames=FRAMES, cache_dir=cache_dir, progress=False)
    reference = metric.descriptors(clips["reference"])
    return {
        kind: fid_with_interval(reference, metric.descriptors(clips[kind])) for kind in VIDEO_KINDS
    }


def run_battery(n: int, cache_dir: Path, progress: bool = True) -> dict:
    """The battery's rows: {extractor: {"floor": {...}, kind: [{level, value, low, high}]}}."""
    base = PROCEDURAL_SEED_BASE["test"]
    reference, second, donors = (real_images(base + k * n, n) for k in range(3))
    sets: dict[str, list[np.ndarray]] = {"floor": second}
    for kind, levels in LEVELS.items():
        for level in levels:
            sets[f"{kind}@{level}"] = disturb(kind, level, second, donors)
    results: dict = {}
    for extractor in EXTRACTORS:
        metric = FID(extractor, cache_dir=cache_dir, progress=False)
        ref_features = metric.extract(reference)
        rows: dict = {}
        for name, images in tqdm(sets.items(), desc=extractor, disable=not progress):
            row = fid_with_interval(ref_features, metric.extract(images))
            kind, _, level = name.partition("@")
            if kind == "floor":
                rows["floor"] = row
            else:
                rows.setdefault(kind, []).append({"level": float(level), **row})
        floor = rows["floor"]["value"]
        for kind in LEVELS:
            for row in rows[kind]:
                row["times_floor"] = row["value"] / floor
        results[extractor] = rows
    return results


def table(results: dict, n: int) -> str:
    """Markdown: one row per disturbance and level, each extractor's FID [interval] and ×floor."""
    header = ["disturbance", "level"]
    for extractor in results:
        header += [f"{extractor} FID [95% CI]", "× floor"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    floor_cells = ["floor (real vs real)", f"n={n}"]
    for rows in results.values():
        f = rows["floor"]
        floor_cells += [f"{f['value']:.3g} [{f['low']:.3g}, {f['high']:.3g}]", "1"]
    lines.append("| " + " | ".join(floor_cells) + " |")
    for kind, levels in LEVELS.items():
        for index, level in enumerate(levels):
            cells = [kind, f"{level:g}"]
            for rows in results.values():
                r = rows[kind][index]
                cells += [f"{r['value']:.3g} [{r['low']:.3g}, {r['high']:.3g}]",
                          f"{r['times_floor']:.1f}"]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def small_table(rows: dict, what: str) -> str:
    """Markdown of {name: {value, low, high}}."""
    lines = [f"| {what} | value [95% CI] |", "|---|---|"]
    lines += [
        f"| {k} | {r['value']:.3g} [{r['low']:.3g}, {r['high']:.3g}] |" for k, r in rows.items()
    ]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """One panel per disturbance: FID / floor against level, one line per extractor (log y)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(LEVELS), figsize=(3.0 * len(LEVELS), 3.2), sharey=True)
    for ax, kind in zip(axes, LEVELS, strict=True):
        for extractor, rows in results.items():
            floor = rows["floor"]["value"]
            levels = [r["level"] for r in rows[kind]]
            values = np.array([r["value"] for r in rows[kind]]) / floor
            errors = np.array([[r["value"] - r["low"], r["high"] - r["value"]] for r in rows[kind]])
            ax.errorbar(levels, values, yerr=errors.T / floor, marker="o", label=extractor)
        ax.axhline(10, color="grey", lw=0.8, ls="--")
        ax.set_title(kind)
        ax.set_xlabel("level")
        ax.set_yscale("log")
    axes[0].set_ylabel("FID / floor")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    plt.close(fig)


def check(results: dict, extractor: str, minimum: float = 10.0) -> list[str]:
    """What fails the issue's bar for ``extractor``: a full level below ``minimum`` × floor, or
    a level that does not raise FID."""
    problems = []
    for kind in LEVELS:
        rows = results[extractor][kind]
        if rows[-1]["times_floor"] < minimum:
            problems.append(f"{kind}: full level {rows[-1]['times_floor']:.1f}x floor < {minimum}x")
        values = [results[extractor]["floor"]["value"]] + [r["value"] for r in rows]
        if any(b <= a for a, b in zip(values, values[1:], strict=False)):
            problems.append(f"{kind}: FID does not rise with every level ({values})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.diagnostics.metric_sanity", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n", type=int, default=128, help="images per side (default 128)")
    parser.add_argument("--out", type=Path, default=Path("outputs/metric_sanity"))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.n < 8:
        parser.error("--n must be at least 8 (the bootstrap needs 8 samples per side)")
    # n < D is the point of the battery (its floor is that bias, stated with n); do not repeat it.
    warnings.simplefilter("ignore", FewSamplesWarning)
    started = time.time()
    cache = args.out / "feature_cache"
    results = run_battery(args.n, cache, progress=not args.quiet)
    text = text_alignment(args.n, cache)
    video = video_coherence(max(8, args.n // 4), cache)
    report = {
        "n": args.n,
        "dataset": "procedural-landscapes-v1 (test split), 256x256",
        "levels": LEVELS,
        "results": results,
        "failures": {extractor: check(results, extractor) for extractor in results},
        "text_alignment": text,
        "video_coherence": {"n_clips": max(8, args.n // 4), "motion_fd": video},
        "seconds": round(time.time() - started, 1),
    }
    atomic_write_json(args.out / "sanity.json", report)
    markdown = "\n".join(
        [
            table(results, args.n),
            small_table(text, f"attribute agreement, n={args.n}"),
            small_table(video, f"Motion FD against real pans, n={max(8, args.n // 4)} clips"),
        ]
    )
    atomic_write_text(args.out / "sanity.md", markdown)
    plot(results, args.out / "sanity.png")
    print(markdown)
    for extractor, problems in report["failures"].items():
        print(f"{extractor}: " + ("passes" if not problems else "; ".join(problems)))
    print(f"wrote {args.out}/sanity.json, sanity.md, sanity.png ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
