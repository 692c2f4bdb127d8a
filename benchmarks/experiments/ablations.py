"""``nuwa-eval ablations [--preset small] [--jobs 2]``: train and evaluate each NCP/ADC arm
(paper Tables 4-6) under several seeds.

Tokenise the procedural training and held-out images once with the bundled tokenizer
(``nuwa-data tokenize``); train every arm under every seed (``nuwa-train stage=transformer
model=<model> ablation=<arm> seed=<seed>``, ``--jobs`` at a time); then evaluate each seed's model
on ``lhqc_t2i`` and average over seeds (``ablation_results``): one results file per arm and one
leaderboard row per arm and quantity, with the seeds' values and a Student-t interval over them,
linked to the paper row the arm stands for (``paper_ref``). Last, judge each of the paper's
claims on the paired differences over seeds (``ablation_verdicts``, ``verdicts.json``). Every
step resumes: shards, training runs (``last.safetensors``), evaluations and measures are reused.

The ``small`` preset is a CPU-sized stand-in for the paper's Base-model ablations, on the
embedded procedural set with offline features (the landscape network for image metrics): its
rows are never paper-comparable. The ``smoke`` preset checks that everything composes and writes
no leaderboard rows.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.experiments.ablation_arms import ARMS, VARIANTS, Variant
from benchmarks.experiments.ablation_plots import plot_figures
from benchmarks.experiments.ablation_results import arm_results, measure_seed, relative_speed
from benchmarks.experiments.ablation_verdicts import format_verdicts, verdicts, write_verdicts
from benchmarks.experiments.jobs import call, run_parallel, script
from benchmarks.harness.config import resolve_config
from benchmarks.harness.run import Identity, RunOutcome, evaluate
from benchmarks.task_commands import DEFAULT_OUT, load_pipeline
from benchmarks.tasks import TaskError, get_task
from leaderboard import (
    DEFAULT_TABLE,
    Results,
    append_rows,
    load_results,
    rows_from_results,
    write_results,
)
from nuwa.bundle import BUNDLE_DIR, BUNDLE_FILES


@dataclass(frozen=True)
class Preset:
    """How big an ablation sweep is: data, training schedule, seeds and the evaluation run.

    ``smoke`` marks a composition check (one batch, a couple of samples): its rows are never shown
    beside the paper's.
    """

    name: str
    model: str  # nuwa/conf/model/<model>.yaml
    train_images: int
    val_images: int
    image_size: int
    batches: int
    batch_size: int
    canvas: tuple[int, int]  # training canvas in patches
    eval_n: int
    seeds: tuple[int, ...] = (0, 1, 2)
    eval_overrides: tuple[str, ...] = (
        "metrics=[block_fid,swd,attr_agree,attr_agree_shuffled,layout]",
    )
    variants: tuple[str, ...] = ARMS
    train_overrides: tuple[str, ...] = field(default_factory=tuple)
    smoke: bool = False


PRESETS = {
    # 8 arms x 3 seeds on a 2-core CPU, two trainings at a time (--jobs 2, one thread each).
    "small": Preset(
        "small",
        "ablation",
        train_images=960,
        val_images=32,
        image_size=512,
        batches=250,
        batch_size=8,
        canvas=(3, 3),
        eval_n=16,
    ),
    # Composition check: one training batch and a 2-sample evaluation per arm, one seed.
    "smoke": Preset(
        "smoke",
        "ablation",
        train_images=8,
        val_images=2,
        image_size=512,
        batches=1,
        batch_size=2,
        canvas=(2, 2),
        eval_n=2,
        seeds=(0,),
        eval_overrides=("metrics=[block_fid]",),
        variants=("none", "pos_emb_post"),
        smoke=True,
    ),
}


def sweep_dir(out: Path, preset: Preset) -> Path:
    """The preset's folder: ``shards/`` and one folder per arm."""
    return out / "ablations" / preset.name


