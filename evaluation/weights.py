"""Pretrained weights: where each file may live locally, its expected hash, and the one explicit
download command. Nothing here downloads unless `fetch` is called (by `nuwa-eval weights fetch`).

Search order for a file: $NUWA_WEIGHTS_DIR, ~/.cache/nuwa-infinity/weights, then the caches the
original libraries already use (clean-fid's /tmp, torch hub checkpoints, open_clip's cache), so a
machine that ran clean-fid or pytorch-fid before needs no copying
($NUWA_WEIGHTS_LIBRARY_CACHES=0 turns the library caches off), and last the copy shipped inside
the package, for the networks the project trains itself. The first file found is hashed
*before* it is loaded; a mismatch is an error (never a silent fallback to another copy).
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from evaluation.errors import WeightsError
from nuwa.io import atomic_open

WEIGHTS_ENV = "NUWA_WEIGHTS_DIR"
LIBRARY_CACHES_ENV = "NUWA_WEIGHTS_LIBRARY_CACHES"  # "0": search only our own folders
DEFAULT_WEIGHTS_DIR = Path("~/.cache/nuwa-infinity/weights")


@dataclass(frozen=True)
class WeightsFile:
    """One pretrained file and everything known about its identity.

    sha256: full hex SHA-256, or None when no published value is known; then git_blob_sha1 (the
    SHA-1 git stores for the committed file) must be given, and is checked instead.
    hash_source: where the expected hash comes from (so a reader can judge it).
    library_paths: where the original libraries cache the same file ("~" and "{torch_hub}"
    expand).
    packaged: the copy inside this package, for weights the project trains and ships.
    """

    filename: str
    sha256: str | None
    size_bytes: int | None
    urls: tuple[str, ...]
    license: str
    hash_source: str
    git_blob_sha1: str | None = None
    library_paths: tuple[str, ...] = ()
    packaged: Path | None = None

    def __post_init__(self) -> None:
        if self.sha256 is None and self.git_blob_sha1 is None:
            raise ValueError(f"{self.filename}: a weights record needs sha256 or git_blob_sha1")

    @property
    def expected(self) -> str:
        """The hash that is checked, with its algorithm, e.g. "sha256:f58c…"."""
        if self.sha256:
            return f"sha256:{self.sha256}"
        return f"git-blob-sha1:{self.git_blob_sha1}"

    def candidates(self) -> list[Path]:
        """Every local path searched, in order."""
        roots = [Path(os.environ[WEIGHTS_ENV])] if os.environ.get(WEIGHTS_ENV) else []
        roots.append(DEFAULT_WEIGHTS_DIR.expanduser())
        paths = [root / self.filename for root in roots]
        if os.environ.get(LIBRARY_CACHES_ENV, "1") != "0":
            hub = torch.hub.get_dir()  # honours $TORCH_HOME
            paths += [Path(p.format(torch_hub=hub)).expanduser() for p in self.library_paths]
        if self.packaged is not None:
            paths.append(self.packaged)
        return paths

    def find(self) -> Path | None:
        """The first existing candidate path, unverified, or None."""
        return next((p for p in self.candidates() if p.is_file()), None)

    def resolve(self) -> Path:
        """Path of a local copy whose hash matches; raises WeightsError otherwise."""
        path = self.find()
        if path is None:
            target = self.candidates()[0]
            raise WeightsError(
                f"weights file {self.filename} not found; put it at {target} ({self.expected}) "
                f"or run `nuwa-eval weights fetch {self.filename}` on a machine with internet"
            )
        self.verify(path)
        return path

    def verify(self, path: Path) -> None:
        """Raise WeightsError unless ``path`` has the expected hash."""
        actual = file_hash(path, "sha256" if self.sha256 else "git-blob-sha1")
        wanted = self.sha256 or self.git_blob_sha1
        if actual != wanted:
            raise WeightsError(
                f"{path} has hash {actual[:16]}…, expected {self.expected[:24]}…; refusing to "
                f"load it (delete it and fetch {self.filename} again)"
            )


_hash_memo: dict[tuple[str, int, float, str], str] = {}


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file: "sha256", or "git-blob-sha1" (sha1 of b"blob <size>\\0" + bytes).

    Results are memoised per (path, size, mtime) so repeated loads in one process hash once.
    """
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime, algorithm)
    if key not in _hash_memo:
        digest = hashlib.sha256() if algorithm == "sha256" else hashlib.sha1()
        if algorithm == "git-blob-sha1":
            digest.update(f"blob {stat.st_size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        _hash_memo[key] = digest.hexdigest()
    return _hash_memo[key]


def fetch(record: WeightsFile, dest_dir: Path | None = None, timeout_s: float = 60.0) -> Path:
    """Download ``record`` into ``dest_dir`` (default: the first search root), verify its hash
    while streaming, and move it into place atomically. The only network access in the package.
    """
    dest_dir = dest_dir or record.candidates()[0].parent
    dest = Path(dest_dir) / record.filename
    existing = record.find()
    if existing is not None:
        record.verify(existing)
        return existing
    errors = []
    for url in record.urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response, atomic_open(dest) as f:
                digest = hashlib.sha256() if record.sha256 else hashlib.sha1()
                size = int(response.headers.get("Content-Length") or 0)
                if record.git_blob_sha1 and not record.sha256:
                    if not size:
                        raise WeightsError(
                            f"{url} sent no Content-Length; cannot verify a git blob hash"
                        )
                    digest.update(f"blob {size}\0".encode())
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    f.write(chunk)
                if digest.hexdigest() != (record.sha256 or record.git_blob_sha1):
                    raise WeightsError(
                        f"download from {url} has the wrong hash {digest.hexdigest()[:16]}…"
                    )
            return dest
        except (OSError, WeightsError) as error:  # URLError is an OSError
            errors.append(f"{url}: {error}")
    raise WeightsError(f"could not fetch {record.filename}: " + " | ".join(errors))
