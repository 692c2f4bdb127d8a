"""Where, when and with what a number was produced: time, git commit, library versions, paths."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

# The source checkout this package lives in (an editable install); paths inside it are stored
# relative to it so the table stays valid in every clone.
REPO_ROOT = Path(__file__).resolve().parents[1]

LIBRARIES = (
    "nuwa-infinity",
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "pillow",
    "torchmetrics",
    "clean-fid",
    "torch-fidelity",
    "open-clip-torch",
    "pandas",
    "safetensors",
)


def now_utc() -> str:
    """Current time as ISO 8601 UTC to the second, e.g. ``2025-01-31T12:00:00Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def git_commit(root: Path = REPO_ROOT) -> tuple[str, bool]:
    """(HEAD commit, whether the work tree has uncommitted changes); ("unknown", False) off git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return head, bool(status.strip())


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that can move a metric ("absent" when not installed)."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def portable_path(path: str | Path, base: Path | None = None) -> str:
    """``path`` (resolved against ``base`` when relative) as repo-relative POSIX text if inside
    the repository, else absolute; "" stays ""."""
    if not str(path):
        return ""
    resolved = Path(path)
    if not resolved.is_absolute():
        resolved = (base or Path.cwd()) / resolved
    resolved = resolved.resolve()
    try:
        return resolved.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return resolved.as_posix()


def resolve_repo_path(path: str) -> Path:
    """Inverse of ``portable_path``: a stored path as an absolute Path."""
    stored = Path(path)
    return stored if stored.is_absolute() else REPO_ROOT / stored
