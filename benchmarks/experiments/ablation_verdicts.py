"""Does each ablation claim of the paper hold in the sweep? One verdict per claim and quantity.

A claim says which of two arms is better on a quantity: the default arm against one ablated arm
(paper Tables 4, 5, 6a, 6c and the figure "Ablation results on extents in NCP", whose
numbers are not recoverable: only its sign is). The evidence is the **paired difference**
over training seeds, arm minus default, seed by seed (the two runs of a seed share data order
and evaluation seed, so pairing removes that shared noise), with its Student-t 95% interval:

- **reproduced**: the interval excludes zero on the side the paper claims;
- **not reproduced**: it excludes zero on the other side (the opposite sign is measured);
- **inconclusive**: it contains zero (or fewer than two seeds).

The first quantity of a claim is the paper's own measure (Block-FID, or relative inference
speed); the others are this suite's extra evidence (layout row-profile L1, held-out NLL, the
offline text alignment) and are judged the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.experiments.ablation_arms import paper_refs
from benchmarks.experiments.ablation_results import seed_interval
from leaderboard import Results, paper_rows
from nuwa.io import atomic_write_json


@dataclass(frozen=True)
class Claim:
    """The paper says the default arm beats ``arm`` (or, with ``arm_better``, that ``arm`` beats
    the default) on ``quantities``; the paper's numbers are those of the rows ``arm`` stands in
    for (``ablation_arms.paper_refs``), where it has them."""

    source: str  # where the paper says it: a table, the NCP-extent figure, or no paper row
    statement: str
    arm: str
    quantities: tuple[str, ...]
    arm_better: bool = False


CLAIMS = (
    Claim(
        "Table 4",
        "ADC.Emb added to the keys (pre) beats a post-attention bias",
        "pos_emb_post",
        ("block_fid", "layout", "heldout_nll"),
    ),
    Claim(
        "no paper row",
        "a relative position embedding (ADC.Emb pre) beats none at all",
        "pos_emb_none",
        ("block_fid", "layout", "heldout_nll"),
    ),
    Claim(
        "Table 5",
        "NCP with caches beats NCP without caches",
        "no_cache",
        ("block_fid", "layout", "heldout_nll"),
    ),
    Claim(
        "Table 6a",
        "the AR local decoder beats P-NAR",
        "decoder_pnar",
        ("block_fid", "layout", "attr_agree"),
    ),
    Claim(
        "Table 6a",
        "the AR local decoder beats NAR",
        "decoder_nar",
        ("block_fid", "layout", "attr_agree"),
    ),
    Claim(
        "Table 6a",
        "P-NAR samples faster than AR",
        "decoder_pnar",
        ("relative_inference_speed",),
        arm_better=True,
    ),
    Claim(
        "Table 6a",
        "NAR samples faster than AR",
        "decoder_nar",
        ("relative_inference_speed",),
        arm_better=True,
    ),
    Claim(
        "Table 6c",
        "the per-patch loss beats the accumulated loss",
        "loss_accumulated",
        ("block_fid", "layout"),
    ),
    Claim(
        "Table 6c",
        "the per-patch loss converges in fewer epochs (here: lower held-out NLL at equal batches)",
        "loss_accumulated",
        ("heldout_nll",),
    ),
    Claim(
        "extent fig.",
        "a larger NCP extent (2) beats extent 1",
        "ncp_extent_1",
        ("block_fid", "layout", "heldout_nll"),
    ),
)


@dataclass(frozen=True)
class Verdict:
    """One claim judged on one quantity (means over seeds; ``difference``: arm minus default)."""

    claim: Claim
    quantity: str
    better: str  # "lower" or "higher"
    default: float
    arm: float
    difference: float
    interval: tuple[float, float] | None
    verdict: str
    paper: tuple[float, float] | None  # (default, arm) where the paper has both numbers


def judge(difference_interval: tuple[float, float] | None, better: str, arm_better: bool) -> str:
    """The verdict for an arm-minus-default interval, given which direction is better and which
    arm the paper says wins."""
    if difference_interval is None or difference_interval[0] <= 0 <= difference_interval[1]:
        return "inconclusive"
    arm_wins = (difference_interval[0] > 0) == (better == "higher")
    return "reproduced" if arm_wins == arm_better else "not reproduced"


def _per_seed(results: Results) -> dict[str, tuple[list[float], str]]:
    return {m["base"]: (m["per_seed"], m["better"]) for m in results["metrics"]}


def _paper_values(
    claim: Claim, quantity: str, paper: dict[tuple[str, str], float]
) -> tuple[float, float] | None:
    """(default, arm) from ``paper`` ((paper_ref, metric) -> value), if it has both."""
    refs = paper_refs(claim.arm)
    pair = [paper.get((ref, quantity)) for ref in refs] if refs else [None]
    return None if None in pair else (pair[0], pair[1])


def verdicts(arms: dict[str, Results]) -> list[Verdict]:
    """Every claim whose arm and the default arm (``"none"``) both have results, on every
    quantity both measured."""
    if "none" not in arms:
        return []
    default = _per_seed(arms["none"])
    paper = {(row.paper_ref, row.metric_base): row.value for row in paper_rows()}
    found = []
    for claim in CLAIMS:
        if claim.arm not in arms:
            continue
        ablated = _per_seed(arms[claim.arm])
        for quantity in claim.quantities:
            if quantity not in default or quantity not in ablated:
                continue
            (mine, better), (theirs, _) = ablated[quantity], default[quantity]
            differences = [a - d for a, d in zip(mine, theirs, strict=True)]
            interval = seed_interval(differences)
            span = None if interval is None else (interval["low"], interval["high"])
            found.append(
                Verdict(
                    claim,
                    quantity,
                    better,
                    float(np.mean(theirs)),
                    float(np.mean(mine)),
                    float(np.mean(differences)),
                    span,
                    judge(span, better, claim.arm_better),
                    _paper_values(claim, quantity, paper),
                )
            )
    return found


def as_json(found: list[Verdict]) -> list[dict[str, Any]]:
    """The verdicts as plain records (what ``write_verdicts`` stores)."""
    return [
        {
            "source": v.claim.source,
            "claim": v.claim.statement,
            "arm": v.claim.arm,
            "quantity": v.quantity,
            "better": v.better,
            "default_mean": v.default,
            "arm_mean": v.arm,
            "difference": v.difference,
            "interval": None if v.interval is None else list(v.interval),
            "verdict": v.verdict,
            "paper": None if v.paper is None else {"default": v.paper[0], "arm": v.paper[1]},
        }
        for v in found
    ]


def write_verdicts(path: Path, found: list[Verdict]) -> Path:
    """Store the verdicts as JSON (atomically) and return the path."""
    atomic_write_json(path, as_json(found))
    return path


def format_verdicts(found: list[Verdict]) -> str:
    """One line per claim and quantity: paper numbers, ours, the paired difference, verdict."""
    out = ["claims (paired difference arm - default over seeds, Student-t 95%):"]
    for v in found:
        paper = f"paper {v.paper[0]:g} vs {v.paper[1]:g}" if v.paper else "paper: no number"
        span = f"[{v.interval[0]:+.4f}, {v.interval[1]:+.4f}]" if v.interval else "(one seed)"
        out.append(
            f"  {v.claim.source:<9} {v.claim.arm:<17} {v.quantity:<25} default {v.default:>10.4f}"
            f"  arm {v.arm:>10.4f}  diff {v.difference:>+10.4f} {span:<24} {v.verdict:<15}"
            f"  {paper}"
        )
    return "\n".join(out) + "\n"
