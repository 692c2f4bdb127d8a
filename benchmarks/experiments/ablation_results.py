"""What one ablation arm measured, per seed and averaged over seeds.

Per seed (``measure_seed``, stored beside the training run as ``measures.json``): the harness
results of the arm's model on ``lhqc_t2i`` (Block-FID, SWD, attribute agreement and its
shuffled-caption level, the layout row-profile L1), its held-out NLL (AR arms: the training
run's ``eval.json``), its training loss over the last logged batches and its loss curve against
optimizer steps (``log.csv``), and its sampling cost in CPU milliseconds per patch.

Per arm (``arm_results``): one results file whose every quantity is the **mean over seeds**, with
``per_seed`` and a Student-t 95% interval over the seeds (``seed_interval``): the seeds are the
repeats that matter here (training noise), the bootstrap over one run's samples is not. Each
harness metric keeps its id with ``"aggregate": "mean over training seeds"`` added, and its name
with ``SEED_MEAN`` appended, so a seed-averaged value never shares a column with a single run's
(the leaderboard keys a column by its readable name and refuses two ids under one).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from benchmarks.perf.common import timed
from leaderboard import MetricEntry, Results, build_results
from nuwa.adc import make_plan
from nuwa.device import cpu_threads
from nuwa.io import atomic_write_json
from nuwa.layout import PatchGrid
from nuwa.model.checkpoint import load_model
from nuwa.sampling import SamplerOptions, sample
from nuwa.train.log import read_log

SPEED_CANVAS = (3, 3)  # patches: the training canvas, sampled step by step for every arm
SPEED_PROMPT = "a clear sky over two ranges of snowy peaks above a calm lake"
LAST_BATCHES = 10  # the training loss is the mean over this many last logged batches


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def loss_curve(log_csv: Path) -> list[dict[str, float]]:
    """``batch``, ``optimizer_step`` and ``loss`` of every logged batch of a training run."""
    return [
        {key: row[key] for key in ("batch", "optimizer_step", "loss")} for row in read_log(log_csv)
    ]


@torch.no_grad()
def sampling_ms_per_patch(model_file: Path, repeats: int = 2) -> float:
    """CPU milliseconds per patch to sample a ``SPEED_CANVAS`` text-to-image canvas, batch 1, one
    thread, step by step (NAR / P-NAR cannot run in waves), best of ``repeats``. Process CPU time,
    so trainings running beside it do not inflate it."""
    model = load_model(model_file).eval()
    plan = make_plan(PatchGrid(*SPEED_CANVAS), model.extent, "omega")
    text = [SPEED_PROMPT] if model.text is not None else None
    options = SamplerOptions(seed=0, wavefront=False, progress=False)
    with cpu_threads(1):  # a warm-up call, then the best of ``repeats``
        best = timed(lambda: sample(model, plan, text=text, options=options), 1, rounds=repeats)
    return 1000 * best.cpu / plan.num_steps


def measure_seed(run_dir: Path, results_file: Path) -> dict[str, Any]:
    """What one seed's run measured (see the module docstring) plus the harness results file of
    its model. The training run's own measures are written to ``run_dir/measures.json`` and
    reused from there."""
    path = run_dir / "measures.json"
    if path.is_file():
        return {**json.loads(path.read_text()), "results_file": str(results_file)}
    curve = loss_curve(run_dir / "log.csv")
    report = json.loads((run_dir / "eval.json").read_text())
    exported = report.get(report["exported"], {})
    measures = {
        "heldout_nll": exported.get("loss"),  # absent for NAR / P-NAR (no next-token loss)
        "train_loss": float(np.mean([point["loss"] for point in curve[-LAST_BATCHES:]])),
        "optimizer_steps": report["optimizer_steps"],
        "ms_per_patch": sampling_ms_per_patch(run_dir / "model.safetensors"),
        "curve": curve,
    }
    atomic_write_json(path, measures)
    return {**measures, "results_file": str(results_file)}


def relative_speed(measures: list[dict[str, Any]], reference: list[dict[str, Any]]) -> None:
    """Add each seed's inference speed relative to the default arm's same seed (paper Table 6a's
    "relative inference speed": the AR decoder is 1)."""
    for mine, default in zip(measures, reference, strict=True):
        mine["relative_inference_speed"] = default["ms_per_patch"] / mine["ms_per_patch"]


def seed_interval(values: list[float], level: float = 0.95) -> dict[str, Any] | None:
    """The Student-t interval of the mean of ``values`` (one per seed), None for one seed."""
    n = len(values)
    if n < 2:
        return None
    half = stats.t.ppf(0.5 + level / 2, n - 1) * np.std(values, ddof=1) / math.sqrt(n)
    mean = float(np.mean(values))
    return {
        "low": mean - half,
        "high": mean + half,
        "level": level,
        "replicates": n,
        "seed": 0,
        "method": "student-t over training seeds",
    }


SEED_MEAN = " · mean over training seeds"


def averaged(template: MetricEntry, values: list[float]) -> MetricEntry:
    """``template`` (one seed's entry) with the mean over seeds, ``per_seed`` and their interval;
    its id and config say that it is a seed average."""
    config = {**template["config"], "aggregate": "mean over training seeds"}
    interval, n = seed_interval(values), len(values)
    entry: MetricEntry = {
        **{k: v for k, v in template.items() if k not in ("interval", "no_interval")},
        "id": _digest({"metric": template["id"], "aggregate": config["aggregate"]}),
        "name": template["name"] + SEED_MEAN,
        "value": float(np.mean(values)),
        "config": config,
        "stderr": None if interval is None else float(np.std(values, ddof=1) / math.sqrt(n)),
        "per_seed": [float(v) for v in values],
        "interval": interval,
    }
    if interval is None:
        entry["no_interval"] = "one training seed"
    return entry


# Quantities a training run measures beside the harness: (label, better, what it is).
RUN_QUANTITIES = {
    "heldout_nll": ("Held-out NLL (nats/token)", "lower", "EMA or raw weights, whichever is lower"),
    "train_loss": ("Training loss, last batches", "lower", f"mean of the last {LAST_BATCHES}"),
    "ms_per_patch": ("Sampling CPU ms per patch", "lower", "batch 1, one thread, step by step"),
    "relative_inference_speed": (
        "Relative inference speed (x the default arm)",
        "higher",
        "the default arm's ms per patch over this arm's, seed by seed",
    ),
}


def _run_entry(base: str, canvas: tuple[int, int], values: list[float]) -> MetricEntry:
    label, better, what = RUN_QUANTITIES[base]
    config = {"quantity": base, "definition": what, "canvas_patches": list(canvas)}
    template: MetricEntry = {
        "id": _digest(config),
        "name": f"{label} [{canvas[0]}x{canvas[1]} patches]",
        "base": base,
        "value": 0.0,
        "better": better,
        "paper_comparable": False,
        "features": "",
        "config": config,
    }
    return averaged(template, values)


def arm_results(
    seeds: list[int],
    runs: list[Results],
    measures: list[dict[str, Any]],
    setting: str,
    canvas: tuple[int, int],
) -> Results:
    """One arm's seed-averaged results from its per-seed harness results and measures
    (``canvas``: the training canvas in patches)."""
    first = runs[0]
    metrics = [
        averaged(entry, [run["metrics"][i]["value"] for run in runs])
        for i, entry in enumerate(first["metrics"])
    ]
    for base in RUN_QUANTITIES:
        values = [m.get(base) for m in measures]
        if all(v is not None for v in values):
            metrics.append(_run_entry(base, canvas, values))
    checkpoints = [run["model"]["checkpoint_sha256"] for run in runs]
    return build_results(
        task=first["task"],
        model={
            **first["model"],
            "checkpoint": ", ".join(run["model"]["checkpoint"] for run in runs),
            "checkpoint_sha256": _digest(checkpoints),
            "setting": setting,
        },
        dataset=first["dataset"],
        metrics=metrics,
        n_samples=first["n_samples"],
        samples_sha256=_digest([run["samples_sha256"] for run in runs]),
        seeds={"task": first["seeds"].get("task", 0), **{f"training_{s}": s for s in seeds}},
        config={**first["config"], "training_seeds": seeds, "training_canvas": list(canvas)},
        device=first["device"],
        wall_time_s={"total": float(sum(run["wall_time_s"]["total"] for run in runs))},
        paper_ref=first["paper_ref"],
        protocol=f"{first['protocol']}; mean over training seeds {seeds}",
        extra={
            "per_seed_results": [m["results_file"] for m in measures],
            "loss_curves": {str(s): m["curve"] for s, m in zip(seeds, measures, strict=True)},
        },
    )
