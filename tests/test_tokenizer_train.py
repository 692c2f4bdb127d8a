"""nuwa-train stage=tokenizer and pg_tokenizer: configs, outputs, exact resume, kills, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from nuwa.checkpoint import load_checkpoint
from nuwa.tokenizer import PGVQGAN, TokenizerPreset, build_vqgan, load_tokenizer, preset_names
from nuwa.tokenizer.tiling import to_uint8
from nuwa.train import cli, pg_tokenizer, tokenizer
from nuwa.train.cli import CONFIG_DIR
from nuwa.train.config import DataConfig

TINY = ["tokenizer=tiny", "data.train_items=4", "data.val_items=2", "data.size=64"]


def config(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose(config_name="train", overrides=list(overrides))


def train_tiny(run_dir, *overrides: str) -> None:
    tokenizer.train(config(*TINY, f"run_dir={run_dir}", *overrides))


@pytest.mark.parametrize("preset", preset_names())
@pytest.mark.parametrize("data", ["landscapes", "pan_videos"])
def test_every_preset_and_data_group_composes_to_typed_configs(preset, data):
    cfg = config(f"tokenizer={preset}", f"data={data}")
    assert isinstance(OmegaConf.to_object(cfg.tokenizer), TokenizerPreset)
    assert isinstance(OmegaConf.to_object(cfg.data), DataConfig)
    assert cfg.tokenizer.name == preset and cfg.run_dir == f"runs/tokenizer/{preset}"


def test_typos_and_wrong_types_fail_at_compose_time():
    with pytest.raises(ConfigCompositionException):
        config("tokenizer.model.chh=3")
    with pytest.raises(ConfigCompositionException):
        config("tokenizer.optim.steps=many")


def test_a_run_writes_checkpoints_grids_log_and_held_out_eval(tmp_path):
    train_tiny(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {
        "last.safetensors", "tokenizer.safetensors", "log.jsonl", "eval.json", "grids"
    }  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == [
        "step_0000002.png", "step_0000004.png"
    ]  # fmt: skip
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["images"] == 2 and report["psnr"] > 0 and report["baseline_psnr"] > 0
    _, meta = load_checkpoint(tmp_path / "tokenizer.safetensors", expected_kind="vqgan")
    assert meta["preset"] == "tiny" and meta["step"] == 4 and meta["git_commit"]
    assert meta["config"]["tokenizer"]["name"] == "tiny"
    assert meta["perceptual"].startswith(("off", "lpips"))
    steps = [json.loads(line).get("step") for line in (tmp_path / "log.jsonl").open()]
    assert steps == [None, 1, 2, 3, 4]  # a start record, then every step (log_every=1)


def test_resumed_run_is_identical_to_an_uninterrupted_one(tmp_path):
    train_tiny(tmp_path / "straight", "tokenizer.optim.steps=4")
    train_tiny(tmp_path / "resumed", "tokenizer.optim.steps=2")
    train_tiny(tmp_path / "resumed", "tokenizer.optim.steps=4")  # continues from step 2
    a, _ = load_checkpoint(tmp_path / "straight" / "tokenizer.safetensors")
    b, meta = load_checkpoint(tmp_path / "resumed" / "tokenizer.safetensors")
    assert meta["step"] == 4
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resuming_with_another_architecture_is_refused(tmp_path):
    train_tiny(tmp_path, "tokenizer.optim.steps=2")
    with pytest.raises(Exception, match="another tokenizer config"):
        train_tiny(tmp_path, "tokenizer.optim.steps=4", "tokenizer.model.z_channels=8")


def test_decoder_fine_tune_keeps_every_token_and_changes_only_the_decoder(tmp_path):
    train_tiny(tmp_path / "base", "tokenizer.optim.steps=2")
    base_path = tmp_path / "base" / "tokenizer.safetensors"
    train_tiny(tmp_path / "ft", f"init={base_path}", "tokenizer.optim.train=decoder")
    base, tuned = (
        load_tokenizer(base_path),
        load_tokenizer(tmp_path / "ft" / "tokenizer.safetensors"),
    )
    images = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    assert torch.equal(base.encode(images), tuned.encode(images))
    before, after = base.state_dict(), tuned.state_dict()
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed and all(key.startswith("decoder.") for key in changed)


def nuwa_train(*args: str, **kwargs) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "nuwa.train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kwargs)  # fmt: skip


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    common = [*TINY, f"run_dir={run_dir}", "tokenizer.optim.ckpt_every=3"]
    proc = nuwa_train(*common, "tokenizer.optim.steps=100000")
    last = run_dir / "last.safetensors"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, meta = load_checkpoint(last)
    killed_at = meta["step"]
    assert killed_at >= 3 and not (run_dir / "tokenizer.safetensors").exists()
    proc = nuwa_train(*common, f"tokenizer.optim.steps={killed_at + 2}")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    _, meta = load_checkpoint(run_dir / "tokenizer.safetensors")
    assert meta["step"] == killed_at + 2
    records = [json.loads(line) for line in (run_dir / "log.jsonl").open()]
    assert sum(r.get("event") == "start" for r in records) == 1  # never restarted from 0


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["stage=nope"], "unknown stage 'nope'"),
        ([*TINY, "stage=pg_tokenizer"], "needs tokenizer_checkpoint"),
        ([*TINY, "stage=pg_tokenizer", "tokenizer_checkpoint=missing.st"], "not found"),
        ([*TINY, "tokenizer.optim.train=decoder"], "add init=PATH"),
        ([*TINY, "tokenizer.optim.train=encoder"], "expected one of"),
    ],
)
def test_cli_errors_exit_with_one_line(tmp_path, monkeypatch, capsys, overrides, message):
    monkeypatch.setattr(sys, "argv", ["nuwa-train", *overrides, f"run_dir={tmp_path}"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("nuwa-train: error: ")
    assert message in err and err.count("\n") == 1


def test_pg_stage_trains_the_guide_and_reports_flicker(tmp_path):
    train_tiny(tmp_path / "vqgan", "tokenizer.optim.steps=2")
    base = tmp_path / "vqgan" / "tokenizer.safetensors"
    video = ["data=pan_videos", "data.size=64", "data.frames=3", "data.train_items=2"]
    cfg = config(*TINY, *video, "data.val_items=1", "stage=pg_tokenizer",
                 f"tokenizer_checkpoint={base}", f"run_dir={tmp_path / 'pg'}",
                 "tokenizer.optim.steps=2")  # fmt: skip
    pg_tokenizer.train(cfg)
    model = load_tokenizer(tmp_path / "pg" / "tokenizer.safetensors", kind="pg_vqgan")
    assert isinstance(model, PGVQGAN)
    assert any(p.abs().sum() > 0 for p in model.guide.mid_out.parameters())  # it trained
    base_model = load_tokenizer(base)
    for key, value in base_model.state_dict().items():  # the VQGAN stayed frozen
        assert torch.equal(model.vqgan.state_dict()[key], value), key
    report = json.loads((tmp_path / "pg" / "eval.json").read_text())
    assert report["videos"] == 1 and report["frames"] == 3
    assert {"plain_flicker", "pg_t2v_flicker", "pg_animation_flicker_frames1"} <= set(report)


def test_pg_training_clips_chain_each_guide_from_the_previous_decode():
    videos = np.arange(2 * 4 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 4, 2, 2, 3)
    clips = pg_tokenizer.frame_clips(videos, 3)
    assert clips.shape == (4, 3, 2, 2, 3)
    assert np.array_equal(clips[1], videos[0, 1:4]) and np.array_equal(clips[2], videos[1, :3])
    with pytest.raises(ValueError, match="pg_clip_frames=5"):
        pg_tokenizer.frame_clips(videos, 5)

    torch.manual_seed(0)
    pg = PGVQGAN(build_vqgan("tiny")).train()  # its VQGAN frozen in eval mode, as in training
    seen = []

    def guide(frame):
        seen.append(frame)
        return pg.guide(frame)

    clip = torch.rand(2, 3, 3, 32, 32) * 2 - 1
    loss, temporal = pg_tokenizer.clip_loss(pg.vqgan, guide, clip, clip[:, 0], weight=1.0)
    assert len(seen) == 2 and torch.equal(seen[0], clip[:, 0])
    indices = pg.vqgan.quantize(clip[:, 1]).indices
    decoded = pg.vqgan.decode_codes(indices, pg.guide(clip[:, 0]))
    expected = torch.from_numpy(to_uint8(decoded).numpy()).permute(0, 3, 1, 2) / 127.5 - 1
    torch.testing.assert_close(seen[1], expected)  # the 8-bit decode of frame 1 guides frame 2
    assert not seen[1].requires_grad and loss.requires_grad and temporal > 0
