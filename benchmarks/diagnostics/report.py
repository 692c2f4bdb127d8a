"""What every held-out diagnostic reports: per-item means with intervals, written as JSON and
markdown side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation.bootstrap import bootstrap_interval
from nuwa.io import atomic_write_json, atomic_write_text


def summarise(values: np.ndarray, seed: int = 0) -> dict:
    """Mean of per-item ``values [N]`` with its bootstrap 95% interval."""
    mean = float(values.mean())
    interval = bootstrap_interval(
        lambda idx: float(values[idx["items"]].mean()), {"items": len(values)}, seed=seed
    )
    return {"mean": mean, "low": interval.low, "high": interval.high, "n": len(values)}


def write_report(out: Path, name: str, report: dict, text: str) -> None:
    """``out/name.json`` and ``out/name.md`` (atomically), then ``text`` and where it went."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{name}.json", report)
    atomic_write_text(out / f"{name}.md", text)
    print(text, end="")
    print(f"wrote {out} in {report['seconds']:.0f} s")
