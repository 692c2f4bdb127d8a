"""The task registry: versioned benchmark definitions, one YAML file per task (lm-eval style).

A task (``lhqc_outpaint_up@1``) fixes what is measured: the data and split, the canvas and
sample count on real data and on the embedded procedural set, which region is given and which
generated, the metrics, the seed and the sampler. Any change that can move a number bumps
``version`` and adds a ``changelog`` line; tests pin each definition's hash per version.

    spec = get_task("lhqc_outpaint_up")          # or "lhqc_outpaint_up@1"
    spec.profile("procedural").canvas            # [512, 512]

A file may ``include`` another (relative path); the including file's keys win.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nuwa.errors import UserError
from nuwa.outpainting import SIDES
from nuwa.sampling import PAPER_TOP_K_FRACTION

TASK_DIR = Path(__file__).resolve().parent
KINDS = ("outpaint", "t2i", "animate", "t2v")
DIRECTIONS = SIDES
PROFILES = ("real", "procedural")


class TaskError(UserError, ValueError):
    """An unknown task, a bad task file or a bad override; the message is one line."""


@dataclass
class Geometry:
    """What one data profile evaluates: canvas [height, width] in px, sample count, frames."""

    canvas: list[int]
    n: int
    frames: int = 1


@dataclass
class Sampler:
    """Sampler options passed to every pipeline call (None: no filtering of that kind).

    ``top_k_fraction`` keeps that fraction of the model's codebook when ``top_k`` is None (the
    paper's 768/16384 keeps 48 of the bundled model's 1024 codes)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_k_fraction: float | None = PAPER_TOP_K_FRACTION
    top_p: float | None = None
    cfg_scale: float = 1.0


@dataclass
class TaskSpec:
    """One versioned task definition (see the YAML files beside this module).

    ``real`` is the geometry on real data (the paper's), ``procedural`` the one on the embedded
    set; ``procedural_metrics`` need the generator's captions or the network trained on its
    scenes, so they run there only. ``paper_*`` name the paper table, method and data set it
    reproduces ("" if none).
    """

    name: str
    version: int
    kind: str
    description: str
    paper_table: str
    paper_method: str
    paper_data: str
    split: str
    real: Geometry
    procedural: Geometry
    metrics: list[str]
    x4_metrics: list[str] = field(default_factory=list)
    procedural_metrics: list[str] = field(default_factory=list)  # on the procedural set only
    direction: str | None = None
    keep_input: bool = True  # outpainting: input pixels in the given region, not their decode
    text: bool = False
    seed: int = 0
    sampler: Sampler = field(default_factory=Sampler)
    changelog: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def profile(self, which: str) -> Geometry:
        """The geometry for ``"real"`` or ``"procedural"`` data."""
        if which not in PROFILES:
            raise TaskError(f"profile {which!r} unknown; use one of {PROFILES}")
        return self.real if which == "real" else self.procedural

    def digest(self) -> str:
        """SHA-256 of the definition (every field): tests pin it per version. An empty
        ``procedural_metrics`` is left out, so definitions older than that field keep their hash."""
        definition = asdict(self)
        if not definition["procedural_metrics"]:
            del definition["procedural_metrics"]
        text = OmegaConf.to_yaml(OmegaConf.create(definition), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self) -> dict:
        """Plain JSON-able dict (recorded in results files)."""
        return asdict(self)


def _check(spec: TaskSpec, where: str) -> TaskSpec:
    problems = []
    if spec.kind not in KINDS:
        problems.append(f"kind {spec.kind!r} is not one of {KINDS}")
    if spec.version < 1:
        problems.append("version must be >= 1")
    if (spec.kind == "outpaint") != (spec.direction in DIRECTIONS):
        problems.append(f"direction {spec.direction!r} fits kind {spec.kind!r} only if outpaint")
    for name in PROFILES:
        geometry = spec.profile(name)
        height, width = geometry.canvas
        if len(geometry.canvas) != 2 or min(height, width, geometry.n, geometry.frames) < 1:
            problems.append(f"{name}: canvas [height, width], n and frames must be positive")
        if spec.kind == "outpaint" and (height % 2 or width % 2):
            problems.append(f"{name}: an outpainting canvas must split into two equal halves")
    if not spec.changelog:
        problems.append("changelog is empty; say what version 1 is")
    if problems:
        raise TaskError(f"{where}: " + "; ".join(problems))
    return spec


def _load_yaml(path: Path, seen: tuple[Path, ...] = ()):
    if path in seen:
        raise TaskError(f"{path}: include cycle")
    try:
        node = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException) as err:
        raise TaskError(f"{path}: cannot read task file ({err})") from None
    include = node.pop("include", None)
    if include is None:
        return node
    return OmegaConf.merge(_load_yaml(path.parent / include, (*seen, path)), node)


def load_task_file(path: str | Path) -> TaskSpec:
    """Read and check one task YAML (resolving ``include``)."""
    path = Path(path)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TaskSpec), _load_yaml(path))
        spec = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise TaskError(f"{path.name}: {str(err).splitlines()[0]}") from None
    if path.stem != spec.name:
        raise TaskError(f"{path}: file name and task name {spec.name!r} differ")
    return _check(spec, path.name)


@cache
def _registry() -> dict[str, TaskSpec]:
    return {
        path.stem: load_task_file(path)
        for path in sorted(TASK_DIR.glob("*.yaml"))
        if not path.name.startswith("_")
    }


def list_tasks() -> list[TaskSpec]:
    """Every registered task, sorted by name."""
    return list(_registry().values())


def get_task(name: str) -> TaskSpec:
    """The task ``name`` or ``name@version`` (the version must be the registered one)."""
    base, _, version = name.partition("@")
    spec = _registry().get(base)
    if spec is None:
        raise TaskError(f"unknown task {base!r}; known: {', '.join(sorted(_registry()))}")
    if version and version != str(spec.version):
        raise TaskError(
            f"{name}: this code defines {spec.label}; check out the commit that defined "
            f"version {version} to run it"
        )
    return spec


__all__ = [
    "DIRECTIONS",
    "KINDS",
    "Geometry",
    "Sampler",
    "TaskError",
    "TaskSpec",
    "get_task",
    "list_tasks",
    "load_task_file",
]
