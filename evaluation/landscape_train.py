"""Train the landscape feature network (`landscape_net.procedural_v1@1`) on procedural scenes.

    python -m evaluation.landscape_train --run-dir ~/runs/landscape_net --out weights.safetensors

Every view is labelled by the generator itself: the five caption attributes, the horizon row as
a fraction of the view, and per cell of a 4x4 grid the fraction covered by sky, cloud, ridges
and ground. The views are what the metrics feed the network: the 256-px blocks of a 512-px
canvas (the four aligned ones and one at a random offset) and the whole canvas resized.

Scenes come from their own seed range, disjoint from every split the suite evaluates on
(procedural train / val / test start at 0, 1M and 2M); held-out accuracy is measured on a second
range the network never trains on. A run is resumable: the rendered views are cached in the run
folder, and `last.safetensors` (weights, AdamW state, RNG, epoch) is written after every epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from evaluation.extractors.landscape import (
    ATTRIBUTES,
    CHECKPOINT_KIND,
    COVER_CLASSES,
    INPUT_SIZE,
    LandscapeNet,
    LandscapeNetConfig,
    attribute_logits,
    detail_statistics,
)
from evaluation.preprocess import landscape_resize
from nuwa.checkpoint import (
    CheckpointError,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from nuwa.data.landscapes import SceneLayers, SceneParams, composite, render_layers
from nuwa.data.loaders import PROCEDURAL_SEED_BASE
from nuwa.io import atomic_write_json, sha256_file

TRAIN_SEED_BASE = 3_000_000  # the evaluator's own seeds; the suite's splits use [0, 3M)
HELDOUT_SEED_BASE = 3_500_000  # held-out scenes of the evaluator (never trained on)
SPLIT_WIDTH = 1_000_000
CANVAS = 512  # scenes render at the procedural profile's canvas; a block is a quarter of it
BLOCK = 256
RANDOM_CROPS = 1  # crops at a random offset per scene, beside the 4 aligned blocks and the whole


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (stored in the checkpoint and the weights file)."""

    scenes: int = 4000
    heldout_scenes: int = 400
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    seed: int = 0


# ------------------------------------------------------------------------- labelled views


def cover_map(layers: SceneLayers, height: int) -> np.ndarray:
    """uint8 [H, W]: the COVER_CLASSES index of what is in front at each pixel."""
    ground_row = layers.ground_row
    width = layers.sky.shape[1]
    ridge = np.zeros((ground_row, width), np.float32)
    for top, rgba in layers.ridges:  # coverage of all ridges together: 1 - prod(1 - alpha)
        ridge[top:] = 1 - (1 - ridge[top:]) * (1 - rgba[..., 3])
    upper = np.where(layers.clouds[..., 3] > 0.25, 1, 0).astype(np.uint8)
    upper[ridge > 0.5] = 2
    lower = np.full((height - ground_row, width), 3, np.uint8)
    return np.concatenate([upper, lower])


def _labels(params: SceneParams, cover: np.ndarray, top: int, size: int) -> dict[str, np.ndarray]:
    """Labels of the view whose rows start at ``top`` and span ``size`` px of the scene."""
    one_hot = torch.from_numpy(np.eye(len(COVER_CLASSES), dtype=np.float32)[cover])
    cells = F.adaptive_avg_pool2d(one_hot.permute(2, 0, 1)[None], 4)[0]
    attributes = [classes.index(getattr(params, name)) for name, classes in ATTRIBUTES.items()]
    return {
        "attributes": np.asarray(attributes, np.int64),
        "horizon": np.asarray([(params.horizon * CANVAS - top) / size], np.float32),
        "cover": cells.numpy(),
    }


def scene_views(seed: int) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """The labelled views of one scene: uint8 [V, 128, 128, 3] and one label dict per view
    (V = 1 whole + 4 aligned blocks + RANDOM_CROPS blocks at a seeded random offset)."""
    params, layers = render_layers(seed, CANVAS, CANVAS)
    image, cover = composite(layers), cover_map(layers, CANVAS)
    rng = np.random.default_rng(seed)
    boxes = [(0, 0, CANVAS)] + [(t, l, BLOCK) for t in (0, BLOCK) for l in (0, BLOCK)]
    boxes += [(*rng.integers(0, CANVAS - BLOCK + 1, 2), BLOCK) for _ in range(RANDOM_CROPS)]
    views, labels = [], []
    for top, left, size in boxes:
        view = landscape_resize(image[top : top + size, left : left + size])
        views.append(view.round().byte().permute(1, 2, 0).numpy())
        labels.append(_labels(params, cover[top : top + size, left : left + size], top, size))
    return np.stack(views), labels


