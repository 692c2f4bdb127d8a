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
from dataclasses import dataclass, fields
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from nuwa.data.records import DataError, load_image
from nuwa.device import resolve_device
from nuwa.errors import UserError, run_reporting
from nuwa.outpainting import DIRECTIONS as OUTPAINT_DIRECTIONS
from nuwa.overrides import run_hydra
from nuwa.pipeline import Generation, Pipeline, outpaint_amount
from nuwa.sampling import PAPER_TOP_K_FRACTION, SamplerOptions
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
        overwrite: replace existing output files (the input image never).
        seed, top_k, top_k_fraction, top_p, temperature, cfg_scale, wavefront: sampler options
            (see SamplerOptions); by default top-k keeps the paper's fraction of the codebook
            and patches whose context is complete are decoded together (the same image).
        checkpoint, tokenizer_checkpoint, pg_tokenizer_checkpoint: the model (default: the
            bundled one): a folder with model.safetensors and tokenizer.safetensors, or a
            model file and its tokenizer file.
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
    overwrite: bool = False
    n: int = 1
    out: str | None = None
    seed: int = 0
    top_k: int | None = None
    top_k_fraction: float | None = PAPER_TOP_K_FRACTION
    top_p: float | None = None
    temperature: float = 1.0
    cfg_scale: float = 1.0
    wavefront: bool | None = None
    checkpoint: str | None = None
    tokenizer_checkpoint: str | None = None
    pg_tokenizer_checkpoint: str | None = None
    device: str = "cpu"
    threads: int | None = None
    progress: bool = True


ConfigStore.instance().store(name="sample_schema", node=SampleConfig)


def run(cfg: SampleConfig) -> list[Path]:
    """Generate what ``cfg`` asks for and write it; returns the written paths.

    Every option, the input image and the output paths are checked before the model loads; a
    bad one raises a one-line ``UserError`` (or ``ValueError`` from the pipeline's own checks).
    """
    paths, image = _check(cfg)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    pipe = Pipeline.load(
        cfg.checkpoint or "bundled",
        cfg.tokenizer_checkpoint,
        cfg.pg_tokenizer_checkpoint,
        device=cfg.device,
        video=cfg.task in VIDEO_TASKS,
    )
    outputs = _generate(pipe, cfg, image)
    for path, array in zip(paths, outputs, strict=True):
        write_output(path, array, fps=cfg.fps)
    stats = outputs.stats
    size = f"{outputs[0].shape[-2]}x{outputs[0].shape[-3]}"
    length = f" x {outputs[0].shape[0]} frames" if outputs[0].ndim == 4 else ""
    print(
        f"wrote {', '.join(map(str, paths))} ({size}{length}; {pipe.model_id}; "
        f"{stats['patches']} patches x {cfg.n}, {stats['tokens']} tokens in "
        f"{stats['seconds']:.1f} s = {stats['tokens_per_s']:.0f} tokens/s)"
    )
    return paths


