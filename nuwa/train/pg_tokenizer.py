"""Stage ``pg_tokenizer``: train PG-VQGAN's guide encoder on consecutive video frames (paper §2.1).

    nuwa-train stage=pg_tokenizer tokenizer=small data=pan_videos tokenizer_checkpoint=VQGAN

The VQGAN from ``tokenizer_checkpoint`` stays frozen. Each example is a clip of
``pg_clip_frames`` consecutive frames cropped at the same place. Every frame after the first is
tokenised and decoded guided by the frame before it, as at inference: the first guide is the
first frame's ground truth (animation) or its plain VQGAN reconstruction (text-to-video), half
of the time each; every later guide is the previous guided decode, rounded to 8 bits and
detached. Without such chains the guide compounds its own errors: trained on pairs only, a
PG-VQGAN drifted in colour frame after frame and flickered twice as much as plain decoding.
Loss per frame: L1 + L2, plus ``temporal_weight`` times the L1 between the decoded change (frame
minus its guide) and the true change (frame minus the frame before it), the flicker that
:func:`evaluate_flicker` measures at the end of the run.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from nuwa.io import atomic_write_json
from nuwa.tokenizer import PGVQGAN, VQGAN, TokenizerPreset, load_tokenizer, save_tokenizer
from nuwa.train.config import DataConfig
from nuwa.train.distributed import setup_distributed
from nuwa.train.images import random_crops, save_grid, video_pool
from nuwa.train.tokenizer import (
    append_log,
    checkpoint,
    due,
    progress,
    psnr,
    resume_step,
    step_generator,
)

KIND = "pg_vqgan_training"


def frame_clips(videos: np.ndarray, length: int) -> np.ndarray:
    """uint8 [N, F, H, W, 3] -> every run of ``length`` consecutive frames
    [N * (F - length + 1), length, H, W, 3]."""
    if not 2 <= length <= videos.shape[1]:
        raise ValueError(f"pg_clip_frames={length}: need 2..{videos.shape[1]} (the video length)")
    starts = range(videos.shape[1] - length + 1)
    clips = np.stack([videos[:, s : s + length] for s in starts], axis=1)
    return clips.reshape(-1, *clips.shape[2:])


def clip_loss(
    base: VQGAN,
    guide: torch.nn.Module,
    clip: torch.Tensor,
    first_guide: torch.Tensor,
    weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and temporal term over frames 1.. of ``clip [B, L, C, H, W]``, frame 1 guided by
    ``first_guide [B, C, H, W]`` and every later frame by the previous decode (8-bit, detached)."""
    losses, temporals, guide_frame = [], [], first_guide
    for n in range(1, clip.shape[1]):
        prev, cur = clip[:, n - 1], clip[:, n]
        with torch.no_grad():
            indices = base.quantize(cur).indices
        out = base.decode_codes(indices, guide(guide_frame))
        temporal = ((out - guide_frame) - (cur - prev)).abs().mean()
        losses.append((out - cur).abs().mean() + F.mse_loss(out, cur) + weight * temporal)
        temporals.append(temporal)
        # the 8-bit pixels that decode_video hands the next frame
        guide_frame = out.detach().clamp(-1, 1).add(1).mul(127.5).round().div(127.5).sub(1)
    return torch.stack(losses).mean(), torch.stack(temporals).detach().mean()


def temporal_flicker(decoded: torch.Tensor, truth: np.ndarray) -> float:
    """Mean |(d[t] - d[t-1]) - (g[t] - g[t-1])| over uint8 frames [F, H, W, 3], 0..255 units."""
    d = torch.as_tensor(np.asarray(decoded)).float()
    g = torch.as_tensor(np.asarray(truth)).float()
    return float(((d[1:] - d[:-1]) - (g[1:] - g[:-1])).abs().mean())