def render_views(
    first_seed: int, count: int, cache: Path, workers: int = 2
) -> dict[str, np.ndarray]:
    """Views and labels of scenes [first_seed, first_seed + count), cached as one .npz."""
    path = cache / f"views-{first_seed}-{count}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return dict(stored)
    views, labels = [], []
    with ProcessPoolExecutor(workers) as pool:
        seeds = range(first_seed, first_seed + count)
        for scene_views_, scene_labels in tqdm(
            pool.map(scene_views, seeds, chunksize=16), total=count, desc="render", leave=False
        ):
            views.append(scene_views_)
            labels.extend(scene_labels)
    data = {"views": np.concatenate(views)}
    data |= {key: np.stack([label[key] for label in labels]) for key in labels[0]}
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(path)
    return data


# ------------------------------------------------------------------------- training


def losses(net: LandscapeNet, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The four supervised losses of one batch (views float32 [B, 3, 128, 128] in [0, 255])."""
    out = net(batch["views"])
    per_attribute = attribute_logits(out["attributes"])
    attributes = sum(
        F.cross_entropy(logits, batch["attributes"][:, i])
        for i, logits in enumerate(per_attribute.values())
    ) / len(per_attribute)
    cover = -(batch["cover"] * F.log_softmax(out["cover"], dim=1)).sum(1).mean()
    horizon = F.smooth_l1_loss(out["horizon"], batch["horizon"], beta=0.05)
    detail = F.mse_loss(out["detail"], detail_statistics(batch["views"], net.config.grid))
    return {"attributes": attributes, "cover": cover, "horizon": horizon, "detail": detail}


def _batch(data: dict[str, np.ndarray], index: np.ndarray, flip: np.ndarray | None = None):
    views = torch.from_numpy(data["views"][index]).permute(0, 3, 1, 2).float()
    cover = torch.from_numpy(data["cover"][index])
    if flip is not None:  # mirror images are landscapes too (left-right only, never up-down)
        views = torch.where(flip[:, None, None, None], views.flip(-1), views)
        cover = torch.where(flip[:, None, None, None], cover.flip(-1), cover)
    return {
        "views": views,
        "cover": cover,
        "attributes": torch.from_numpy(data["attributes"][index]),
        "horizon": torch.from_numpy(data["horizon"][index]),
    }


@torch.inference_mode()
def heldout_report(net: LandscapeNet, data: dict[str, np.ndarray]) -> dict[str, float]:
    """Held-out accuracy per attribute (on the whole-scene views), horizon MAE (fraction of the
    view), cover MAE (fraction per cell and class) and detail MAE (log1p units), all views."""
    net.eval()
    predictions, horizons, covers, details = [], [], [], []
    for start in range(0, len(data["views"]), 256):
        views = _batch(data, np.arange(start, min(start + 256, len(data["views"]))))["views"]
        out = net(views)
        predictions.append(
            torch.stack([l.argmax(1) for l in attribute_logits(out["attributes"]).values()], 1)
        )
        horizons.append(out["horizon"])
        covers.append(out["cover"].softmax(1))
        details.append((out["detail"] - detail_statistics(views, net.config.grid)).abs())
    predicted = torch.cat(predictions).numpy()
    views_per_scene = 5 + RANDOM_CROPS
    whole = slice(0, None, views_per_scene)
    report = {
        f"accuracy/{name}": float((predicted[whole, i] == data["attributes"][whole, i]).mean())
        for i, name in enumerate(ATTRIBUTES)
    }
    report["horizon_mae"] = float(np.abs(torch.cat(horizons).numpy() - data["horizon"]).mean())
    report["cover_mae"] = float(np.abs(torch.cat(covers).numpy() - data["cover"]).mean())
    report["detail_mae"] = float(torch.cat(details).mean())
    return report


def train(config: TrainConfig, run_dir: Path, workers: int = 2) -> tuple[LandscapeNet, dict]:
    """Train (resuming from ``run_dir/last.safetensors`` when present); returns the network and
    its held-out report."""
    torch.manual_seed(config.seed)
    train_data = render_views(TRAIN_SEED_BASE, config.scenes, run_dir, workers)
    heldout = render_views(HELDOUT_SEED_BASE, config.heldout_scenes, run_dir, workers)
    net = LandscapeNet(LandscapeNetConfig())
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(train_data["views"])
    steps_per_epoch = n // config.batch_size
    total = steps_per_epoch * config.epochs
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total, pct_start=0.05
    )
    state_path, log_path = run_dir / "last.safetensors", run_dir / "log.jsonl"
    first_epoch = 0
    if state_path.is_file():
        meta = load_training_state(
            state_path, modules={"net": net}, optimizers={"adamw": optimizer},
            expected_kind="landscape_net_training",
        )  # fmt: skip
        if meta["train_config"] != config.__dict__:
            raise CheckpointError(
                f"{state_path} was written with another config; use a new run dir"
            )
        first_epoch = meta["step"]
        for _ in range(first_epoch * steps_per_epoch):
            schedule.step()
    for epoch in range(first_epoch, config.epochs):
        net.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed + epoch))
        flips = torch.rand(n, generator=torch.Generator().manual_seed(10_000 + epoch)) < 0.5
        started, sums = (
            time.time(),
            dict.fromkeys(("attributes", "cover", "horizon", "detail"), 0.0),
        )
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
        for step in bar:
            index = order[step * config.batch_size : (step + 1) * config.batch_size].numpy()
            parts = losses(net, _batch(train_data, index, flips[index]))
            loss = sum(parts.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            for key, value in parts.items():
                sums[key] += value.item() / steps_per_epoch
            bar.set_postfix(loss=f"{loss.item():.3f}")
        report = heldout_report(net, heldout)
        row = {"epoch": epoch + 1, "seconds": round(time.time() - started, 1), **sums, **report}
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(row) + "\n")
        print(json.dumps(row), file=sys.stderr)
        save_training_state(
            state_path, modules={"net": net}, optimizers={"adamw": optimizer}, step=epoch + 1,
            metadata={"kind": "landscape_net_training", "train_config": config.__dict__},
        )  # fmt: skip
    return net.eval(), heldout_report(net, heldout)


def export(net: LandscapeNet, config: TrainConfig, report: dict, out: Path) -> str:
    """Write the weights file the registry loads; returns its SHA-256."""
    save_checkpoint(
        out,
        dict(net.state_dict()),
        {
            "kind": CHECKPOINT_KIND,
            "config": net.config.to_json(),
            "train_config": config.__dict__,
            "heldout": report,
            "input_size": INPUT_SIZE,
        },
    )
    return sha256_file(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.landscape_train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--run-dir", type=Path, required=True, help="resumable run folder")
    parser.add_argument("--out", type=Path, required=True, help="weights file to write")
    for name, value in TrainConfig().__dict__.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--workers", type=int, default=2, help="processes that render scenes")
    args = parser.parse_args(argv)
    config = TrainConfig(**{k: getattr(args, k) for k in TrainConfig().__dict__})
    if args.out.exists():
        parser.error(f"{args.out} exists; pick a new path (weights are never overwritten)")
    assert_disjoint_seeds(config)
    started = time.time()
    net, report = train(config, args.run_dir.expanduser(), args.workers)
    digest = export(net, config, report, args.out)
    summary = {
        "weights": str(args.out),
        "sha256": digest,
        "minutes": round((time.time() - started) / 60, 1),
        **report,
    }
    atomic_write_json(args.run_dir.expanduser() / "export.json", summary)
    print(json.dumps(summary, indent=2))
    return 0


def assert_disjoint_seeds(config: TrainConfig) -> None:
    """The evaluator's scenes never overlap a split the suite evaluates on, nor each other."""
    used = [(base, base + SPLIT_WIDTH) for base in PROCEDURAL_SEED_BASE.values()]
    ours = [(TRAIN_SEED_BASE, TRAIN_SEED_BASE + config.scenes),
            (HELDOUT_SEED_BASE, HELDOUT_SEED_BASE + config.heldout_scenes)]  # fmt: skip
    for lo, hi in ours:
        for other_lo, other_hi in used + [r for r in ours if r != (lo, hi)]:
            if lo < other_hi and other_lo < hi:
                raise ValueError(f"evaluator seeds [{lo}, {hi}) overlap [{other_lo}, {other_hi})")


if __name__ == "__main__":
    sys.exit(main())
