"""The task layer: the paper's five tasks (paper §1), one call each, on a model plus its tokenizer.

    pipe = Pipeline.from_bundled()                      # or Pipeline.from_checkpoint(...)
    [img] = pipe.text_to_image(["a sunset over three ridges"], width=1024, height=256, seed=0)
    [big] = pipe.outpaint([img], direction="all", amount_px=256)
    [video] = pipe.animate([img], frames=8)              # uint8 [8, 256, 1024, 3]

Every task is a plan (``nuwa.adc.make_plan``: the generation order plus the given patches) run by
``nuwa.sampling.sample``, which pre-caches the given patches first (paper Algorithm 2). Each patch
is handed to a :class:`~nuwa.canvas.StreamingCanvas` as it finishes and decoded into a uint8
canvas as soon as the tokens its decode window reads exist, so memory never holds the canvas in
float32. Images come back as uint8 ``[H, W, 3]``, videos as uint8 ``[F, H, W, 3]``.

Each task returns a :class:`Generation`: a sequence of the outputs that also carries the token
grids, the plan, where the given input sits (outpainting) and the sampling's timings.

Sampler options, keyword-only and the same for every task: the fields of
:class:`nuwa.sampling.SamplerOptions` (``seed, top_k, top_k_fraction, top_p, temperature,
cfg_scale, pnar_steps, wavefront, progress``). The same call (same inputs, batch composition and
seed) gives the same bytes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from nuwa.adc import DIRECTION_ORDERS, ExtentWarning, Plan, make_plan
from nuwa.bundle import (
    BUNDLE_FILES,
    BundleMissingError,
    ModelFiles,
    bundle_files,
    check_compatible,
    load_files,
)
from nuwa.canvas import StreamingCanvas
from nuwa.checkpoint import CheckpointError
from nuwa.layout import PatchGrid
from nuwa.model.transformer import Nuwa
from nuwa.outpainting import (
    DIRECTIONS,
    canvas_size,
    generated_mask,
    generated_region,
    given_region,
    outpaint_amount,
    paste_input,
)
from nuwa.sampling import SamplerOptions, sample
from nuwa.tokenizer import DOWNSAMPLE, PGVQGAN, VQGAN

__all__ = [  # the outpainting geometry is part of this module's API
    "DIRECTIONS",
    "Generation",
    "Pipeline",
    "SamplerOptions",
    "canvas_size",
    "generated_mask",
    "generated_region",
    "given_region",
    "outpaint_amount",
]

# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Generation(Sequence):
    """What a task returns: its outputs, one per input, and how they were made.

    It is a sequence of the outputs (uint8 images ``[H, W, 3]`` or videos ``[F, H, W, 3]``), so
    ``[image] = pipe.text_to_image(...)`` unpacks it.

    Attributes:
        outputs: the images or videos.
        tokens: the token grids ``[B, F, H, W]``.
        plan: the plan that was sampled (its first ``num_given`` steps were pre-cached).
        stats: patches and tokens sampled, seconds and tokens/s of sampling plus the streamed
            decoding, the sampler options, and the decoding's cost (``Sampled.cost``).
        given_region: outpainting: the input's pixel box ``(top, left, height, width)``.
        generated_mask: outpainting: bool ``[H, W]``, True on generated pixels.
    """

    outputs: list[np.ndarray]
    tokens: torch.Tensor
    plan: Plan
    stats: dict = field(default_factory=dict)
    given_region: tuple[int, int, int, int] | None = None
    generated_mask: np.ndarray | None = None

    def __getitem__(self, index):
        return self.outputs[index]

    def __len__(self) -> int:
        return len(self.outputs)

    def first_frames(self) -> Generation:
        """The same result with each video cut to its first frame (the image tasks)."""
        return replace(self, outputs=[video[0] for video in self.outputs])


# ---------------------------------------------------------------- the pipeline


class Pipeline:
    """A NUWA-Infinity model, its VQGAN and optionally a PG-VQGAN, ready for the five tasks."""

    memmap_over_bytes: int = 1 << 30
    """Canvases (all samples of a call) larger than this live in an unlinked file on disk."""
    memmap_dir: str | None = None

    def __init__(
        self,
        model: Nuwa,
        tokenizer: VQGAN,
        pg_tokenizer: PGVQGAN | None = None,
        *,
        model_id: str = "nuwa-custom",
        checkpoint_sha256: dict[str, str] | None = None,
    ) -> None:
        check_compatible(model, tokenizer, pg_tokenizer)
        self.model, self.tokenizer, self.pg_tokenizer = model.eval(), tokenizer, pg_tokenizer
        self.model_id = model_id
        self.checkpoint_sha256 = dict(checkpoint_sha256 or {})
        self.layout = model.layout

    # ------------------------------------------------------------ loading

    @classmethod
    def load(
        cls,
        checkpoint: str | Path = "bundled",
        tokenizer: str | Path | None = None,
        pg_tokenizer: str | Path | None = None,
        device: str = "cpu",
        *,
        video: bool = False,
    ) -> Pipeline:
        """What every command means by a checkpoint: ``"bundled"`` (the shipped model, its video
        model with ``video``), a folder holding ``model.safetensors`` and
        ``tokenizer.safetensors`` (``video_model.safetensors`` with ``video`` where present;
        ``pg_tokenizer.safetensors`` where present), or a model file plus ``tokenizer``."""
        if str(checkpoint) == "bundled":
            if tokenizer is not None or pg_tokenizer is not None:
                raise CheckpointError(
                    "the bundled model brings its own tokenizer; name a tokenizer only together "
                    "with a checkpoint"
                )
            return cls.from_bundled(device=device, video=video)
        path = Path(checkpoint)
        if path.is_dir():
            tokenizer = tokenizer or path / BUNDLE_FILES["tokenizer"]
            found = path / BUNDLE_FILES["pg_tokenizer"]
            pg_tokenizer = pg_tokenizer or (found if found.is_file() else None)
            video_model = path / BUNDLE_FILES["video_model"]
            path = video_model if video and video_model.is_file() else path / BUNDLE_FILES["model"]
        if tokenizer is None:
            raise CheckpointError(
                f"{checkpoint} is a model file; name its tokenizer file too, or give the folder "
                "that holds both"
            )
        return cls.from_checkpoint(path, tokenizer, pg_tokenizer, device=device)

    @classmethod
    def from_checkpoint(
        cls,
        model: str | Path,
        tokenizer: str | Path,
        pg_tokenizer: str | Path | None = None,
        device: str = "cpu",
    ) -> Pipeline:
        """Load a model checkpoint (``save_model``) and tokenizer files (``save_tokenizer``).

        Raises :class:`~nuwa.checkpoint.CheckpointError` (one line) for a missing, unreadable or
        wrong-kind file, or files that do not belong together (e.g. another codebook size).
        """
        paths = {"model": model, "tokenizer": tokenizer, "pg_tokenizer": pg_tokenizer}
        paths = {name: Path(p) for name, p in paths.items() if p is not None}
        return cls._from_files(load_files(paths, device))

    @classmethod
    def from_bundled(
        cls, device: str = "cpu", directory: str | Path | None = None, *, video: bool = False
    ) -> Pipeline:
        """The model shipped in ``nuwa/bundled/`` (or ``directory``), SHA-256-checked first:
        the image model (text-to-image, outpainting), or with ``video`` the video model
        (animation, text-to-video) over the same tokenizer.

        Raises :class:`~nuwa.bundle.BundleMissingError` while the bundle (or its video model)
        is not there.
        """
        paths, digests = bundle_files(directory)
        if video:
            if "video_model" not in paths:
                raise BundleMissingError(
                    f"the bundle in {directory or 'nuwa/bundled'} has no video model "
                    f"({BUNDLE_FILES['video_model']}); pass checkpoint= and tokenizer= instead"
                )
            paths["model"], digests["model"] = paths["video_model"], digests["video_model"]
        paths.pop("video_model", None), digests.pop("video_model", None)
        return cls._from_files(load_files(paths, device, digests))

    @classmethod
    def _from_files(cls, files: ModelFiles) -> Pipeline:
        return cls(
            files.model,
            files.tokenizer,
            files.pg_tokenizer,
            model_id=files.model_id,
            checkpoint_sha256=files.checkpoint_sha256,
        )

    def to(self, dtype: torch.dtype) -> Pipeline:
        """Cast the model and tokenizers to ``dtype`` in place; returns ``self``.

        In float32 the matmul summation order (thread count, CPU) moves logits and encoder
        latents in their last bits. With a QK-norm model that rarely matters (8 canvases came
        out identical on 1 and 2 threads, ``benchmarks.diagnostics.attention_health``); without
        QK-norm the logits of the earlier bundle reached ~28,000 and a flipped token was common.
        float64 makes the last bits agree as well, at many times the cost on a CPU.
        """
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"pipelines run in float32 or float64, not {dtype}")
        for module in (self.model, self.tokenizer, self.pg_tokenizer):
            if module is not None:
                module.to(dtype)
        return self

    @property
    def dtype(self) -> torch.dtype:
        """The float type the model and tokenizers compute in."""
        return next(self.model.parameters()).dtype

    # ------------------------------------------------------------ geometry

    @property
    def patch_px(self) -> int:
        """Pixels per patch side: the tokenizer's factor 16 x the model's patch size in tokens."""
        return self.layout.patch_pixels

    @property
    def text_conditioned(self) -> bool:
        """True when the model cross-attends to a text (T2I / outpainting / T2V models)."""
        return self.model.text is not None

    def grid(self, width: int, height: int, frames: int = 1) -> PatchGrid:
        """Patch grid of a canvas; ValueError if a side is not a multiple of :attr:`patch_px`."""
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        return self.layout.grid_for_pixels(height, width, frames)

    # ------------------------------------------------------------ tasks

    def unconditional(
        self, n: int, width: int, height: int, *, order: str | None = None, **opts
    ) -> Generation:
        """``n`` images uint8 ``[height, width, 3]`` from nothing (a text model gets "")."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        grid = self.grid(width, height)
        plan = self._plan(grid, order)
        texts = [""] * n if self.text_conditioned else None
        return self._generate(plan, n, texts, None, SamplerOptions(**opts)).first_frames()

    def text_to_image(
        self, texts: Sequence[str], width: int, height: int, *, order: str | None = None, **opts
    ) -> Generation:
        """One image uint8 ``[height, width, 3]`` per text (any size, e.g. 4096x1024)."""
        texts = self._texts(texts, None, task="text-to-image")
        plan = self._plan(self.grid(width, height), order)
        return self._generate(plan, len(texts), texts, None, SamplerOptions(**opts)).first_frames()

    def outpaint(
        self,
        images: Sequence[np.ndarray],
        *,
        direction: str,
        amount_px: int,
        texts: Sequence[str] | None = None,
        keep_input: bool = True,
        **opts,
    ) -> Generation:
        """Grow each uint8 ``[h, w, 3]`` image by ``amount_px`` on one side (or ``"all"``).

        The input is encoded, its patches pre-cached (paper Algorithm 2), and the rest generated
        in the direction's order (right: omega, left: omega*, down: zeta, up: zeta*, all: a
        spiral). With ``keep_input`` the given region holds the input's own pixels, faded into
        the decode over ``nuwa.outpainting.BLEND_PX`` at the boundary; without it, the decode of
        the given tokens (the raw model output). Returns images uint8 ``[H, W, 3]``, with the
        input's box (``given_region``) and the ``generated_mask``.
        """
        batch = _images(images, "outpainting")
        in_h, in_w = batch.shape[1:3]
        top, left, _, _ = given_region(direction, in_h, in_w, amount_px)
        self._check_outpaint_sizes(in_h, in_w, amount_px)
        side = self.patch_px
        height, width = canvas_size(direction, in_h, in_w, amount_px)
        grid = self.grid(width, height)
        tokens = torch.zeros(
            len(batch), 1, height // DOWNSAMPLE, width // DOWNSAMPLE, dtype=torch.long
        )
        ty, tx = top // DOWNSAMPLE, left // DOWNSAMPLE
        tokens[:, 0, ty : ty + in_h // DOWNSAMPLE, tx : tx + in_w // DOWNSAMPLE] = (
            self.tokenizer.encode(batch).cpu()
        )
        given = grid.region(
            rows=slice(top // side, (top + in_h) // side),
            cols=slice(left // side, (left + in_w) // side),
        )
        order = "spiral" if direction == "all" else DIRECTION_ORDERS[direction]
        plan = self._plan(grid, order, given)
        texts = self._texts(texts, len(batch), task="outpainting")
        result = self._generate(plan, len(batch), texts, tokens, SamplerOptions(**opts))
        result = replace(
            result.first_frames(),
            given_region=(top, left, in_h, in_w),
            generated_mask=generated_mask(direction, in_h, in_w, amount_px),
        )
        if not keep_input:
            return result
        pasted = [
            paste_input(out, image, direction, amount_px)
            for out, image in zip(result, batch, strict=True)
        ]
        return replace(result, outputs=pasted)

    def _check_outpaint_sizes(self, in_h: int, in_w: int, amount_px: int) -> None:
        """ValueError unless the input's sides and the amount are multiples of the patch size."""
        side = self.patch_px
        if in_h % side or in_w % side:
            raise ValueError(
                f"the input image is {in_w}x{in_h} px; outpainting needs both sides to be "
                f"multiples of the patch size {side} px (crop it to "
                f"{max(side, in_w // side * side)}x{max(side, in_h // side * side)})"
            )
        if amount_px <= 0 or amount_px % side:
            raise ValueError(
                f"amount_px={amount_px} is not a positive multiple of the patch size {side} px"
            )

    def animate(self, first_frames: Sequence[np.ndarray], frames: int, **opts) -> Generation:
        """Videos uint8 ``[frames, h, w, 3]`` continuing each uint8 ``[h, w, 3]`` first frame.

        Frame 0's tokens are the encoded image (pre-cached); the NCP slides in time past the
        model's temporal extent. With a PG-VQGAN, frame 0 decodes guided by the given image and
        each later frame by the one before it; without one, frames decode independently.
        """
        if frames < 2:
            raise ValueError(f"frames must be >= 2 (frame 0 is the given image), got {frames}")
        batch = _images(first_frames, "animation")
        h, w = batch.shape[1:3]
        grid = self.grid(w, h, frames)
        self._warn_if_no_time(frames)
        tokens = torch.zeros(len(batch), frames, h // DOWNSAMPLE, w // DOWNSAMPLE, dtype=torch.long)
        tokens[:, 0] = self.tokenizer.encode(batch).cpu()
        plan = self._plan(grid, None, grid.region(frames=slice(0, 1)))
        texts = [""] * len(batch) if self.text_conditioned else None
        guide = torch.from_numpy(batch) if self.pg_tokenizer is not None else None
        return self._generate(plan, len(batch), texts, tokens, SamplerOptions(**opts), guide)

    def text_to_video(
        self,
        texts: Sequence[str],
        frames: int,
        width: int,
        height: int,
        *,
        order: str | None = None,
        **opts,
    ) -> Generation:
        """One video uint8 ``[frames, height, width, 3]`` per text, of any length.

        Frame 0 decodes with the plain VQGAN, later frames with the PG-VQGAN (when given).
        """
        texts = self._texts(texts, None, task="text-to-video")
        grid = self.grid(width, height, frames)
        self._warn_if_no_time(frames)
        plan = self._plan(grid, order)
        return self._generate(plan, len(texts), texts, None, SamplerOptions(**opts))

    # ------------------------------------------------------------ shared machinery

    def _plan(self, grid: PatchGrid, order: str | None, given: Sequence[int] = ()) -> Plan:
        with warnings.catch_warnings():
            # A canvas narrower than the extent is an ordinary request: the context is then the
            # whole canvas, as it should be. The warning is for training plans (ablations).
            warnings.simplefilter("ignore", ExtentWarning)
            return make_plan(grid, self.model.extent, order or _auto_order(grid), given)

    def _texts(self, texts: Sequence[str] | None, batch: int | None, *, task: str):
        """Texts for ``sample``: a list of ``batch`` strings, or None for a model without text."""
        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, one per sample")
        if not self.text_conditioned:
            if texts is not None and any(texts):
                raise ValueError(
                    f"model {self.model_id} is not text-conditioned: run {task} without text"
                )
            return None
        texts = list(texts) if texts is not None else [""] * (batch or 0)
        if not texts:
            raise ValueError(f"{task} needs at least one text")
        if batch is not None and len(texts) != batch:
            raise ValueError(f"{len(texts)} texts for {batch} images: pass one text per image")
        return texts

    def _warn_if_no_time(self, frames: int) -> None:
        if frames > 1 and self.model.extent.f == 0:
            warnings.warn(
                f"model {self.model_id} has temporal extent 0 (an image model): each frame is "
                "generated without seeing the previous ones",
                stacklevel=3,
            )

    def _generate(
        self,
        plan: Plan,
        batch: int,
        texts: list[str] | None,
        given_tokens: torch.Tensor | None,
        opts: SamplerOptions,
        first_guide: torch.Tensor | None = None,
    ) -> Generation:
        """Run ``sample`` and stream its patches into a canvas; outputs uint8 ``[F, H, W, 3]``."""
        if opts.cfg_scale != 1.0 and not any(texts or ()):
            warnings.warn("cfg_scale has no effect without a text", stacklevel=3)
        tokens = given_tokens
        if tokens is None:
            tokens = torch.zeros(batch, *self.layout.token_shape(plan.grid), dtype=torch.long)
        canvas = StreamingCanvas(
            self.tokenizer,
            tokens,
            self.layout,
            plan.grid,
            plan.order[: plan.num_given],
            pg=self.pg_tokenizer if plan.grid.frames > 1 else None,
            first_guide=first_guide,
            memmap_over_bytes=self.memmap_over_bytes,
            memmap_dir=self.memmap_dir,
        )
        start = time.perf_counter()
        sampled = sample(
            self.model,
            plan,
            text=texts,
            given_tokens=given_tokens,
            batch_size=batch,
            options=opts if any(texts or ()) else replace(opts, cfg_scale=1.0),
            on_patch=canvas.add,
        )
        pixels = canvas.result()
        seconds = time.perf_counter() - start
        drawn = (plan.num_steps - plan.num_given) * self.layout.tokens_per_patch * batch
        stats = {
            "patches": plan.num_steps - plan.num_given,
            "tokens": drawn,
            "seconds": seconds,
            "tokens_per_s": drawn / seconds if seconds > 0 else float("inf"),
            "options": asdict(opts),
            **sampled.cost(),
        }
        return Generation(list(pixels), sampled.tokens.cpu(), plan, stats)


# ---------------------------------------------------------------- helpers


def _auto_order(grid: PatchGrid) -> str:
    """Scan along the shorter side, so the pool holds a few columns (rows) of the short side:
    omega (column by column) for wide canvases, zeta (row by row) for tall ones."""
    return "omega" if grid.rows <= grid.cols else "zeta"


def _images(images: Sequence[np.ndarray], task: str) -> np.ndarray:
    """A list of uint8 ``[h, w, 3]`` images of one size -> ``[B, h, w, 3]``."""
    images = list(images) if not isinstance(images, np.ndarray) or images.ndim == 4 else [images]
    if not images:
        raise ValueError(f"{task} needs at least one input image")
    for image in images:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"{task} input images must be uint8 [H, W, 3], got {image.dtype} "
                f"{list(image.shape)}"
            )
    shapes = {np.asarray(image).shape for image in images}
    if len(shapes) > 1:
        raise ValueError(f"{task} input images must share one size in a batch, got {shapes}")
    return np.ascontiguousarray(np.stack(images))