@torch.no_grad()
def evaluate_flicker(model: PGVQGAN, videos: np.ndarray) -> dict[str, Any]:
    """Flicker and PSNR on held-out videos [N, F, H, W, 3]: plain per-frame VQGAN decoding vs
    PG-VQGAN text-to-video (frame 0 plain) and animation (frame 0 guided by the given image,
    frames 1.. generated; measured on frames 1..)."""
    rows: dict[str, list[float]] = {}
    for video in videos:
        tokens = model.vqgan.encode(video)
        plain = model.vqgan.decode(tokens)
        t2v = model.decode_video(tokens)
        anim = model.decode_video(tokens[1:], first_guide=video[0])
        for name, value in {
            "plain_flicker": temporal_flicker(plain, video),
            "pg_t2v_flicker": temporal_flicker(t2v, video),
            "plain_flicker_frames1": temporal_flicker(plain[1:], video[1:]),
            "pg_animation_flicker_frames1": temporal_flicker(anim, video[1:]),
            "plain_psnr": psnr(video, plain),
            "pg_t2v_psnr": psnr(video, t2v),
            "pg_animation_psnr_frames1": psnr(video[1:], anim),
        }.items():
            rows.setdefault(name, []).append(value)
    report: dict[str, Any] = {k: float(np.mean(v)) for k, v in rows.items()}
    report["flicker_reduction_t2v"] = 1.0 - report["pg_t2v_flicker"] / report["plain_flicker"]
    report["videos"], report["frames"] = len(videos), int(videos.shape[1])
    report["size"] = list(videos.shape[2:4])
    return report


def train(cfg: DictConfig) -> None:
    preset: TokenizerPreset = OmegaConf.to_object(cfg.tokenizer)
    data: DataConfig = OmegaConf.to_object(cfg.data)
    optim, loss_cfg = preset.optim, preset.loss
    if not cfg.tokenizer_checkpoint:
        raise ValueError("stage=pg_tokenizer needs tokenizer_checkpoint=PATH (a trained VQGAN)")
    dist = setup_distributed()
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)

    torch.manual_seed(cfg.seed)
    base = load_tokenizer(cfg.tokenizer_checkpoint, preset=preset.name, kind="vqgan")
    model = PGVQGAN(base).to(dist.device)
    model_config = asdict(base.config)
    opt = torch.optim.Adam(model.guide.parameters(), lr=optim.lr, betas=tuple(optim.betas))
    modules, optimizers = {"model": model}, {"guide": opt}
    start = resume_step(run_dir / "last.safetensors", modules, optimizers, KIND, model_config)
    train_clips = frame_clips(video_pool(data, "train"), optim.pg_clip_frames)
    val_videos = video_pool(data, "val")
    guide = DDP(model.guide) if dist.world_size > 1 else model.guide
    metadata = {"kind": KIND, "preset": preset.name, "model": model_config, "config": resolved}

    bar = progress(start, optim.steps, f"pg-vqgan {preset.name}", dist)
    for step in bar:
        model.train()
        gen = step_generator(cfg.seed, dist.rank, step)
        clip = random_crops(train_clips, optim.batch_size, optim.crop, gen).to(dist.device)
        with torch.no_grad():
            first = clip[:, 0]
            use_recon = (torch.rand(len(first), generator=gen) < 0.5).to(dist.device)
            first = torch.where(use_recon[:, None, None, None], base(first)[0].clamp(-1, 1), first)
        loss, temporal = clip_loss(base, guide, clip, first, loss_cfg.temporal_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.guide.parameters(), optim.grad_clip)
        opt.step()
        done = step + 1
        if dist.is_main and due(done, optim.log_every, optim.steps):
            bar.set_postfix(loss=f"{loss.item():.4f}", temporal=f"{temporal.item():.4f}")
            append_log(run_dir, {"step": done, "loss": loss.item(), "temporal": temporal.item()})
        if dist.is_main and due(done, optim.grid_every, optim.steps):
            video = val_videos[0]
            tokens = base.encode(video)
            rows = [video, base.decode(tokens), model.decode_video(tokens)]
            save_grid(run_dir / "grids" / f"step_{done:07d}.png", rows)
        if due(done, optim.ckpt_every, optim.steps):
            checkpoint(run_dir, modules, optimizers, done, metadata, dist)
    if dist.is_main:
        save_tokenizer(
            run_dir / "tokenizer.safetensors",
            model,
            preset=preset.name,
            step=optim.steps,
            config=resolved,
            base_checkpoint=str(cfg.tokenizer_checkpoint),
        )
        report = evaluate_flicker(model, val_videos)
        report |= {"step": optim.steps, "data": resolved["data"]}
        atomic_write_json(run_dir / "eval.json", report)
        tqdm.write(
            f"flicker (mean |temporal diff error|, 0-255): plain {report['plain_flicker']:.3f} "
            f"-> PG {report['pg_t2v_flicker']:.3f}; wrote {run_dir / 'tokenizer.safetensors'}"
        )
