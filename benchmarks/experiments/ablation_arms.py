"""The ablation arms: which ``nuwa/conf/ablation`` config each trains with, its leaderboard
setting, and the paper row it stands in for (paper Tables 4, 5, 6a, 6c). The sweep
(``ablations``), ``reproduce`` and the verdicts (``ablation_verdicts``) all read them here."""

from __future__ import annotations

from dataclasses import dataclass


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


# The arms the issue asks for (Tables 4, 5, 6a, 6c and the NCP extent); ncp_extent_3 equals
# extent 2 on a 3x3-patch training canvas, so the CPU preset leaves it out.
ARMS = (
    "none",
    "no_cache",
    "pos_emb_post",
    "pos_emb_none",
    "decoder_pnar",
    "decoder_nar",
    "loss_accumulated",
    "ncp_extent_1",
)


def paper_refs(arm: str) -> tuple[str, str] | None:
    """The paper rows (default arm's, ``arm``'s) of the table ``arm`` stands in for, or None if
    the paper has no row for ``arm``."""
    ref = VARIANTS[arm].paper_ref
    if not ref:
        return None
    table = ref.split("/")[0] + "/"
    default = next(r for r in (VARIANTS["none"].paper_ref, *DEFAULT_ALSO) if r.startswith(table))
    return default, ref
