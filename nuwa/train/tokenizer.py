"""Stage ``tokenizer``: train a VQGAN (paper §2.1) with taming's recipe, resumable.

    nuwa-train stage=tokenizer tokenizer=small data=landscapes
    nuwa-train stage=tokenizer ... init=tokenizer.safetensors tokenizer.optim.train=decoder

The second form fine-tunes only the decoder of a trained VQGAN: its encoder and codebook are
frozen, so every image keeps its tokens and a transformer trained on them needs no retraining.
It trains on what sampling decodes: tokens made tile by tile over whole images (so crops cross
tile borders, where each tile's encoder saw an edge), cut at token-aligned offsets. It may change
the decoder's architecture (e.g. to the local decoder): tensors whose names and shapes match
start from ``init``, the others fresh.

Writes to ``run_dir``: ``last.safetensors`` (full training state, resumed automatically),
``tokenizer.safetensors`` (the model alone, for ``nuwa.tokenizer.load_tokenizer``),
``grids/step_*.png`` (held-out originals over reconstructions), ``log.jsonl`` and ``eval.json``
(held-out PSNR against the equal-bits palette baseline).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel as DDP
from torchmetrics.functional.image import peak_signal_noise_ratio
from tqdm import tqdm

from nuwa.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_training_state,
    save_training_state,
)
from nuwa.io import atomic_write_json
from nuwa.tokenizer import VQGAN, TokenizerPreset, load_tokenizer, save_tokenizer
from nuwa.tokenizer.baseline import PaletteBaseline
from nuwa.tokenizer.losses import (
    PatchDiscriminator,
    discriminator_loss,
    generator_loss,
    load_perceptual,
)
from nuwa.tokenizer.tiling import PX
from nuwa.train.config import DataConfig
from nuwa.train.distributed import Dist, setup_distributed
from nuwa.train.images import image_pool, random_crops, save_grid

KIND = "vqgan_training"
GRID_IMAGES = 8
TRAIN_MODES = ("all", "decoder")


# ---- pieces shared with the PG-VQGAN stage ----------------------------------------------------
def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """The data RNG of one step: a resumed run draws exactly the crops it would have drawn."""
    return torch.Generator().manual_seed((seed * 1_000_003 + rank) * 10_000_019 + step)


def resume_step(
    path: Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    kind: str,
    model_config: dict[str, Any],
) -> int:
    """Restore ``path`` if it exists and was trained with ``model_config``; the step to resume."""
    if not path.exists():
        return 0
    _, meta = load_checkpoint(path, expected_kind=kind)
    if meta.get("model") != model_config:
        raise CheckpointError(
            f"{path} was trained with another tokenizer config; use a new run_dir "
            f"or the original settings (saved: {meta.get('model')})"
        )
    load_training_state(path, modules=modules, optimizers=optimizers, expected_kind=kind)
    return int(meta["step"])


def progress(start: int, steps: int, desc: str, dist: Dist) -> tqdm:
    """The step loop's range with a progress bar on rank 0."""
    quiet = not dist.is_main
    return tqdm(range(start, steps), initial=start, total=steps, desc=desc, disable=quiet)


def due(done: int, every: int, steps: int) -> bool:
    """Whether a periodic action (log, grid, checkpoint) runs after ``done`` of ``steps``."""
    return done % every == 0 or done == steps


def checkpoint(
    run_dir: Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    done: int,
    metadata: dict[str, Any],
    dist: Dist,
) -> None:
    """Rank 0 writes the resumable ``last.safetensors``; every rank waits for it."""
    if dist.is_main:
        save_training_state(
            run_dir / "last.safetensors",
            modules=modules,
            optimizers=optimizers,
            step=done,
            metadata=metadata,
        )
    dist.barrier()


def append_log(run_dir: Path, record: dict[str, Any]) -> None:
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def psnr(reference: np.ndarray | torch.Tensor, other: np.ndarray | torch.Tensor) -> float:
    """Mean per-image PSNR (dB) of uint8 [N, ..., H, W, 3] arrays."""
    a = torch.as_tensor(np.asarray(reference)).flatten(0, -4).float()
    b = torch.as_tensor(np.asarray(other)).flatten(0, -4).float()
    per_image = peak_signal_noise_ratio(b, a, data_range=255.0, dim=(1, 2, 3), reduction="none")
    return float(per_image.mean())


