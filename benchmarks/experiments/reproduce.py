"""``nuwa-eval reproduce table2|table3|table3b|table4|table5|table6 [--data ...]``.

Runs every row of a paper table that a model on this machine can run and prints ours beside the
paper's number. A difference is shown only where ours is paper-comparable (the paper's kind of
features, real data, the full test set); otherwise the line says why not. Rows that need a model
we do not have say which one; the Taming and MaskGIT baselines are paper-only for now.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from benchmarks.experiments import ablation_arms, ablations
from benchmarks.harness.distributed import Ranks
from benchmarks.harness.run import Identity, RunOutcome
from benchmarks.task_commands import (
    add_common_arguments,
    checkpoint_label,
    execute,
    load_pipeline,
)
from leaderboard import Row, load_results, paper_rows, rows_from_results
from leaderboard.view import format_delta, format_value

TABLES = ("table2", "table3", "table3b", "table4", "table5", "table6")
TITLES = {
    "table2": "Table 2: Text-to-Image^HD on LHQC",
    "table3": "Table 3: Image Outpainting^HD on LHQC (Block-FID)",
    "table3b": "Table 3b: Image Animation^HD on LHQ-V (FVD)",
    "table4": "Table 4: ADC.Emb feed position (T2I, Base)",
    "table5": "Table 5: caches in NCP (T2I)",
    "table6": "Table 6: vision-decoder ablations (T2I, Base; 6b sizes)",
}
BASELINES = ("Taming", "MaskGIT")
NOT_MEASURED = {
    "convergence_epoch": "the sweep does not train to convergence; `nuwa-eval ablations` reports "
    "held-out NLL at equal batches and the loss curves instead",
}


@dataclass(frozen=True)
class Run:
    """One harness run that stands for some paper rows."""

    task: str
    text: bool | None = None
    x4: bool = False
    variant: str = ""  # an ablation arm (its trained checkpoint), "" for --checkpoint


@dataclass
class Line:
    """One paper number, and ours for it (or why there is none)."""

    paper: Row
    run: Run | None = None
    reason: str = ""
    ours: Row | None = None


@dataclass(frozen=True)
class Abilities:
    """What the checkpoint under test can do."""

    text: bool = True  # has a text tower (T2I, outpainting with text)
    video: bool = False  # temporal extent > 0 (image animation)


def abilities(pipeline: object) -> Abilities:
    """Read the abilities off a ``nuwa.pipeline.Pipeline`` (defaults for other objects)."""
    extent = getattr(getattr(pipeline, "model", None), "extent", None)
    return Abilities(getattr(pipeline, "text_conditioned", True), bool(getattr(extent, "f", 0)))


def _plan(row: Row, can: Abilities) -> tuple[Run | None, str]:
    """What to run for one paper row, or why nothing can be."""
    table, method, setting = row.paper_ref.split("/", 2)
    if method in BASELINES:
        return None, f"paper only: the {method} baseline is not implemented yet (its own issue)"
    if row.metric_base in NOT_MEASURED:
        return None, NOT_MEASURED[row.metric_base]
    needs_text = table == "table2" or (table == "table3" and setting == "with text")
    if needs_text and not can.text:
        return None, "needs a text-conditioned model; this checkpoint has no text tower"
    if table == "table2":
        return Run("lhqc_t2i", x4=True), ""
    if table == "table3":
        return Run(row.task, text=setting == "with text"), ""
    if table == "table3b":
        decoder = method.split("(")[1].rstrip(")")
        if not decoder.startswith("AR"):
            return None, f"needs an image-animation model with a {decoder}; none is available"
        if not can.video:
            return None, "needs an image-animation model (temporal extent > 0), not an image model"
        return Run("lhqv_animate"), ""
    if table == "table6b":
        return (
            None,
            f"needs a trained {method.split()[-1]}-size model ({setting}); none is available",
        )
    arm = next(
        (v.ablation for v in ablation_arms.VARIANTS.values() if v.paper_ref == row.paper_ref), None
    )
    if arm is None and row.paper_ref in ablation_arms.DEFAULT_ALSO:
        arm = "none"
    if arm is None:
        return None, "no ablation arm stands for this row"
    return Run("lhqc_t2i", variant=arm), ""


def plan_table(table: str, can: Abilities) -> list[Line]:
    """The paper rows of ``table`` (table6: 6a-6c), each with its run or the reason for none."""
    rows = [row for row in paper_rows() if row.paper_ref.split("/")[0].startswith(table)]
    if table == "table3":
        rows = [row for row in rows if row.paper_ref.startswith("table3/")]
    lines = []
    for row in rows:
        run, reason = _plan(row, can)
        lines.append(Line(row, run, reason))
    return lines


def _note(line: Line) -> tuple[str, str]:
    """(Δ, note) for one line: a difference only where ours is paper-comparable."""
    ours, paper = line.ours, line.paper
    if ours is None:
        return "", line.reason
    reasons = ours.not_comparable_reasons()
    if reasons or not ours.paper_comparable:
        why = "; ".join(reason.split(" (")[0] for reason in reasons) or "protocol differs"
        return "n/c", f"{ours.task_label}, {ours.dataset}: not comparable ({why})"
    delta = format_delta(ours.value - paper.value, paper.value)
    return delta, f"{ours.task_label}, {ours.dataset} (protocol: ours)"


def format_lines(table: str, lines: list[Line]) -> str:
    """Ours beside the paper's, one line per paper number."""
    header = f"{'task':<20} {'paper row':<50} {'metric':<24} {'paper':>7} {'ours':>9} {'Δ':>7}"
    out = [TITLES[table], f"  {header}  note"]
    for line in lines:
        paper = line.paper
        row = paper.paper_ref.split("/", 1)[1].rstrip("/")
        ours = format_value(line.ours.value) if line.ours else "-"
        delta, note = _note(line)
        cells = (
            f"{paper.task:<20} {row:<50.50} {paper.metric_base:<24} {format_value(paper.value):>7}"
        )
        out.append(f"  {cells} {ours:>9} {delta:>7}  {note}")
    return "\n".join(out) + "\n"


