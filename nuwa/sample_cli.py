"""``nuwa-sample``: the five tasks from the command line (hydra; nuwa/conf/sample/sample.yaml).

    nuwa-sample task=t2i text="a sunset over three ridges" width=1024 height=256 out=outputs/x.png
    nuwa-sample task=outpaint input=img.png direction=up amount=256
    nuwa-sample task=outpaint input=img.png direction=all width=768 height=768 text="a lake"
    nuwa-sample task=animate input=frame.png frames=8 out=x.mp4
    nuwa-sample task=t2v text="a river at dawn" frames=16 out=x.gif
    nuwa-sample task=unconditional width=2048 height=256 n=4 seed=1

The bundled model is the default; ``checkpoint=... tokenizer_checkpoint=...``
(``[pg_tokenizer_checkpoint=...]``) use others.
A text with commas, colons or brackets needs hydra quoting: ``'text="a lake, at dusk"'``.
Bad input ends with one line on stderr and exit code 2, never a traceback; warnings are one line.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from nuwa.checkpoint import CheckpointError
from nuwa.pipeline import Pipeline, outpaint_amount
from nuwa.sampling import PAPER_TOP_K_FRACTION
from nuwa.writers import IMAGE_SUFFIXES, VIDEO_SUFFIXES, numbered, write_output

# Its own folder: nuwa/conf also holds the training groups (tokenizer/, data/). The model-file
# options are named *_checkpoint because a key named like a group that nuwa.train registered in
# hydra's (process-wide) ConfigStore, e.g. `tokenizer=`, would be read as a group choice.
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf" / "sample")
TASKS = ("unconditional", "t2i", "outpaint", "animate", "t2v")
VIDEO_TASKS = ("animate", "t2v")


@dataclass
class SampleConfig:
    """``nuwa-sample`` options (defaults in nuwa/conf/sample/sample.yaml).

    Attributes:
        task: unconditional | t2i | outpaint | animate | t2v.
        text: the prompt (t2i, t2v; optional for outpaint).
        input: image file (outpaint: the image to grow; animate: the first frame).
        width, height: canvas size in px, multiples of the patch size (default: 4 x 4 patches).
            For outpaint, an alternative to ``amount``: the canvas to grow the input into.
        frames, fps: video length and playback rate (animate, t2v).
        direction, amount: outpainting side (right | left | down | up | all) and px to add.
        keep_input: outpainting returns the input's own pixels in the given region (faded into
            the generated part over 16 px); false returns the raw decode of the whole canvas.
        n: samples, generated as one batch; outputs are numbered when n > 1.
        out: output file: .png or .gif for images, .mp4 or .gif for videos.
        seed, top_k, top_k_fraction, top_p, temperature, cfg_scale: sampler options (see
            Pipeline); by default top-k keeps the paper's fraction of the codebook.
        checkpoint, tokenizer_checkpoint, pg_tokenizer_checkpoint: model files (default: the
            bundled model).
        device: torch device, e.g. cpu or cuda.
        threads: CPU threads for torch (default: torch's choice). Sampling runs thousands of
            small kernels; on a busy CPU, 1 thread can be many times faster than several.
        progress: a progress bar per patch.
    """

    task: str = "t2i"
    text: str | None = None
    input: str | None = None
    width: int | None = None
    height: int | None = None
    frames: int = 8
    fps: int = 8
    direction: str = "right"
    amount: int | None = None
    keep_input: bool = True
    n: int = 1
    out: str | None = None
    seed: int = 0
    top_k: int | None = None
    top_k_fraction: float | None = PAPER_TOP_K_FRACTION
    top_p: float | None = None
    temperature: float = 1.0
    cfg_scale: float = 1.0
    checkpoint: str | None = None
    tokenizer_checkpoint: str | None = None
    pg_tokenizer_checkpoint: str | None = None
    device: str = "cpu"
    threads: int | None = None
    progress: bool = True


ConfigStore.instance().store(name="sample_schema", node=SampleConfig)


def run(cfg: SampleConfig) -> list[Path]:
    """Generate what ``cfg`` asks for and write it; returns the written paths.

    Raises ValueError / CheckpointError / OSError with a one-line message on bad input.
    """
    if cfg.task not in TASKS:
        raise ValueError(f"unknown task {cfg.task!r}; choose from {', '.join(TASKS)}")
    if cfg.n < 1:
        raise ValueError(f"n must be >= 1, got {cfg.n}")
    if cfg.threads is not None:
        if cfg.threads < 1:
            raise ValueError(f"threads must be >= 1, got {cfg.threads}")
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out or f"outputs/{cfg.task}{'.mp4' if cfg.task in VIDEO_TASKS else '.png'}")
    allowed = VIDEO_SUFFIXES if cfg.task in VIDEO_TASKS else IMAGE_SUFFIXES
    if out.suffix.lower() not in allowed:
        raise ValueError(f"out={out}: task {cfg.task} writes {' or '.join(allowed)} files")
    pipe = _load(cfg)
    outputs = _generate(pipe, cfg)
    paths = [numbered(out, i, len(outputs)) for i in range(len(outputs))]
    for path, array in zip(paths, outputs, strict=True):
        write_output(path, array, fps=cfg.fps)
    stats = pipe.last_stats
    size = f"{outputs[0].shape[-2]}x{outputs[0].shape[-3]}"
    length = f" x {outputs[0].shape[0]} frames" if outputs[0].ndim == 4 else ""
    print(
        f"wrote {', '.join(map(str, paths))} ({size}{length}; {pipe.model_id}; "
        f"{stats['patches']} patches x {cfg.n}, {stats['tokens']} tokens in "
        f"{stats['seconds']:.1f} s = {stats['tokens_per_s']:.0f} tokens/s)"
    )
    return paths


def _load(cfg: SampleConfig) -> Pipeline:
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={cfg.device} but torch sees no CUDA GPU; use device=cpu")
    if cfg.checkpoint is None and cfg.tokenizer_checkpoint is None:
        if cfg.pg_tokenizer_checkpoint is not None:
            raise ValueError(
                "pg_tokenizer_checkpoint= needs checkpoint= and tokenizer_checkpoint= as well"
            )
        return Pipeline.from_bundled(device=cfg.device, video=cfg.task in VIDEO_TASKS)
    if cfg.checkpoint is None or cfg.tokenizer_checkpoint is None:
        raise ValueError(
            "checkpoint= and tokenizer_checkpoint= go together: pass both (or neither)"
        )
    return Pipeline.from_checkpoint(
        cfg.checkpoint, cfg.tokenizer_checkpoint, cfg.pg_tokenizer_checkpoint, device=cfg.device
    )


def _generate(pipe: Pipeline, cfg: SampleConfig) -> list[np.ndarray]:
    opts = dict(
        seed=cfg.seed,
        top_k=cfg.top_k,
        top_k_fraction=cfg.top_k_fraction,
        top_p=cfg.top_p,
        temperature=cfg.temperature,
        cfg_scale=cfg.cfg_scale,
        progress=cfg.progress,
    )
    default_side = 4 * pipe.patch_px  # paper: 1024 px = 4 patches of 256 px
    width, height = cfg.width or default_side, cfg.height or default_side
    if cfg.task in ("t2i", "t2v") and not cfg.text:
        raise ValueError(f"task={cfg.task} needs text=...")
    texts = [cfg.text] * cfg.n if cfg.text else None
    if cfg.task == "unconditional":
        if cfg.text:
            raise ValueError("task=unconditional takes no text; use task=t2i")
        return pipe.unconditional(cfg.n, width, height, **opts)
    if cfg.task == "t2i":
        return pipe.text_to_image(texts, width, height, **opts)
    if cfg.task == "t2v":
        return pipe.text_to_video(texts, cfg.frames, width, height, **opts)
    image = _read_image(cfg.input, cfg.task)
    if cfg.task == "animate":
        if cfg.width or cfg.height:
            raise ValueError("task=animate takes its size from the input image; drop width/height")
        return pipe.animate([image] * cfg.n, cfg.frames, **opts)
    amount = cfg.amount
    if amount is None:
        if not (cfg.width and cfg.height):
            raise ValueError("task=outpaint needs amount=PX, or width= and height= of the canvas")
        amount = outpaint_amount(cfg.direction, *image.shape[:2], cfg.height, cfg.width)
    elif cfg.width or cfg.height:
        raise ValueError("task=outpaint takes amount= or width=/height=, not both")
    images = [image] * cfg.n
    return pipe.outpaint(
        images,
        direction=cfg.direction,
        amount_px=amount,
        texts=texts,
        keep_input=cfg.keep_input,
        **opts,
    )


def _read_image(path: str | None, task: str) -> np.ndarray:
    """An image file -> uint8 ``[H, W, 3]`` (grey / RGBA / palette converted to RGB)."""
    if not path:
        raise ValueError(f"task={task} needs input=IMAGE")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        reason = getattr(err, "strerror", None) or err
        raise ValueError(f"cannot read input image {path}: {reason}") from err


@hydra.main(version_base=None, config_path=CONFIG_DIR, config_name="sample")
def main(dict_cfg: DictConfig) -> None:
    cfg: SampleConfig = OmegaConf.to_object(dict_cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # each distinct warning once
        warnings.showwarning = _one_line_warning
        try:
            run(cfg)
        except (ValueError, CheckpointError, OSError, ImportError) as err:
            message = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            print(f"nuwa-sample: error: {message}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("nuwa-sample: interrupted", file=sys.stderr)
            sys.exit(130)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    first = str(message).strip().splitlines()[0]
    tqdm.write(f"nuwa-sample: warning: {first}", file=sys.stderr)  # above any progress bar


if __name__ == "__main__":
    main()
