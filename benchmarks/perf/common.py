"""Shared pieces of the perf scripts: timers, timed sampling, run metadata, output files, plots.

Times are taken two ways: wall time and *process CPU time*. On a shared, loaded CPU the wall time
of a single-threaded run includes the time other jobs held the core, while its CPU time does not,
so the CPU scripts compute their ratios from CPU time (with ``--threads 1`` CPU time equals the
work done; with more threads it also counts OpenMP spin-waits). On CUDA they use wall time after a
device synchronise, since the work happens on the GPU.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from nuwa.adc import Extent, ExtentWarning, Plan, make_plan
from nuwa.checkpoint import git_commit
from nuwa.io import atomic_write_bytes, atomic_write_json
from nuwa.layout import PatchGrid
from nuwa.model import Nuwa, preset
from nuwa.sampling import SamplerOptions, sample

PROMPT = "a mountain lake under a cloudy sky"
DEFAULT_OUT = Path("outputs/perf")


@dataclass
class Stamp:
    """A point in time on both clocks (seconds)."""

    wall: float
    cpu: float

    @classmethod
    def now(cls, device: torch.device | str = "cpu") -> Stamp:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        return cls(time.perf_counter(), time.process_time())

    def __sub__(self, other: Stamp) -> Stamp:
        return Stamp(self.wall - other.wall, self.cpu - other.cpu)

    def seconds(self, device: torch.device | str) -> float:
        """The clock a ratio should use on ``device``: wall on CUDA, process CPU time on CPU."""
        return self.wall if torch.device(device).type == "cuda" else self.cpu


def timed(
    fn: Callable[[], object], repeats: int, device: torch.device | str = "cpu", rounds: int = 3
) -> Stamp:
    """Per-call time of ``fn``: the best of ``rounds`` rounds of ``repeats`` calls, after one
    warm-up call (best-of, because a shared machine only ever adds time)."""
    fn()
    best = Stamp(float("inf"), float("inf"))
    for _ in range(rounds):
        start = Stamp.now(device)
        for _ in range(repeats):
            fn()
        elapsed = Stamp.now(device) - start
        best = Stamp(min(best.wall, elapsed.wall / repeats), min(best.cpu, elapsed.cpu / repeats))
    return best


def per_patch(run: dict, first: int = 0) -> list[Stamp]:
    """Time of each patch from index ``first`` on, from a :func:`timed_sample` run."""
    stamps = [run["start"], *run["stamps"]]
    return [stamps[i + 1] - stamps[i] for i in range(first, len(stamps) - 1)]


def best(times: list[Stamp]) -> Stamp:
    """Fastest of ``times`` on each clock."""
    return Stamp(min(t.wall for t in times), min(t.cpu for t in times))


def mean(times: list[Stamp]) -> Stamp:
    """Mean of ``times`` on each clock."""
    return Stamp(sum(t.wall for t in times) / len(times), sum(t.cpu for t in times) / len(times))


def set_threads(threads: int | None) -> int:
    """Set torch's CPU threads when given; returns the count in use."""
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def build_model(name: str, device: str, seed: int = 0, **overrides) -> Nuwa:
    """A randomly initialised preset in eval mode (cost does not depend on the weights)."""
    torch.manual_seed(seed)
    return Nuwa(preset(name, **overrides)).to(device).eval()


