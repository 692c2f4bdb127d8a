"""Stage ``transformer``: train the vision decoder on pre-tokenised shards (paper §5).

    nuwa-data tokenize --tokenizer TOK --source procedural:4096 --size 512 --out shards/train
    nuwa-train stage=transformer model=small shards=shards/train [val_shards=...] [ablation=...]
        [init=model.safetensors]                  # start from trained weights (fine-tune)
    torchrun --nproc_per_node=8 -m nuwa.train stage=transformer model=paper-base shards=...

Each example draws one of the four orders; render-and-optimize (paper Algorithm 1) takes one
optimizer step per patch (``nuwa.train.objective``). Writes to ``run_dir``:

* ``last.safetensors``: the full training state; a rerun with the same settings resumes from it
  and continues exactly (every batch is a pure function of the seed and its index).
* ``model.safetensors``: the weights alone for ``nuwa.model.checkpoint.load_model``: the EMA
  when on, or the raw weights if their held-out loss is lower.
* ``log.csv``: batch, optimizer step, loss, lr, tokens/s, MFU, training seconds (grids and
  checkpoints excluded) and the training FLOPs so far (all ranks), also printed to stdout.
* ``samples/batch_*.png``: rows of data canvases, text-to-image samples with their captions,
  and right-outpainting of the data's left half.
* ``eval.json``: held-out loss (``val_shards``) of the raw and the EMA weights, and which was
  exported.
"""

from __future__ import annotations

import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as tdist
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from nuwa.adc import make_plan
from nuwa.checkpoint import CheckpointError
from nuwa.data import DATASET_NAME
from nuwa.data.shards import TokenShards
from nuwa.io import atomic_write_json, sha256_file
from nuwa.layout import PatchGrid
from nuwa.model import Nuwa
from nuwa.model.checkpoint import init_from, save_model
from nuwa.sampling import SamplerOptions, sample
from nuwa.tokenizer import load_tokenizer
from nuwa.train.batches import Batch, ShardBatches, mix
from nuwa.train.distributed import setup_distributed
from nuwa.train.flops import matmul_flops_per_s, plan_flops
from nuwa.train.heldout import canvases, heldout_loss
from nuwa.train.images import save_grid
from nuwa.train.log import CsvLog
from nuwa.train.objective import Objective, group_by_order, train_batch
from nuwa.train.recipe import adamw, lr_at, resolve
from nuwa.train.state import full_model_state, load_state, read_state_metadata, save_state

LOGGING_FIELDS = ("log_every", "ckpt_every", "sample_every", "sample_count")
"""Recipe fields a resumed run may change; any other change would break exact continuation."""


def train(cfg: DictConfig) -> None:
    Trainer(cfg).run()


def dataset_name(source: str) -> str:
    """What a run trained on, for model names: the procedural set's versioned name, else the
    source's last path component."""
    if source.startswith(("procedural", "pan_videos")):
        return DATASET_NAME
    return Path(source).name


