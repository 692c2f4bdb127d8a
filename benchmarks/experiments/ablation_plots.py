"""One PNG per paper ablation table: each quantity per arm (seed mean and its interval, the seeds
as dots) and the training loss against optimizer steps (one line per seed)."""

from __future__ import annotations

import io
from pathlib import Path

from leaderboard import Results
from nuwa.io import atomic_write_bytes

# Which arms answer which paper question; the default arm is in every figure.
FIGURES = {
    "table4_adc_emb": ("Table 4: ADC.Emb feed position", ("none", "pos_emb_post", "pos_emb_none")),
    "table5_ncp_cache": ("Table 5: caches in NCP", ("none", "no_cache")),
    "table6a_local_decoder": ("Table 6a: local decoder", ("none", "decoder_pnar", "decoder_nar")),
    "table6c_loss": ("Table 6c: loss timing", ("none", "loss_accumulated")),
    "ncp_extent": ("NCP extent", ("none", "ncp_extent_1")),
}
QUANTITIES = ("block_fid", "layout", "attr_agree", "heldout_nll", "ms_per_patch")


def plot_figures(out_dir: Path, arms: dict[str, Results]) -> list[Path]:
    """Write the figures whose arms are all in ``arms`` (arm name -> seed-averaged results)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, (title, members) in FIGURES.items():
        if not all(arm in arms for arm in members):
            continue
        panels = [q for q in QUANTITIES if any(_metric(arms[a], q) for a in members)]
        fig, axes = plt.subplots(1, len(panels) + 2, figsize=(3.4 * (len(panels) + 2), 3.6))
        for ax, quantity in zip(axes, panels, strict=False):
            for x, arm in enumerate(members):
                metric = _metric(arms[arm], quantity)
                if metric is not None:
                    _point(ax, x, metric)
            ax.set_xticks(range(len(members)), members, rotation=30, ha="right", fontsize=8)
            ax.set_title(_metric(arms[members[0]], quantity)["name"].split(" [")[0], fontsize=9)
            ax.grid(True, alpha=0.3)
        for ax, axis in zip(axes[-2:], ("optimizer_step", "batch"), strict=True):
            for x, arm in enumerate(members):
                for seed, curve in arms[arm]["extra"]["loss_curves"].items():
                    ax.plot([p[axis] for p in curve], [p["loss"] for p in curve], color=f"C{x}",
                            lw=0.8, label=arm if seed == "0" else None)  # fmt: skip
            ax.set_xscale("log")
            ax.set(xlabel=axis.replace("_", " "), ylabel="training loss", title="loss curves")
            ax.legend(fontsize=7)
            ax.grid(True, alpha=0.3)
        fig.suptitle(f"{title} (mean over seeds, Student-t 95% interval; dots: seeds)")
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=100)
        plt.close(fig)
        path = out_dir / f"{name}.png"
        atomic_write_bytes(path, png.getvalue())
        written.append(path)
    return written


def _point(ax, x: int, metric: dict) -> None:
    """The seed mean with its interval as an error bar, the seeds as grey dots."""
    value, interval = metric["value"], metric.get("interval") or {}
    low, high = interval.get("low", value), interval.get("high", value)
    ax.errorbar([x], [value], yerr=[[value - low], [high - value]], fmt="o", capsize=4,
                color=f"C{x}")  # fmt: skip
    ax.plot([x] * len(metric["per_seed"]), metric["per_seed"], ".", color="grey")


def _metric(results: Results, base: str) -> dict | None:
    return next((m for m in results["metrics"] if m["base"] == base), None)
