"""One run's configuration: a task definition, resolved for a data source, plus run options.

``resolve_config`` picks the task's geometry profile (real data: the paper's canvas; the embedded
procedural set: a small canvas), applies the command-line options and then hydra-style
``key=value`` overrides, validated against the ``EvalConfig`` dataclass. Overrides of anything
that can change a number are recorded in the run's ``setting``, so such rows never pass for the
task's plain definition.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from benchmarks.tasks import Sampler, TaskError, TaskSpec
from evaluation import Region
from nuwa.outpainting import GROWTH, SIDES, generated_region, given_region
from nuwa.sampling import SamplerOptions

PROCEDURAL = "procedural"
# Options that do not change any value a run reports (which metrics are computed, on how many
# samples, where); every other override changes what is measured.
EXECUTION_KEYS = ("batch_size", "device", "dtype", "n", "metrics", "x4")
# Fields the task definition owns; overrides may not touch them.
FIXED_KEYS = ("task", "version", "kind")
# Float types a run may generate in. float64 makes the samples independent of thread count and CPU.
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Features:
    """Feature extractors: a registry name, or "auto" (the paper's weights when they are present
    locally, else the labelled surrogate; on the procedural set, image metrics use the landscape
    network), "paper", "surrogate", or "offline" (the landscape network for image metrics on the
    procedural set, the surrogates otherwise, whatever weights the machine has)."""

    image: str = "auto"
    clip: str = "auto"
    video: str = "auto"


@dataclass
class EvalConfig:
    """Everything a run depends on; stored in full in the results file."""

    task: str
    version: int
    kind: str
    data: str  # "procedural" or a path to real data
    profile: str  # "procedural" or "real"
    split: str
    canvas: list[int]  # [height, width] px of the evaluated canvas
    frames: int
    n: int
    batch_size: int
    seed: int
    direction: str | None
    keep_input: bool  # outpainting: the given region holds the input's pixels, not its decode
    text: bool
    x4: bool
    metrics: list[str]
    sampler: Sampler
    features: Features = field(default_factory=Features)
    device: str = "cpu"
    dtype: str = "float32"  # the pipeline's float type while generating (see DTYPES)
    overrides: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return self.canvas[0]

    @property
    def width(self) -> int:
        return self.canvas[1]

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return asdict(self)


def resolve_config(
    spec: TaskSpec,
    *,
    data: str,
    n: int | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    text: bool | None = None,
    x4: bool = False,
    features: str = "auto",
    overrides: list[str] | tuple[str, ...] = (),
) -> EvalConfig:
    """The run configuration of ``spec`` on ``data`` ("procedural" or a path), with the options
    given on the command line (``features`` sets every kind of extractor) and then
    ``overrides`` ("sampler.top_k=48", "canvas=[256,512]", "features.clip=surrogate")."""
    profile = PROCEDURAL if data == PROCEDURAL else "real"
    geometry = spec.profile(profile)
    metrics = list(spec.metrics) + (list(spec.x4_metrics) if x4 else [])
    metrics += list(spec.procedural_metrics) if profile == PROCEDURAL else []
    if x4 and not spec.x4_metrics:
        raise TaskError(f"{spec.label} has no x4 variant")
    base = EvalConfig(
        task=spec.name,
        version=spec.version,
        kind=spec.kind,
        data=data,
        profile=profile,
        split=spec.split,
        canvas=list(geometry.canvas),
        frames=geometry.frames,
        n=geometry.n if n is None else n,
        batch_size=batch_size,
        seed=spec.seed,
        direction=spec.direction,
        keep_input=spec.keep_input,
        text=spec.text if text is None else text,
        x4=x4,
        metrics=metrics,
        sampler=Sampler(**asdict(spec.sampler)),
        features=Features(features, features, features),
        device=device,
    )
    overrides = list(overrides)
    for item in overrides:
        key = item.partition("=")[0].strip()
        if "=" not in item or key.split(".")[0] in FIXED_KEYS + ("overrides", "profile"):
            raise TaskError(f"override {item!r} is not key=value on a run option")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(base), OmegaConf.from_dotlist(overrides))
        config: EvalConfig = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise TaskError(f"bad override: {str(err).splitlines()[0]}") from None
    config.overrides = overrides
    check_config(config, spec)
    return config


def check_config(config: EvalConfig, spec: TaskSpec) -> None:
    """Raise TaskError (one line) for a configuration that cannot run."""
    known = set(spec.metrics) | set(spec.x4_metrics) | set(spec.procedural_metrics)
    unknown = sorted(set(config.metrics) - known)
    if unknown:
        raise TaskError(f"{spec.label} has no metric {unknown}; it defines {sorted(known)}")
    if config.dtype not in DTYPES:
        raise TaskError(f"dtype must be one of {sorted(DTYPES)}; got {config.dtype!r}")
    if config.n < 1 or config.batch_size < 1:
        raise TaskError(f"n ({config.n}) and batch size ({config.batch_size}) must be positive")
    if len(config.canvas) != 2 or min(config.canvas) < 1:
        raise TaskError(f"canvas must be [height, width]; got {config.canvas}")
    try:
        SamplerOptions(**asdict(config.sampler))
    except ValueError as err:
        raise TaskError(f"sampler.{err}") from None
    if config.kind == "outpaint" and (config.height % 2 or config.width % 2):
        raise TaskError(f"canvas {config.canvas} does not split into two equal halves")


def changed_definition(config: EvalConfig) -> list[str]:
    """The overrides that change what is measured, other than execution options and feature
    extractors (which the metric ids and names already carry)."""
    keys = [o.partition("=")[0].strip() for o in config.overrides]
    return [
        o
        for o, key in zip(config.overrides, keys, strict=True)
        if key not in EXECUTION_KEYS and not key.startswith("features.")
    ]


def run_setting(config: EvalConfig) -> str:
    """The leaderboard ``setting`` of a run: the paper's variant name plus changed definitions."""
    parts = []
    if config.kind == "outpaint":
        parts.append("with text" if config.text else "without text")
    parts += changed_definition(config)
    return "; ".join(parts)


# --- outpainting geometry ------------------------------------------------------------------


def outpaint_regions(direction: str, height: int, width: int) -> tuple[Region, Region]:
    """(given, generated) pixel rectangles of a height x width outpainting canvas that grew by
    half its size towards ``direction`` (``nuwa.outpainting`` holds the geometry).

    "up" gives the lower half and generates the upper half (the paper's Up Extend), "right" gives
    the left half and generates the right half.
    """
    if direction not in SIDES:
        raise TaskError(f"direction {direction!r} is not one of {', '.join(SIDES)}")
    amount = generated_px(direction, height, width)
    grow_h, grow_w = GROWTH[direction]
    in_h, in_w = height - grow_h * amount, width - grow_w * amount
    given = Region(*given_region(direction, in_h, in_w, amount))
    return given, Region(*generated_region(direction, in_h, in_w, amount))


def generated_px(direction: str, height: int, width: int) -> int:
    """Pixels the canvas grows by (half its height for up/down, half its width for left/right)."""
    return height // 2 if direction in ("up", "down") else width // 2


def measured_region(config: EvalConfig) -> Region | None:
    """The rectangle a task measures: an outpainting's generated half (None: the whole canvas)."""
    if config.kind != "outpaint":
        return None
    return outpaint_regions(config.direction, config.height, config.width)[1]


def describe_measured(config: EvalConfig) -> str:
    """``"whole canvas"`` or ``"generated region [top, left, height, width]"``."""
    region = measured_region(config)
    return "whole canvas" if region is None else f"generated region {region.as_list()}"
