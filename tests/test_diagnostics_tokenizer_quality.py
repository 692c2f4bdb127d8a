"""benchmarks.diagnostics.tokenizer_quality: the VQGAN beside its equal-bits palette baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import torch
from PIL import Image

from benchmarks.diagnostics import tokenizer_quality
from nuwa.tokenizer import VQGAN, load_preset, save_tokenizer


def test_reports_every_set_beside_the_baseline_and_draws_the_grid(tmp_path):
    torch.manual_seed(0)
    model = VQGAN(replace(load_preset("tiny").model, colour_skip=True))
    save_tokenizer(tmp_path / "tok.safetensors", model, preset="tiny", step=0)
    out, grid = tmp_path / "quality.json", tmp_path / "grid.png"
    argv = [str(tmp_path / "tok.safetensors"), "--n", "2", "--wide-n", "1", "--square-n", "1"]
    argv += ["--train-n", "16"]
    results = tokenizer_quality.main([*argv, "--out", str(out), "--grid", str(grid)])

    assert json.loads(out.read_text()) == results
    assert set(results) == {"val_256x256", "val_256x1024_tiled", "val_512x512_tiled"}
    for row in results.values():
        assert row["baseline_psnr"] > 20  # a real baseline: block colours of smooth scenes
        assert np.isfinite([row["psnr"], row["swd_x1e3"], row["baseline_swd_x1e3"]]).all()
    assert "seam_ratio" in results["val_512x512_tiled"]
    assert "seam_ratio" not in results["val_256x256"]
    # rows: originals, VQGAN, baseline; one column per held-out 256x256 image
    assert Image.open(grid).size == (2 * 256, 3 * 256)


def test_a_missing_checkpoint_is_one_line_and_exit_2(tmp_path):
    module = "benchmarks.diagnostics.tokenizer_quality"
    missing = str(tmp_path / "none.safetensors")
    done = subprocess.run([sys.executable, "-m", module, missing], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"tokenizer_quality: error: checkpoint not found: {missing}"
    ]