def run_dir(out: Path, preset: Preset, variant: str, seed: int) -> Path:
    """Where one arm's training run under ``seed`` lives (``model.safetensors`` when finished)."""
    return sweep_dir(out, preset) / variant / f"seed{seed}"


def tokenize_command(out: Path, preset: Preset, tokenizer: Path, split: str) -> list[str]:
    """The ``nuwa-data tokenize`` call that writes the preset's ``train`` or ``val`` shards."""
    count = preset.train_images if split == "train" else preset.val_images
    return [
        script("nuwa-data"), "tokenize",
        "--tokenizer", str(tokenizer),
        "--source", f"procedural:{count}",
        "--split", split,
        "--size", str(preset.image_size),
        "--out", str(sweep_dir(out, preset) / "shards" / split),
    ]  # fmt: skip


def train_command(out: Path, preset: Preset, variant: str, seed: int) -> list[str]:
    """The ``nuwa-train stage=transformer`` call that trains one arm under one seed."""
    shards = sweep_dir(out, preset) / "shards"
    return [
        script("nuwa-train"),
        "stage=transformer",
        f"model={preset.model}",
        f"ablation={variant}",
        f"seed={seed}",
        f"shards={shards / 'train'}",
        f"val_shards={shards / 'val'}",
        f"run_dir={run_dir(out, preset, variant, seed)}",
        f"model.batches={preset.batches}",
        f"model.batch_size={preset.batch_size}",
        f"model.canvas=[{preset.canvas[0]},{preset.canvas[1]}]",
        *preset.train_overrides,
    ]


