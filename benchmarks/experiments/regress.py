"""``nuwa-eval regress --task <task> --baseline leaderboard``: CI regression on metrics.

Runs ``task`` in a small deterministic configuration (the bundled model unless ``--checkpoint``,
the embedded procedural set, offline features (the landscape network for image metrics, the
surrogate video network for FVD) and SWD, a fixed seed, 8 samples in float32) and compares
every metric with the accepted leaderboard row of the same configuration. A metric regresses
when the accepted value lies outside this run's bootstrap 95% interval on the worse side
(leaderboard.regress); an explicit ``--tolerance`` judges by that tolerance instead, and a run
without an interval falls back to ``TOLERANCES``. It exits 1 with a readable diff when one
regressed, 2 when there is no accepted row (record one with ``--accept``), 0 otherwise; the
report names the rule behind each verdict. Every call starts from an empty folder under
``--out`` (no cached samples or features), so a change anywhere in sampling or evaluation shows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.harness.config import resolve_config
from benchmarks.harness.generate import Pipeline
from benchmarks.harness.report import format_outcome
from benchmarks.harness.run import Identity, evaluate
from benchmarks.task_commands import DEFAULT_OUT, load_pipeline
from benchmarks.tasks import TaskError, get_task, list_tasks
from leaderboard import (
    DEFAULT_TABLE,
    LeaderboardError,
    Tolerance,
    append_rows,
    format_verdicts,
    judge_run,
    load_results,
    load_table,
    rows_from_results,
)
from leaderboard.cli import parse_tolerances

# What the regression run measures per task kind (cheap: project-trained, weight-free or surrogate
# features, never weights a machine may or may not have).
METRICS = {
    "outpaint": ["block_fid", "swd"],
    "t2i": ["block_fid", "swd"],
    "animate": ["fvd"],
    "t2v": ["fvd"],
}
# At least MIN_INTERVAL_SAMPLES, so that every metric gets a bootstrap interval to be judged by.
N_SAMPLES = {"outpaint": 8, "t2i": 8, "animate": 8, "t2v": 8}
BATCH_SIZE = 8
# float32, on any thread count. Before QK-norm the bundled model's attention logits reached
# ~28,000, float32 rounding decided which token was drawn (1 and 2 threads agreed on 87% of the
# tokens), and regress sampled in float64 at 7-15x the cost. With QK-norm they stay below 26, the
# sampler draws its uniforms in float64 and orders the top-k codes by id, and 8 text-to-image
# canvases came out identical on 1 and 2 threads (python -m
# benchmarks.diagnostics.attention_health). The tolerance then only has to absorb the last bits of
# the float32 feature extractors.
DTYPE = "float32"
# Allowed worsening for a run without a bootstrap interval (the interval judges otherwise): any
# larger change is a changed sampler, model or metric (re-accept if meant).
TOLERANCES = {
    "block_fid": Tolerance(relative=0.02),
    "swd": Tolerance(relative=0.02),
    "fvd": Tolerance(relative=0.02),
}
OUT = DEFAULT_OUT / "regress"


def regression_setting(kind_setting: str, n: int) -> str:
    """The leaderboard setting of regression rows, kept apart from full runs' rows."""
    return "; ".join(part for part in (kind_setting, f"regress n={n} {DTYPE}") if part)


def regress(
    task: str,
    pipeline: Pipeline,
    *,
    checkpoint: str = "bundled",
    table: Path = DEFAULT_TABLE,
    baseline: str = "leaderboard",
    tolerances: dict[str, Tolerance] | None = None,
    accept: bool = False,
    out: Path = OUT,
    overrides: list[str] | tuple[str, ...] = (),
    progress: bool = True,
) -> tuple[int, str]:
    """Run the regression configuration of ``task``; returns (exit status, report text)."""
    spec = get_task(task)
    n = N_SAMPLES[spec.kind]
    config = resolve_config(
        spec,
        data="procedural",
        n=n,
        batch_size=BATCH_SIZE,
        features="offline",
        overrides=[f"metrics=[{','.join(METRICS[spec.kind])}]", f"dtype={DTYPE}", *overrides],
    )
    setting = regression_setting("without text" if spec.kind == "outpaint" else "", n)
    identity = Identity(checkpoint=checkpoint, setting=setting)
    out.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=out, prefix=time.strftime("%Y%m%d-%H%M%S-")))
    outcome = evaluate(
        spec, config, pipeline, out=fresh, table=None, identity=identity, progress=progress
    )
    report = format_outcome(outcome, None)
    rows = rows_from_results(outcome.results, outcome.path)
    if accept:
        # The run's folder is a throwaway one: a grid link to it would be broken in every checkout.
        added = append_rows([replace(row, sample_grid="") for row in rows], table)
        return 0, report + f"accepted as the baseline: {table} (+{added} rows)\n"
    reference = (
        load_table(table)
        if baseline == "leaderboard"
        else rows_from_results(load_results(baseline), baseline)
    )
    try:
        verdicts = judge_run(outcome.results, reference, tolerances, fallback=TOLERANCES)
    except LeaderboardError as error:
        hint = f"record a baseline with `nuwa-eval regress --task {task} --accept`"
        raise LeaderboardError(f"{error}; {hint}") from None
    regressed = any(verdict.regressed for verdict in verdicts)
    return (1 if regressed else 0), report + format_verdicts(verdicts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CI regression: a small deterministic run compared with the accepted leaderboard row."""
    parser.add_argument("--task", required=True, choices=[spec.name for spec in list_tasks()])
    parser.add_argument(
        "--baseline",
        default="leaderboard",
        help="'leaderboard' (the accepted rows of --table) or a results JSON",
    )
    parser.add_argument(
        "--checkpoint", default="bundled", help="model to check (default: the bundled one)"
    )
    parser.add_argument("--tokenizer", help="tokenizer file, with a model file in --checkpoint")
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="judge KEY by a tolerance instead of the run's bootstrap interval: KEY a quantity "
        "(block_fid) or metric id, VALUE 0.5 or 5%%",
    )
    parser.add_argument(
        "--accept", action="store_true", help="record this run as the accepted baseline"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Exit 0 (every metric passed its rule) or 1 (regressed); errors are reported by the caller
    with exit status 2 (e.g. no accepted row)."""
    if args.baseline != "leaderboard" and not Path(args.baseline).is_file():
        raise TaskError(f"--baseline {args.baseline!r} is neither 'leaderboard' nor a results file")
    video = get_task(args.task).kind in ("animate", "t2v")
    pipeline = load_pipeline(args.checkpoint, args.tokenizer, None, "cpu", video=video)
    status, report = regress(
        args.task,
        pipeline,
        checkpoint=args.checkpoint,
        table=args.table,
        baseline=args.baseline,
        tolerances=parse_tolerances(args.tolerance),
        accept=args.accept,
        out=args.out,
        progress=not args.quiet,
    )
    sys.stdout.write(report)
    return status
