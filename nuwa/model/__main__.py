"""Print parameter counts of the model presets next to the paper's: ``python -m nuwa.model``.

Counts are computed on the meta device, so even ``paper-large`` allocates no weights.
"""

from __future__ import annotations

from nuwa.model.config import PRESETS
from nuwa.model.transformer import count_parameters

PAPER_COUNTS = {"paper-large": "809M", "paper-base": "202M"}  # paper Table 6b


def main() -> None:
    print(
        f"{'preset':<12} {'layers':>6} {'d':>5} {'heads':>5} "
        f"{'decoder':>13} {'text tower':>12}  paper"
    )
    for name, cfg in PRESETS.items():
        n = count_parameters(cfg)
        print(
            f"{name:<12} {cfg.n_layer:>6} {cfg.d_model:>5} {cfg.n_head:>5} {n['decoder']:>13,} "
            f"{n['text_tower']:>12,}  {PAPER_COUNTS.get(name, '-')}"
        )
    print(
        "decoder = vision decoder incl. the text projection; "
        "text tower and VQGAN excluded (as in the paper)"
    )


if __name__ == "__main__":
    main()