class Trainer:
    """One training run: build everything from the composed config, then :meth:`run`."""

    def __init__(self, cfg: DictConfig) -> None:
        self.recipe, self.model_cfg = resolve(cfg.model, cfg.ablation)
        if not cfg.get("shards"):
            raise ValueError("stage=transformer needs shards=PATH, made by `nuwa-data tokenize`")
        r = self.recipe
        self.cfg, self.ablation = cfg, cfg.ablation.get("name", "none")
        self.dist = setup_distributed()
        self.device = self.dist.device
        self.run_dir = Path(cfg.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.shards = TokenShards(cfg.shards)
        if self.shards.codebook_size != self.model_cfg.codebook_size:
            raise ValueError(
                f"{cfg.shards} was tokenised with {self.shards.codebook_size} codes but model "
                f"{r.preset!r} has {self.model_cfg.codebook_size}"
            )
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.model = Nuwa(self.model_cfg).to(self.device)
        if cfg.get("init"):  # a resumed run overwrites these with its checkpoint
            self.model.load_state_dict(init_from(cfg.init, self.model_cfg).state_dict())
        self.grid = PatchGrid(r.canvas[0], r.canvas[1], r.frames)
        self.plans = {o: make_plan(self.grid, self.model.extent, o) for o in r.orders}
        self.layout = self.model.layout
        self.batches = ShardBatches(
            self.shards,
            self.layout.token_shape(self.grid),
            r.batch_size,
            orders=r.orders,
            order_per_batch=r.order_per == "batch",
            text=self.model.text is not None,
            caption_dropout=r.caption_dropout,
            seed=cfg.seed,
            rank=self.dist.rank,
            world=self.dist.world_size,
        )
        if r.epochs:
            r = self.recipe = replace(
                r, batches=math.ceil(r.epochs * self.batches.batches_per_epoch)
            )
        bf16 = r.precision == "bf16" or (r.precision == "auto" and self.device.type == "cuda")
        self.autocast = torch.autocast(self.device.type, torch.bfloat16) if bf16 else nullcontext()
        self.pool_dtype = torch.bfloat16 if bf16 else None
        self.ema = None
        if r.ema_decay > 0:  # copied before sharding: under FSDP each rank averages its shard
            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(r.ema_decay))
        self.objective = self._distribute(Objective(self.model, r.label_smoothing))
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = adamw(self.trainable, r)
        self.steps_per_batch = self.grid.num_patches if r.loss == "patch" else 1
        self.total_steps = r.batches * self.steps_per_batch
        self.optimizer_steps, self.elapsed = 0, 0.0
        self._tokenizer = None
        self._set_lr()

    @property
    def sharded(self) -> bool:
        return self.dist.world_size > 1 and self.recipe.parallel == "fsdp"

    def _distribute(self, objective: Objective) -> torch.nn.Module:
        """DDP, or FSDP (each block sharded, then the rest), when launched by torchrun.

        Under FSDP the EMA copy is sharded the same way, so the update is local to each rank.
        """
        if self.dist.world_size == 1:
            return objective
        if self.sharded:
            from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

            # Block adds the cross-attention's output out of place (x = x + ...), so FSDP2's
            # warning, every step, that an in-place op on that view would skip the all-gather
            # does not apply; the 2-rank test checks the weights against one process.
            warnings.filterwarnings(
                "ignore", message=r"FSDP2-wrapped module \(FSDPCrossAttention\) returned a view"
            )
            averaged = [self.ema.module] if self.ema is not None else []
            for model in [self.model, *averaged]:
                for block in model.blocks:
                    if block.cross is not None:  # its text K/V are computed once per patch
                        fully_shard(block.cross)
                        register_fsdp_forward_method(block.cross, "text_kv")
                    fully_shard(block)
            for model in averaged:
                fully_shard(model)
            return fully_shard(objective)
        return DDP(objective, device_ids=[self.device] if self.device.type == "cuda" else None)

    # ------------------------------------------------------------------ optimisation

    def _set_lr(self) -> None:
        r = self.recipe
        lr = lr_at(self.optimizer_steps, self.total_steps, r.lr, r.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def optimizer_step(self) -> None:
        """Clip, step, zero the gradients, update the EMA, set the next step's lr."""
        if self.recipe.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.recipe.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.optimizer_steps += 1
        self._set_lr()

    def batch(self, index: int) -> Batch:
        """This rank's share of global batch ``index``, on the device."""
        batch = self.batches(index)
        text = None if batch.text is None else batch.text.to(self.device)
        return Batch(batch.tokens.to(self.device), text, batch.orders)

    def train_one(self, index: int) -> list[float]:
        """Train on global batch ``index``; the losses of its optimizer steps."""
        torch.manual_seed(mix(self.cfg.seed, self.dist.rank, index))  # dropout: resumable
        generator = torch.Generator(self.device).manual_seed(mix(self.cfg.seed, index, 1))
        self.model.train()
        groups = group_by_order(
            self.model,
            self.batch(index),
            self.plans,
            with_pools=self.recipe.loss == "patch",
            pool_dtype=self.pool_dtype,
        )
        return train_batch(
            self.objective,
            groups,
            loss=self.recipe.loss,
            optimizer_step=self.optimizer_step,
            autocast=self.autocast,
            generator=generator,
        )

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        r, main = self.recipe, self.dist.is_main
        start = self._resume()
        log = CsvLog(self.run_dir / "log.csv", start) if main else None
        peak = matmul_flops_per_s(self.device, torch.bfloat16 if self.pool_dtype else torch.float32)
        example_flops = np.mean(
            [plan_flops(self.model_cfg, p, loss=r.loss) for p in self.plans.values()]
        )
        batch_flops = r.batch_size * example_flops
        batch_tokens = r.batch_size * self.grid.num_patches * self.model_cfg.tokens_per_patch
        if main:
            tqdm.write(
                f"transformer {r.preset} (ablation {self.ablation}, loss={r.loss}): "
                f"{sum(p.numel() for p in self.trainable):,} trainable parameters, "
                f"{self.grid.rows}x{self.grid.cols}x{self.grid.frames} patches, global batch "
                f"{self.batches.global_batch}, {self.total_steps} optimizer steps, "
                f"{self.batches.batches_per_epoch} batches per epoch; matmul peak "
                f"{peak / 1e9:.0f} GFLOP/s"
            )
        bar = tqdm(range(start, r.batches), initial=start, total=r.batches, disable=not main)
        bar.set_description(f"train {r.preset}")
        window, seconds = [], 0.0
        for index in bar:
            tick = time.perf_counter()
            window += self.train_one(index)
            seconds += time.perf_counter() - tick  # training only: grids and saves excluded
            done = index + 1
            if done % r.log_every == 0 or done == r.batches:
                self.elapsed += seconds
                batches = len(window) / self.steps_per_batch
                row = {
                    "batch": done,
                    "optimizer_step": self.optimizer_steps,
                    "epoch": self.batches.epoch_of(index),
                    "loss": self._global_mean(float(np.mean(window))),
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "tokens_per_s": self.dist.world_size * batches * batch_tokens / seconds,
                    "mfu": batches * batch_flops / seconds / peak,
                    "elapsed_s": self.elapsed,
                    "train_flops": self.dist.world_size * done * batch_flops,
                }
                if main:
                    log.append(row)
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                    tqdm.write(
                        f"batch {done} step {row['optimizer_step']} loss {row['loss']:.4f} "
                        f"lr {row['lr']:.2e} tokens/s {row['tokens_per_s']:.0f} "
                        f"MFU {row['mfu']:.1%}"
                    )
                window, seconds = [], 0.0
            if main and not self.sharded and r.sample_every and done % r.sample_every == 0:
                self.sample_grid(self.run_dir / "samples" / f"batch_{done:07d}.png")
            if done % r.ckpt_every == 0 or done == r.batches:
                self.save(done)
        self.finish()

    def _global_mean(self, value: float) -> float:
        if self.dist.world_size == 1:
            return value
        t = torch.tensor(value, device=self.device, dtype=torch.float64)
        tdist.all_reduce(t)
        return float(t) / self.dist.world_size

    # ------------------------------------------------------------------ checkpoints

    def metadata(self) -> dict:
        return {
            "preset": self.recipe.preset,
            "ablation": self.ablation,
            "recipe": asdict(self.recipe),
            "model": self.model_cfg.to_dict(),
            "config": OmegaConf.to_container(self.cfg, resolve=True),
            "global_batch": self.batches.global_batch,
            "optimizer_steps": self.optimizer_steps,
            "elapsed_s": self.elapsed,
            "data": {
                "name": dataset_name(self.shards.index["source"]["source"]),
                "shards": str(self.cfg.shards),
                "source": self.shards.index["source"],
                "tokenizer_sha256": self.shards.index["tokenizer"]["sha256"],
                "tokenizer_codes_sha256": self.shards.index["tokenizer"].get("codes_sha256"),
            },
        }

    def save(self, done: int) -> None:
        save_state(
            self.run_dir / "last.safetensors",
            model=self.model,
            ema=self.ema,
            optimizer=self.optimizer,
            batch=done,
            metadata=self.metadata(),
            is_main=self.dist.is_main,
        )
        self.dist.barrier()

    def _resume(self) -> int:
        path = self.run_dir / "last.safetensors"
        if not path.exists():
            return 0
        meta = read_state_metadata(path)  # settings first: weights of another recipe may not load
        saved = {k: v for k, v in meta["recipe"].items() if k not in LOGGING_FIELDS}
        now = {k: v for k, v in asdict(self.recipe).items() if k not in LOGGING_FIELDS}
        now_global = self.batches.global_batch
        if (
            meta["model"] != self.model_cfg.to_dict()
            or saved != now
            or (meta["global_batch"] != now_global)
        ):
            changed = sorted(k for k in now if saved.get(k) != now[k])
            raise CheckpointError(
                f"{path} was trained with other settings ({', '.join(changed) or 'model/world'}); "
                "use a new run_dir or the original settings"
            )
        load_state(path, model=self.model, ema=self.ema, optimizer=self.optimizer)
        self.optimizer_steps, self.elapsed = meta["optimizer_steps"], meta["elapsed_s"]
        self._set_lr()
        if self.dist.is_main:
            tqdm.write(f"resumed from {path} at batch {meta['batch']}")
        return int(meta["batch"])

    # ------------------------------------------------------------------ outputs

    def finish(self) -> None:
        """Export the weights, write the held-out loss and the final sample grid.

        The export is the EMA (when on), unless ``val_shards`` are given and the raw weights have
        the lower held-out loss there; ``eval.json`` records both and the choice.
        """
        candidates = {"raw": self._gathered(self.model)}
        if self.ema is not None:
            candidates["ema"] = self._gathered(self.ema.module)
        if not self.dist.is_main:
            return
        report = {"batches": self.recipe.batches, "optimizer_steps": self.optimizer_steps}
        chosen = "ema" if "ema" in candidates else "raw"
        if self.cfg.get("val_shards") and self.model_cfg.local_decoder == "ar":
            val = TokenShards(self.cfg.val_shards)
            for name, model in candidates.items():
                report[name] = heldout_loss(model, val, self.plans)
            chosen = min(candidates, key=lambda name: report[name]["loss"])
            losses = ", ".join(f"{n} {report[n]['loss']:.4f}" for n in candidates)
            tqdm.write(f"held-out loss (nats/token): {losses}; exporting {chosen}")
        report["exported"] = chosen
        final = candidates[chosen]
        save_model(final, self.run_dir / "model.safetensors", self._export_metadata(chosen))
        atomic_write_json(self.run_dir / "eval.json", report)
        self.sample_grid(self.run_dir / "samples" / "final.png", final)
        tqdm.write(f"wrote {self.run_dir / 'model.safetensors'}")

    def _gathered(self, module: torch.nn.Module) -> Nuwa | None:
        """A plain copy of ``module`` (rank 0) with full weights: FSDP shards gathered."""
        state = full_model_state(module)
        if not self.dist.is_main:
            return None
        model = Nuwa(replace(self.model_cfg, dropout=0.0)).to(self.device)
        model.load_state_dict(state, strict=not (model.text is not None and model.text.pretrained))
        return model.eval()

    def _export_metadata(self, weights: str) -> dict:
        meta = self.metadata()
        meta.pop("config")
        return {**meta, "weights": weights, "batches": self.recipe.batches}

    def tokenizer(self):
        """The tokenizer the shards were made with (for sample grids), or None with a note."""
        if self._tokenizer is None:
            path = self.cfg.get("tokenizer_checkpoint") or self.shards.index["tokenizer"]["file"]
            try:
                tokenizer = load_tokenizer(path)
            except CheckpointError as err:
                tqdm.write(f"sample grids off: {err}")
                return None
            if sha256_file(path) != self.shards.index["tokenizer"]["sha256"]:
                tqdm.write(f"sample grids off: {path} is not the tokenizer of {self.cfg.shards}")
                return None
            self._tokenizer = tokenizer.to(self.device)
        return self._tokenizer

    @torch.no_grad()
    def sample_grid(self, path: Path, model: Nuwa | None = None) -> None:
        """Rows: data canvases, samples for their captions, right-outpainting of their left half."""
        tokenizer = self.tokenizer()
        if tokenizer is None:
            return
        model = model or (self.ema.module if self.ema is not None else self.model)
        was_training = model.training
        model.eval()
        source = TokenShards(self.cfg.val_shards) if self.cfg.get("val_shards") else self.shards
        real, captions = canvases(
            source, self.layout.token_shape(self.grid), self.recipe.sample_count
        )
        text = captions if model.text is not None else None
        opts = dict(text=text, batch_size=len(real), options=SamplerOptions(progress=False))
        rows = [real, sample(model, make_plan(self.grid, model.extent, "omega"), **opts).tokens]
        if self.grid.cols > 1:
            given = self.grid.region(cols=slice(0, self.grid.cols // 2))
            plan = make_plan(self.grid, model.extent, "omega", given=given)
            rows.append(sample(model, plan, given_tokens=real.to(self.device), **opts).tokens)
        save_grid(path, [self._pixels(tokenizer, tokens) for tokens in rows])
        model.train(was_training)

    @staticmethod
    def _pixels(tokenizer, tokens: torch.Tensor) -> np.ndarray:
        """Token canvases ``[B, F, H, W]`` -> uint8 ``[B, 16H, F*16W, 3]`` (frames side by side)."""
        b, f = tokens.shape[:2]
        frames = np.asarray(tokenizer.decode(tokens.flatten(0, 1)).cpu())
        frames = frames.reshape(b, f, *frames.shape[1:])
        return np.concatenate(list(frames.transpose(1, 0, 2, 3, 4)), axis=2)
