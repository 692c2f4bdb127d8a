"""``nuwa-eval ablations [--preset small]``: train and evaluate each NCP/ADC variant (Tables 4-6).

For every variant of the preset: tokenise the procedural training images once with the bundled
tokenizer (``nuwa-data tokenize``), train the vision decoder with that variant
(``nuwa-train stage=transformer model=<model> ablation=<variant>``), then evaluate it on
``lhqc_t2i`` and append one leaderboard row per metric, the variant as the row's setting. Every
step resumes: tokenised shards, training runs (``last.safetensors``) and evaluations are reused.

The ``small`` preset is a CPU-sized stand-in for the paper's Base-model ablations, on the
embedded procedural set with offline features (the landscape network for image metrics,
surrogates otherwise): its rows are never paper-comparable.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness.config import resolve_config
from benchmarks.harness.report import format_outcome
from benchmarks.harness.run import Identity, RunOutcome, evaluate
from benchmarks.task_commands import DEFAULT_OUT, load_pipeline
from benchmarks.tasks import TaskError, get_task
from leaderboard import DEFAULT_TABLE
from nuwa.bundle import BUNDLE_DIR, BUNDLE_FILES


@dataclass(frozen=True)
class Variant:
    """One arm: the ``nuwa/conf/ablation`` config it trains with, its leaderboard setting, and
    the paper row it stands in for ("" if the paper has no number for it)."""

    ablation: str
    setting: str
    paper_ref: str = ""


BASE = "NUWA-Infinity base"
VARIANTS = {
    variant.ablation: variant
    for variant in (
        Variant(
            "none",
            "default: extent 2, caches, ADC.Emb pre, patch loss, AR",
            f"table4/{BASE}/ADC.Emb pre (added to keys)",
        ),
        Variant("ncp_extent_1", "NCP extent 1"),
        Variant("ncp_extent_3", "NCP extent 3"),
        Variant("no_cache", "NCP without caches", f"table5/{BASE}/NCP without caches"),
        Variant(
            "pos_emb_post",
            "ADC.Emb post (bias after attention)",
            f"table4/{BASE}/ADC.Emb post (bias after attention)",
        ),
        Variant("pos_emb_none", "ADC.Emb none"),
        Variant("loss_accumulated", "accumulated loss", f"table6c/{BASE}/accumulated loss"),
        Variant("decoder_nar", "NAR local decoder", f"table6a/{BASE}/NAR local decoder"),
        Variant("decoder_pnar", "P-NAR local decoder", f"table6a/{BASE}/P-NAR local decoder"),
    )
}
# Paper rows the default arm also stands for (the paper's default is each table's other arm).
DEFAULT_ALSO = (
    f"table5/{BASE}/NCP with caches",
    f"table6a/{BASE}/AR local decoder",
    f"table6c/{BASE}/patch loss (optimise each patch)",
)


@dataclass(frozen=True)
class Preset:
    """How big an ablation sweep is: training data, schedule, and the evaluation run."""

    name: str
    model: str  # nuwa/conf/model/<model>.yaml
    train_images: int
    image_size: int
    batches: int
    batch_size: int
    canvas: tuple[int, int]  # training canvas in patches
    eval_n: int
    eval_overrides: tuple[str, ...] = ("metrics=[block_fid,block_fid_pooled,swd]",)
    variants: tuple[str, ...] = tuple(VARIANTS)
    train_overrides: tuple[str, ...] = field(default_factory=tuple)


PRESETS = {
    # ~9 arms x (about 3 min training + 2 min evaluation) on a 2-core CPU.
    "small": Preset(
        "small",
        "small",
        train_images=256,
        image_size=512,
        batches=60,
        batch_size=8,
        canvas=(4, 4),
        eval_n=16,
    ),
    # Composition check: one training batch and a 2-sample evaluation per arm.
    "smoke": Preset(
        "smoke",
        "small",
        train_images=8,
        image_size=512,
        batches=1,
        batch_size=2,
        canvas=(2, 2),
        eval_n=2,
        eval_overrides=("metrics=[block_fid]",),
        variants=("none", "pos_emb_post"),
    ),
}


def run_dir(out: Path, preset: Preset, variant: str) -> Path:
    """Where a variant's training run lives (``model.safetensors`` when finished)."""
    return out / "ablations" / preset.name / variant


def _script(name: str) -> str:
    """A console script of this installation (beside the running Python), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


def tokenize_command(out: Path, preset: Preset, tokenizer: Path) -> list[str]:
    """The ``nuwa-data tokenize`` call that writes the preset's training shards."""
    return [
        _script("nuwa-data"), "tokenize",
        "--tokenizer", str(tokenizer),
        "--source", f"procedural:{preset.train_images}",
        "--split", "train",
        "--size", str(preset.image_size),
        "--out", str(out / "ablations" / preset.name / "shards"),
    ]  # fmt: skip


def train_command(out: Path, preset: Preset, variant: str) -> list[str]:
    """The ``nuwa-train stage=transformer`` call that trains one variant."""
    return [
        _script("nuwa-train"),
        "stage=transformer",
        f"model={preset.model}",
        f"ablation={variant}",
        f"shards={out / 'ablations' / preset.name / 'shards'}",
        f"run_dir={run_dir(out, preset, variant)}",
        f"model.batches={preset.batches}",
        f"model.batch_size={preset.batch_size}",
        f"model.canvas=[{preset.canvas[0]},{preset.canvas[1]}]",
        f"model.sample_every={preset.batches}",
        f"model.ckpt_every={max(1, preset.batches // 4)}",
        *preset.train_overrides,
    ]  # fmt: skip


def _call(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    if subprocess.run(command).returncode != 0:
        raise TaskError(f"step failed: {' '.join(command[:3])} ... (see its output above)")


def evaluate_variant(
    out: Path,
    preset: Preset,
    variant: Variant,
    tokenizer: Path,
    table: Path | None,
    device: str = "cpu",
    progress: bool = True,
) -> RunOutcome:
    """Evaluate one trained variant on lhqc_t2i (procedural set) and append its rows."""
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
    model = run_dir(out, preset, variant.ablation) / "model.safetensors"
    pipeline = load_pipeline(str(model), str(tokenizer), None, device)
    identity = Identity(
        model=f"nuwa-{preset.model}-ablation-{preset.name}",
        checkpoint=str(model.resolve()),
        setting=variant.setting,
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


def run(args: argparse.Namespace) -> int:
    """Tokenise once, then train and evaluate each variant (each step resumes)."""
    preset = PRESETS[args.preset]
    variants = [VARIANTS[name] for name in (args.variants or preset.variants)]
    tokenizer = args.tokenizer
    shards = args.out / "ablations" / preset.name / "shards"
    steps = [] if shards.exists() else [tokenize_command(args.out, preset, tokenizer)]
    steps += [
        train_command(args.out, preset, v.ablation)
        for v in variants
        if not (run_dir(args.out, preset, v.ablation) / "model.safetensors").exists()
    ]
    if args.dry_run:
        print("\n".join(" ".join(step) for step in steps) or "every variant is trained")
        return 0
    if not tokenizer.exists():
        raise TaskError(
            f"the ablations tokenise with the bundled tokenizer, and {tokenizer} is missing"
        )
    for step in steps:
        _call(step)
    table = None if args.no_leaderboard else args.table
    for variant in variants:
        outcome = evaluate_variant(
            args.out, preset, variant, tokenizer, table, args.device, not args.quiet
        )
        sys.stdout.write(format_outcome(outcome, table))
    return 0