def strip_plan(rows: int, cols: int, extent: Extent | tuple[int, int, int]) -> Plan:
    """The omega plan of a ``rows x cols`` canvas at ``extent`` (a model's).

    The extent reaching past a 1-row canvas is expected here, so its warning is silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtentWarning)
        return make_plan(PatchGrid(rows, cols), extent, "omega")


def timed_sample(
    model: Nuwa,
    plan: Plan,
    batch: int,
    top_k: int | None = 100,
    after_patch: Callable[[], None] | None = None,
) -> dict:
    """Sample ``plan`` once; returns per-patch end stamps (``stamps[i]`` after patch ``i``).

    ``after_patch()`` runs after each patch is stamped; ``top_k=None`` draws from every code.
    Decodes step by step (``benchmarks.perf.wavefront`` compares with waves). Returns
    ``{"start": Stamp, "stamps": [Stamp] * N, "sampled": sample()'s result}``.
    """
    device = model.tok_emb.weight.device
    text = [PROMPT] * batch if model.text is not None else None
    stamps: list[Stamp] = []

    def on_patch(patch: int, tokens: torch.Tensor) -> None:
        stamps.append(Stamp.now(device))
        if after_patch is not None:
            after_patch()

    start = Stamp.now(device)
    sampled = sample(
        model,
        plan,
        text=text,
        batch_size=batch,
        options=SamplerOptions(top_k=top_k, top_k_fraction=None, wavefront=False, progress=False),
        on_patch=on_patch,
    )
    return {"start": start, "stamps": stamps, "sampled": sampled}


def memory_kib() -> tuple[int, int]:
    """``(current RSS, peak RSS)`` of this process in KiB (Linux ``/proc``; else peak twice)."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
        )
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak //= 1024 if sys.platform == "darwin" else 1  # bytes on macOS, KiB on Linux
        return peak, peak


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_worker(module: str, spec: dict, threads: int | None) -> dict:
    """``python -m module --worker SPEC``: a script's ``measure(**spec)`` in a fresh interpreter,
    so its peak memory is this run's alone; returns the dict it printed as its last line."""
    command = [sys.executable, "-m", module, "--worker", json.dumps(spec)]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{module} worker {spec} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a script that runs each measurement in a :func:`run_worker` subprocess."""
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="default: bf16 on CUDA")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--in-process", action="store_true", help="no subprocess per run")
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT))
    parser.add_argument("--worker", help=argparse.SUPPRESS)


def worker_main(
    doc: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], object],
    measure: Callable[..., dict],
    argv: list[str] | None = None,
) -> None:
    """Entry point of a script with a :func:`run_worker` mode: ``--worker SPEC`` prints
    ``measure(**SPEC)`` as one JSON line; otherwise ``run(args)``."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker:
        set_threads(args.threads)
        print(json.dumps(measure(**json.loads(args.worker))))
        return
    run(args)


def run_info(args, device: str) -> dict:
    """Metadata every results file carries."""
    info = {
        "device": device,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "git_commit": git_commit(),
        "argv": {k: v for k, v in vars(args).items() if k != "func"},
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write_json(out_dir: str | Path, name: str, payload: dict) -> Path:
    """Atomically write ``payload`` as ``out_dir/name.json``; returns the path."""
    path = Path(out_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, payload)
    return path


def write_results(
    out_dir: str | Path, name: str, payload: dict, panels: list[dict], title: str
) -> Path:
    """``out_dir/name.json`` and its plot ``out_dir/name.png`` (see :func:`plot`); prints both."""
    path = write_json(out_dir, name, payload)
    plot(path.with_suffix(".png"), panels, title)
    print(f"wrote {path} and {path.with_suffix('.png')}")
    return path


def batch_panels(
    rows: list[dict], y: str, series: dict[str, str], ratio_y: str, ratio: tuple[str, str]
) -> list[dict]:
    """Two panels against batch size: ``series`` ({name: row key}) on log-log axes, then the
    ``ratio`` series (name, row key)."""
    batches = [r["batch"] for r in rows]

    def points(key: str) -> tuple[list, list]:
        return batches, [r[key] for r in rows]

    return [
        {
            "x": "batch",
            "y": y,
            "logx": True,
            "logy": True,
            "series": {label: points(key) for label, key in series.items()},
        },
        {"x": "batch", "y": ratio_y, "logx": True, "series": {ratio[0]: points(ratio[1])}},
    ]


def plot(
    path: str | Path,
    panels: list[dict],
    title: str,
) -> Path:
    """Write a PNG with one subplot per panel.

    Each panel: ``{"x": label, "y": label, "series": {name: (xs, ys)}, "logx": bool,
    "logy": bool}``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, ScalarFormatter

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for name, (xs, ys) in panel["series"].items():
            ax.plot(xs, ys, marker="o", label=name)
        if panel.get("logx"):
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted({x for xs, _ in panel["series"].values() for x in xs}))
            ax.xaxis.set_major_formatter(ScalarFormatter())
        if panel.get("logy"):
            ax.set_yscale("log")
            ys = [y for _, values in panel["series"].values() for y in values]
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            if max(ys) < 10 * min(ys):  # under a decade: label the minor ticks too
                ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
        ax.set_xlabel(panel["x"])
        ax.set_ylabel(panel["y"])
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, png.getvalue())
    return path
