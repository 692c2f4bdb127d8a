"""torchrun-style data parallelism on CPU (gloo, 127.0.0.1): two ranks end with identical weights,
equal to one process training on the same global batch.

Why they must be equal: rank ``r`` trains on slice ``r`` of the same global batch the single
process sees (``nuwa.train.batches``), each rank's loss is the mean over its examples, and
DDP / FSDP average the gradients over ranks, so every optimizer step receives the gradient of
the mean loss over the global batch, as the single process does. Only the order of float
additions differs, hence the tolerance; the two ranks apply identical updates, hence exact
equality between them.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from test_model_exactness import one_thread  # noqa: F401 (autouse: 1 thread on a shared CPU)
from test_train_transformer import config, shards  # noqa: F401 (session fixture)

from nuwa.train.distributed import exit_process, teardown_distributed
from nuwa.train.transformer import Trainer

pytestmark = pytest.mark.filterwarnings("ignore::nuwa.adc.ExtentWarning")
RECIPE = ("+model.arch.text=clip-tiny", "model.caption_dropout=0.5", "model.batches=3")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_main(
    rank: int, world: int, port: int, shards_dir: Path, overrides: list[str], out: Path
) -> None:
    """One torchrun rank: the environment torchrun would set, then the stage as the CLI runs it,
    ending as ``nuwa-train`` does (teardown, then ``exit_process``).

    Saves the rank's final weights and their EMA (FSDP: the gathered ones, rank 0 only) to
    ``out``."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    trainer = Trainer(config(shards_dir, out / "run", *overrides))
    trainer.run()
    for name, module in (("", trainer.model), ("_ema", trainer.ema.module)):
        weights = trainer._gathered(module) if trainer.sharded else module
        if weights is not None:
            state = {k: v.contiguous() for k, v in weights.state_dict().items()}
            save_file(state, out / f"rank{rank}{name}.safetensors")
    teardown_distributed()
    exit_process(0)


@pytest.fixture(scope="module")
def single_process(shards, tmp_path_factory):  # noqa: F811
    """One process, global batch 4: the reference the two-rank runs must reproduce."""
    runs = {}

    def weights(order_per: str) -> dict[str, dict[str, torch.Tensor]]:
        """``{"": final weights, "_ema": their EMA}``."""
        if order_per not in runs:
            run = tmp_path_factory.mktemp("single")
            cfg = config(shards, run, *RECIPE, "model.batch_size=4", f"model.order_per={order_per}")
            trainer = Trainer(cfg)
            trainer.run()
            runs[order_per] = {
                name: {k: v.detach().clone() for k, v in module.state_dict().items()}
                for name, module in (("", trainer.model), ("_ema", trainer.ema.module))
            }
        return runs[order_per]

    return weights


@pytest.mark.slow
@pytest.mark.parametrize(("parallel", "order_per"), [("ddp", "example"), ("fsdp", "batch")])
def test_two_rank_gloo_run_matches_one_process_on_the_same_global_batch(
    shards,  # noqa: F811
    single_process,
    tmp_path,
    parallel,
    order_per,
):
    overrides = [
        *RECIPE,
        "model.batch_size=2",
        f"model.parallel={parallel}",
        f"model.order_per={order_per}",
    ]
    mp.spawn(rank_main, args=(2, free_port(), shards, overrides, tmp_path), nprocs=2, join=True)
    for name, reference in single_process(order_per).items():  # the weights, then their EMA
        rank0 = load_file(tmp_path / f"rank0{name}.safetensors")
        if parallel == "ddp":
            rank1 = load_file(tmp_path / f"rank1{name}.safetensors")
            assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # bitwise: same updates
        assert rank0.keys() == reference.keys()
        for key, value in reference.items():
            torch.testing.assert_close(rank0[key], value, atol=2e-5, rtol=1e-4, msg=name + key)
    assert (tmp_path / "run" / "last.safetensors").exists()  # written by rank 0 only


def test_exit_process_skips_finalization_only_in_a_torchrun_rank(monkeypatch, capsys):
    exits = []

    class Exited(Exception):
        pass

    def fake_exit(status: int) -> None:
        exits.append(status)
        raise Exited

    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(SystemExit) as single:
        exit_process(3)
    assert single.value.code == 3 and exits == []
    monkeypatch.setenv("WORLD_SIZE", "2")
    print("written before the exit")
    with pytest.raises(Exited):
        exit_process(0)
    assert exits == [0]
    assert capsys.readouterr().out == "written before the exit\n"
