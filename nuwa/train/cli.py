"""``nuwa-train``: the hydra entry point; ``stage=`` picks the training function.

    nuwa-train stage=tokenizer tokenizer=small data=landscapes
    python -m nuwa.train ...            torchrun --nproc_per_node=2 -m nuwa.train ...

A new stage is one line in STAGES (plus its config groups in nuwa/conf/train.yaml).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nuwa.errors import UserError, run_reporting
from nuwa.overrides import run_hydra
from nuwa.train.config import register_configs
from nuwa.train.distributed import exit_process, teardown_distributed

STAGES = {  # stage name -> "module:function" taking the composed config
    "tokenizer": "nuwa.train.tokenizer:train",
    "pg_tokenizer": "nuwa.train.pg_tokenizer:train",
    "transformer": "nuwa.train.transformer:train",
}

register_configs()


CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")  # shipped in the package


@hydra.main(version_base=None, config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> None:
    finished = False

    def work() -> int:
        nonlocal finished
        if cfg.stage not in STAGES:
            raise UserError(f"unknown stage {cfg.stage!r}; choose from {sorted(STAGES)}")
        module, function = STAGES[cfg.stage].split(":")
        getattr(importlib.import_module(module), function)(cfg)
        finished = True
        return 0

    try:
        status = run_reporting("nuwa-train", work, errors=(ValueError,))
    finally:
        teardown_distributed(wait=finished)
    exit_process(status)


def main() -> None:
    """Entry point of the ``nuwa-train`` console script."""
    run_hydra("nuwa-train", _hydra_main)