def _check(cfg: SampleConfig) -> tuple[list[Path], np.ndarray | None]:
    """The output paths and the input image (or None), once every option is valid."""
    if cfg.task not in TASKS:
        raise UserError(f"unknown task {cfg.task!r}; choose from {', '.join(TASKS)}")
    for name in ("n", "threads", "width", "height", "frames", "fps", "amount"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise UserError(f"{name} must be a positive number, got {name}={value}")
    if cfg.task in ("t2i", "t2v") and not cfg.text:
        raise UserError(f"task={cfg.task} needs text=...")
    if cfg.task == "unconditional" and cfg.text:
        raise UserError("task=unconditional takes no text; use task=t2i")
    if cfg.task == "outpaint" and cfg.direction not in OUTPAINT_DIRECTIONS:
        raise UserError(f"direction={cfg.direction} is not one of {', '.join(OUTPAINT_DIRECTIONS)}")
    if cfg.task == "animate" and (cfg.width or cfg.height):
        raise UserError("task=animate takes its size from the input image; drop width/height")
    if cfg.task == "outpaint" and cfg.amount is None and not (cfg.width and cfg.height):
        raise UserError("task=outpaint needs amount=PX, or width= and height= of the canvas")
    if cfg.task == "outpaint" and cfg.amount is not None and (cfg.width or cfg.height):
        raise UserError("task=outpaint takes amount= or width=/height=, not both")
    if cfg.pg_tokenizer_checkpoint and not cfg.checkpoint:
        raise UserError("pg_tokenizer_checkpoint= needs checkpoint= as well")
    if cfg.tokenizer_checkpoint and not cfg.checkpoint:
        raise UserError("tokenizer_checkpoint= needs checkpoint= (a model file or a folder)")
    try:
        SamplerOptions(**_sampler_options(cfg))
    except ValueError as err:
        raise UserError(str(err)) from None
    resolve_device(cfg.device)
    out = Path(cfg.out or f"outputs/{cfg.task}{'.mp4' if cfg.task in VIDEO_TASKS else '.png'}")
    allowed = VIDEO_SUFFIXES if cfg.task in VIDEO_TASKS else IMAGE_SUFFIXES
    if out.suffix.lower() not in allowed:
        raise UserError(f"out={out}: task {cfg.task} writes {' or '.join(allowed)} files")
    paths = [numbered(out, i, cfg.n) for i in range(cfg.n)]
    image = None
    if cfg.task in ("outpaint", "animate"):
        if not cfg.input:
            raise UserError(f"task={cfg.task} needs input=IMAGE")
        try:
            image = load_image(cfg.input, None)
        except DataError as err:
            raise UserError(f"cannot read input image {err}") from None
        for path in paths:
            if path.resolve() == Path(cfg.input).resolve():
                raise UserError(f"out={path} is the input image; write the result elsewhere")
    existing = [str(path) for path in paths if path.exists()]
    if existing and not cfg.overwrite:
        raise UserError(
            f"{existing[0]} exists; choose another out= or pass overwrite=true to replace it"
        )
    return paths, image


def _sampler_options(cfg: SampleConfig) -> dict:
    """The :class:`SamplerOptions` fields that ``SampleConfig`` exposes, as keyword arguments."""
    exposed = {f.name for f in fields(SampleConfig)}
    return {f.name: getattr(cfg, f.name) for f in fields(SamplerOptions) if f.name in exposed}


def _generate(pipe: Pipeline, cfg: SampleConfig, image: np.ndarray | None) -> Generation:
    opts = _sampler_options(cfg)
    default_side = 4 * pipe.patch_px  # paper: 1024 px = 4 patches of 256 px
    width, height = cfg.width or default_side, cfg.height or default_side
    texts = [cfg.text] * cfg.n if cfg.text else None
    if cfg.task == "unconditional":
        return pipe.unconditional(cfg.n, width, height, **opts)
    if cfg.task == "t2i":
        return pipe.text_to_image(texts, width, height, **opts)
    if cfg.task == "t2v":
        return pipe.text_to_video(texts, cfg.frames, width, height, **opts)
    if cfg.task == "animate":
        return pipe.animate([image] * cfg.n, cfg.frames, **opts)
    amount = cfg.amount
    if amount is None:
        amount = outpaint_amount(cfg.direction, *image.shape[:2], cfg.height, cfg.width)
    images = [image] * cfg.n
    return pipe.outpaint(
        images,
        direction=cfg.direction,
        amount_px=amount,
        texts=texts,
        keep_input=cfg.keep_input,
        **opts,
    )


@hydra.main(version_base=None, config_path=CONFIG_DIR, config_name="sample")
def _hydra_main(dict_cfg: DictConfig) -> None:
    cfg: SampleConfig = OmegaConf.to_object(dict_cfg)

    def work() -> int:
        run(cfg)
        return 0

    sys.exit(run_reporting("nuwa-sample", work, errors=(ValueError, ImportError)))


def main() -> None:
    """Entry point of the ``nuwa-sample`` console script."""
    run_hydra("nuwa-sample", _hydra_main)


if __name__ == "__main__":
    main()