def _evaluate(run: Run, args: argparse.Namespace, pipeline: object) -> RunOutcome | str:
    """Run one Run; a string says why it cannot run (a missing ablation model)."""
    if not run.variant:
        identity = Identity(checkpoint=checkpoint_label(args.checkpoint))
        return execute(
            args, run.task, pipeline, Ranks(), x4=run.x4, text=run.text, identity=identity
        )
    preset = ablations.PRESETS[args.preset]
    if preset.smoke:
        return f"the {preset.name} preset is a composition check, never shown beside the paper"
    path = ablations.sweep_dir(args.out, preset) / run.variant / "results.json"
    if not path.is_file():
        return (
            f"needs the seed-averaged {run.variant!r} arm "
            f"(nuwa-eval ablations --preset {preset.name} --out {args.out})"
        )
    return RunOutcome(results=load_results(path), path=path)


def reproduce(table: str, args: argparse.Namespace, pipeline: object | None = None) -> str:
    """Run what ``table`` needs with the flags in ``args`` (``pipeline``: the model under test,
    loaded from ``--checkpoint`` if None) and return the comparison text."""
    if pipeline is None:
        pipeline = load_pipeline(args.checkpoint, args.tokenizer, args.pg_tokenizer, args.device)
    lines = plan_table(table, abilities(pipeline))
    notices: dict[str, None] = {}  # each once, in order, though many runs share them
    for run in dict.fromkeys(line.run for line in lines if line.run):
        outcome = _evaluate(run, args, pipeline)
        notices.update(dict.fromkeys(getattr(outcome, "notices", [])))
        for line in lines:
            if line.run != run:
                continue
            if isinstance(outcome, str):
                line.reason = outcome
                continue
            ours = rows_from_results(outcome.results, outcome.path)
            line.ours = next((r for r in ours if r.metric_base == line.paper.metric_base), None)
            line.reason = "" if line.ours else f"this run did not measure {line.paper.metric_base}"
    return "".join(f"note: {notice}\n" for notice in notices) + format_lines(table, lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Reproduce a paper table: run every row we can and print ours beside the paper's."""
    parser.add_argument("paper_table", metavar="table", choices=TABLES)
    parser.add_argument(
        "--preset",
        default="small",
        choices=sorted(ablations.PRESETS),
        help="ablation preset whose models stand in for Tables 4-6 (default small)",
    )
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Print the comparison."""
    sys.stdout.write(reproduce(args.paper_table, args))
    return 0