# ---- evaluation -------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_reconstruction(
    model: VQGAN, val: np.ndarray, train: np.ndarray, seed: int
) -> dict[str, Any]:
    """Held-out PSNR of the VQGAN (tiled encode/decode) vs the equal-bits palette baseline."""
    tokens = tile_tokens(model, val, progress=False)
    recon = torch.cat([model.decode(tokens[i : i + 8]) for i in range(0, len(tokens), 8)])
    baseline = PaletteBaseline.fit(train, model.config.codebook_size, seed=seed)
    baseline_recon = baseline.decode(baseline.encode(val))
    counts = torch.bincount(tokens.flatten(), minlength=model.config.codebook_size).float()
    probs = counts / counts.sum()
    return {
        "images": len(val),
        "size": list(val.shape[1:3]),
        "psnr": psnr(val, recon),
        "baseline_psnr": psnr(val, baseline_recon),
        "baseline": f"16x area down-sample, {len(baseline.palette)}-colour k-means palette, "
        "bicubic up-sample (same bits per 16x16 block)",
        "code_usage": float((counts > 0).float().mean()),
        "code_perplexity": float(torch.exp(-(probs * probs.clamp_min(1e-12).log()).sum())),
    }


def save_reconstruction_grid(model: VQGAN, val: np.ndarray, path: Path) -> None:
    originals = val[:GRID_IMAGES]
    save_grid(path, [originals, model.decode(model.encode(originals))])


# ---- the stage --------------------------------------------------------------------------------
def initial_model(cfg: DictConfig, preset: TokenizerPreset) -> VQGAN:
    """The VQGAN to train: fresh, or the ``init=`` checkpoint, with frozen parts per train mode."""
    mode = preset.optim.train
    if mode not in TRAIN_MODES:
        raise ValueError(f"tokenizer.optim.train={mode!r}; expected one of {TRAIN_MODES}")
    if mode == "decoder" and not cfg.get("init"):
        raise ValueError("tokenizer.optim.train=decoder fine-tunes a trained VQGAN: add init=PATH")
    model = VQGAN(preset.model)
    if cfg.get("init"):  # a resumed run overwrites these with its checkpoint
        start = load_tokenizer(cfg.init, preset=preset.name, kind="vqgan").state_dict()
        if mode == "decoder":
            ours = model.state_dict()
            start = {
                k: v
                for k, v in start.items()
                if not k.startswith("decoder.") or (k in ours and ours[k].shape == v.shape)
            }
            fresh = [k for k in ours if k not in start]
            if any(not k.startswith("decoder.") for k in fresh):
                raise ValueError(f"{cfg.init}: the encoder or codebook differs from the preset")
            if fresh:
                tqdm.write(f"decoder: {len(fresh)} tensors start fresh (new architecture)")
        model.load_state_dict(start, strict=mode != "decoder")
    if mode == "decoder":
        model.encoder.requires_grad_(False)
        model.quantizer.requires_grad_(False)
    return model


@torch.no_grad()
def tile_tokens(model: VQGAN, pool: np.ndarray, progress: bool = True) -> torch.Tensor:
    """int64 [N, H/16, W/16]: the pool's tokens, encoded tile by tile as for sampling, 8 images
    at a time."""
    batches = tqdm(range(0, len(pool), 8), desc="encode", disable=not progress)
    return torch.cat([model.encode(pool[i : i + 8]) for i in batches])