def evaluate_variant(
    out: Path,
    preset: Preset,
    variant: Variant,
    seed: int,
    tokenizer: Path,
    table: Path | None,
    device: str = "cpu",
    progress: bool = True,
) -> RunOutcome:
    """Evaluate one arm's model trained under ``seed`` on lhqc_t2i (procedural set) and append
    its rows."""
    spec = get_task("lhqc_t2i")
    config = resolve_config(
        spec,
        data="procedural",
        n=preset.eval_n,
        batch_size=8,
        device=device,
        features="offline",
        overrides=list(preset.eval_overrides),
    )
    model = run_dir(out, preset, variant.ablation, seed) / "model.safetensors"
    pipeline = load_pipeline(str(model), str(tokenizer), None, device)
    identity = Identity(
        model=f"nuwa-{preset.model}-ablation-{preset.name}",
        checkpoint=str(model.resolve()),
        setting=f"{variant.setting} (seed {seed})",
        paper_ref=variant.paper_ref,
    )
    return evaluate(
        spec, config, pipeline, out=out, table=table, identity=identity, progress=progress
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Train and evaluate the NCP/ADC ablations (one leaderboard row per variant and metric)."""
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument(
        "--tokenizer",
        type=Path,
        default=BUNDLE_DIR / BUNDLE_FILES["tokenizer"],
        help="tokenizer the arms train and sample with (default: the bundled one)",
    )
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), help="only these arms")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--no-leaderboard", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--jobs", type=int, default=1, help="trainings at a time (each gets cores / jobs threads)"
    )
    parser.add_argument(
        "--stage", choices=("all", "train"), default="all", help="train only, or train + evaluate"
    )


def run(args: argparse.Namespace) -> int:
    """Tokenise once, train every arm under every seed, then evaluate (each step resumes)."""
    preset = PRESETS[args.preset]
    arms = args.variants or preset.variants
    tokenizer = args.tokenizer
    shards = sweep_dir(args.out, preset) / "shards"
    prepare = [
        tokenize_command(args.out, preset, tokenizer, split)
        for split in ("train", "val")
        if not (shards / split).exists()
    ]
    training = [
        (train_command(args.out, preset, arm, seed), run_dir(args.out, preset, arm, seed))
        for seed in preset.seeds
        for arm in arms
        if not (run_dir(args.out, preset, arm, seed) / "model.safetensors").exists()
    ]
    if args.dry_run:
        steps = [*prepare, *(command for command, _ in training)]
        print("\n".join(" ".join(step) for step in steps) or "every arm is trained")
        return 0
    if not tokenizer.exists():
        raise TaskError(
            f"the ablations tokenise with the bundled tokenizer, and {tokenizer} is missing"
        )
    for step in prepare:
        call(step)
    run_parallel([(command, folder / "train.log") for command, folder in training], args.jobs)
    if args.stage == "train":
        return 0
    table = None if args.no_leaderboard or preset.smoke else args.table
    if preset.smoke and not args.no_leaderboard:
        print("smoke preset: results files only; a composition check adds no leaderboard rows")
    averaged, reference = {}, default_measures(args.out, preset)
    for arm in sorted(arms, key=lambda name: name != "none"):  # the default arm first
        path, added, measures = evaluate_arm(args, preset, VARIANTS[arm], table, reference)
        reference = measures if arm == "none" else reference
        averaged[arm] = load_results(path)
        print(format_arm(averaged[arm], VARIANTS[arm], path, table, added))
    everything = {  # arms evaluated by an earlier or a parallel call count for the figures too
        arm: load_results(sweep_dir(args.out, preset) / arm / "results.json")
        for arm in preset.variants
        if (sweep_dir(args.out, preset) / arm / "results.json").is_file()
    }
    for figure in plot_figures(sweep_dir(args.out, preset), everything):
        print(f"figure   {figure}")
    found = verdicts(everything)
    if found:
        print(format_verdicts(found), end="")
        print(f"verdicts {write_verdicts(sweep_dir(args.out, preset) / 'verdicts.json', found)}")
    return 0


def default_measures(out: Path, preset: Preset) -> list[dict] | None:
    """The default arm's per-seed measures if every seed has them already (so a call with
    ``--variants`` that leaves out the default can still give relative speeds), else None."""
    paths = [run_dir(out, preset, "none", seed) / "measures.json" for seed in preset.seeds]
    if not all(path.is_file() for path in paths):
        return None
    return [json.loads(path.read_text()) for path in paths]


def evaluate_arm(
    args: argparse.Namespace,
    preset: Preset,
    variant: Variant,
    table: Path | None,
    reference: list[dict] | None,
) -> tuple[Path, int, list[dict]]:
    """Evaluate every seed of one arm, write its seed-averaged results file and append its rows
    to ``table`` (None: none). ``reference``: the default arm's per-seed measures, for the
    relative inference speed (None: the default arm itself, or not swept). Returns the file, the
    rows added and the per-seed measures."""
    runs, measures = [], []
    for seed in preset.seeds:
        outcome = evaluate_variant(
            args.out, preset, variant, seed, args.tokenizer, None, args.device, not args.quiet
        )
        runs.append(outcome.results)
        folder = run_dir(args.out, preset, variant.ablation, seed)
        measures.append(measure_seed(folder, outcome.path))
    default = measures if variant.ablation == "none" else reference
    if default is not None:
        relative_speed(measures, default)
    results = arm_results(list(preset.seeds), runs, measures, variant.setting, preset.canvas)
    path = sweep_dir(args.out, preset) / variant.ablation / "results.json"
    write_results(path, results)
    added = append_rows(rows_from_results(results, path), table) if table else 0
    return path, added, measures


def format_arm(
    results: Results, variant: Variant, path: Path, table: Path | None, added: int
) -> str:
    """An arm's seed-averaged quantities, one line each: mean, interval and the seeds' values."""
    lines = [f"{variant.ablation}: {variant.setting} ({variant.paper_ref or 'no paper row'})"]
    for metric in results["metrics"]:
        interval = metric.get("interval")
        span = f"[{interval['low']:.4f}, {interval['high']:.4f}]" if interval else "(one seed)"
        seeds = ", ".join(f"{v:.4f}" for v in metric["per_seed"])
        lines.append(f"  {metric['name']:<58} {metric['value']:>11.4f}  {span}  seeds: {seeds}")
    where = f"  ·  leaderboard {table} (+{added} rows)" if table else ""
    lines.append(f"  results  {path}{where}")
    return "\n".join(lines) + "\n"
