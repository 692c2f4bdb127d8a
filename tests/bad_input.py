"""Helpers for the bad-input tables: the one-line error contract and "no user file changed"."""

from __future__ import annotations

import hashlib
from pathlib import Path


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder``."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def assert_one_line_error(code: int, stderr: str, prog: str, *fragments: str) -> str:
    """Exit status 2 and a single ``<prog>: error: ...`` line holding every fragment."""
    assert code == 2 and "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and ": warning: " not in line]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