def token_crops(
    pool: np.ndarray, tokens: torch.Tensor, batch: int, crop: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token-aligned crops: pixels float [B, 3, crop, crop] in [-1, 1] and their codes
    int64 [B, crop/16, crop/16] (cut from ``tokens``, the whole images' tiled tokens)."""
    n, h, w = tokens.shape
    side = crop // PX
    pixels, codes = [], []
    for _ in range(batch):
        i = int(torch.randint(n, (1,), generator=generator))
        y = int(torch.randint(h - side + 1, (1,), generator=generator))
        x = int(torch.randint(w - side + 1, (1,), generator=generator))
        codes.append(tokens[i, y : y + side, x : x + side])
        pixels.append(torch.from_numpy(pool[i, y * PX : (y + side) * PX, x * PX : (x + side) * PX]))
    x = torch.stack(pixels).movedim(-1, -3).float().div(127.5).sub(1.0)
    return x, torch.stack(codes)


def set_train_mode(model: VQGAN, mode: str) -> None:
    """Train mode, except that a frozen codebook must not move with its EMA update."""
    model.train()
    if mode == "decoder":
        model.encoder.eval()
        model.quantizer.eval()


def train(cfg: DictConfig) -> None:
    preset: TokenizerPreset = OmegaConf.to_object(cfg.tokenizer)
    data: DataConfig = OmegaConf.to_object(cfg.data)
    optim, loss_cfg = preset.optim, preset.loss
    dist = setup_distributed()
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    model_config = resolved["tokenizer"]["model"]

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = initial_model(cfg, preset).to(dist.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    disc = PatchDiscriminator(3, loss_cfg.disc_ch, loss_cfg.disc_layers).to(dist.device)
    opt_g = torch.optim.Adam(trainable, lr=optim.lr, betas=tuple(optim.betas))
    opt_d = torch.optim.Adam(
        disc.parameters(), lr=optim.lr * loss_cfg.disc_lr_mult, betas=tuple(optim.betas)
    )
    modules, optimizers = {"model": model, "disc": disc}, {"model": opt_g, "disc": opt_d}
    start = resume_step(run_dir / "last.safetensors", modules, optimizers, KIND, model_config)
    perceptual, perceptual_note = (None, "off (perceptual_weight=0)")
    if loss_cfg.perceptual_weight > 0:
        perceptual, perceptual_note = load_perceptual()

    train_pool, val_pool = image_pool(data, "train"), image_pool(data, "val")
    decoder_only = optim.train == "decoder"
    train_tokens = tile_tokens(model, train_pool) if decoder_only else None
    if decoder_only and optim.crop % PX:
        raise ValueError(f"tokenizer.optim.crop={optim.crop} must be a multiple of {PX}")
    g_model, g_disc = (DDP(model), DDP(disc)) if dist.world_size > 1 else (model, disc)
    g_decoder = DDP(model.decoder) if decoder_only and dist.world_size > 1 else model.decoder
    metadata = {"kind": KIND, "preset": preset.name, "model": model_config, "config": resolved}
    metadata["perceptual"] = perceptual_note
    if dist.is_main and start == 0:
        append_log(run_dir, {"event": "start", "perceptual": perceptual_note, "config": resolved})

    bar = progress(start, optim.steps, f"vqgan {preset.name}", dist)
    for step in bar:
        set_train_mode(model, optim.train)
        disc.train()
        gen = step_generator(cfg.seed, dist.rank, step)
        if decoder_only:
            x, codes = token_crops(train_pool, train_tokens, optim.batch_size, optim.crop, gen)
            x, codes = x.to(dist.device), codes.to(dist.device)
            recon = g_decoder(model.quantizer.lookup(codes))
            commit = recon.new_zeros(())
            logs = {"usage": 0.0, "perplexity": 0.0}
        else:
            x = random_crops(train_pool, optim.batch_size, optim.crop, gen).to(dist.device)
            recon, q = g_model(x)
            commit = q.commit_loss
            logs = {"usage": q.usage.item(), "perplexity": q.perplexity.item()}
        last_layer = model.decoder.conv_out.weight
        g = generator_loss(loss_cfg, x, recon, commit, g_disc, last_layer, step, perceptual)
        opt_g.zero_grad(set_to_none=True)
        g.total.backward()
        torch.nn.utils.clip_grad_norm_(trainable, optim.grad_clip)
        opt_g.step()
        logs |= g.logs
        if step >= loss_cfg.disc_start and loss_cfg.disc_weight > 0:
            d_loss, d_logs = discriminator_loss(g_disc, x, recon)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            logs |= d_logs
        done = step + 1
        if dist.is_main and due(done, optim.log_every, optim.steps):
            bar.set_postfix(rec=f"{logs['rec']:.4f}", ppl=f"{logs['perplexity']:.0f}")
            append_log(run_dir, {"step": done, **logs})
        if dist.is_main and due(done, optim.grid_every, optim.steps):
            save_reconstruction_grid(model, val_pool, run_dir / "grids" / f"step_{done:07d}.png")
        if due(done, optim.ckpt_every, optim.steps):
            checkpoint(run_dir, modules, optimizers, done, metadata, dist)
    if dist.is_main:
        finish(model, preset, metadata, run_dir, train_pool, val_pool, cfg.seed, optim.steps, dist)


def finish(
    model: VQGAN,
    preset: TokenizerPreset,
    metadata: dict[str, Any],
    run_dir: Path,
    train_pool: np.ndarray,
    val_pool: np.ndarray,
    seed: int,
    steps: int,
    dist: Dist,
) -> None:
    """Export the model alone and evaluate it on the held-out images."""
    extra = {"config": metadata["config"], "perceptual": metadata["perceptual"]}
    save_tokenizer(
        run_dir / "tokenizer.safetensors", model, preset=preset.name, step=steps, **extra
    )
    report = evaluate_reconstruction(model, val_pool, train_pool, seed)
    report |= {"step": steps, "preset": preset.name, "data": metadata["config"]["data"]}
    atomic_write_json(run_dir / "eval.json", report)
    tqdm.write(
        f"held-out PSNR {report['psnr']:.2f} dB vs baseline {report['baseline_psnr']:.2f} dB "
        f"(code usage {report['code_usage']:.0%}); wrote {run_dir / 'tokenizer.safetensors'}"
    )
