"""Terminal and Markdown renderings of the comparison frame, and writing LEADERBOARD.md/index.html.

Every section is one (task, quantity): the paper's rows first, ours after, each of ours with its
delta against the paper row it reproduces or a label saying why there is none.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from nuwa.io import atomic_write_text

from .page import render_html
from .provenance import resolve_repo_path
from .schema import SCHEMA_VERSION
from .view import (
    HEADERS,
    LEGEND,
    NUMERIC,
    direction_text,
    metric_definitions,
    sample_grids,
    section_cells,
    sections,
)

PACKAGE_DIR = Path(__file__).resolve().parent


def _fixed_width(cells: list[list[str]]) -> list[str]:
    """Lines of a fixed-width table with ``HEADERS``; numbers right-aligned, text left-aligned."""
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]
    return [
        "  ".join(
            value.rjust(width) if header in NUMERIC else value.ljust(width)
            for value, width, header in zip(values, widths, HEADERS, strict=True)
        ).rstrip()
        for values in [HEADERS, *cells]
    ]


def render_text(frame: pd.DataFrame) -> str:
    """The terminal table: one fixed-width block per (task, quantity)."""
    if frame.empty:
        return "leaderboard is empty\n"
    blocks = []
    for task, title, better, group in sections(frame):
        lines = [f"== {task} · {title} ({direction_text(better)}) =="]
        lines += _fixed_width(section_cells(group))
        lines += [f"   metric id: {text}" for text in metric_definitions(group)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(frame: pd.DataFrame, out_dir: Path, summary: str) -> str:
    """LEADERBOARD.md: legend, then per task its sections and its sample-grid slot.

    Image links are relative to ``out_dir``. Bar charts are in index.html (GitHub strips SVG).
    """
    out = ["# NUWA-Infinity leaderboard", "", summary, "", LEGEND, ""]
    out += ["Bar charts and sample grids: [index.html](index.html).", ""]
    for task in frame["task"].drop_duplicates():
        out += [f"## {task}", ""]
        for _, title, better, group in (s for s in sections(frame) if s[0] == task):
            out += [f"### {title} ({direction_text(better)})", ""]
            align = ["---:" if header in NUMERIC else "---" for header in HEADERS]
            out += ["| " + " | ".join(HEADERS) + " |", "|" + "|".join(align) + "|"]
            out += ["| " + " | ".join(map(_md_cell, c)) + " |" for c in section_cells(group)]
            out += [""]
            ids = metric_definitions(group)
            out += [f"- metric id: `{text}`" for text in ids] + ([""] if ids else [])
        grids = sample_grids(frame, task)
        out += ["Sample grids:" if grids else "_No sample grid recorded for this task yet._", ""]
        for path, caption in grids:
            link = os.path.relpath(resolve_repo_path(path), out_dir)
            out += [f"![{_md_cell(caption)}]({Path(link).as_posix()})", f"_{caption}_", ""]
    return "\n".join(out).rstrip() + "\n"


def summary_line(n_rows: int, n_paper: int, table_name: str, table_sha256: str) -> str:
    """One provenance line for the renderings (content-derived, so re-rendering is stable)."""
    return (
        f"Rendered from `{table_name}` (schema v{SCHEMA_VERSION}, sha256 `{table_sha256[:16]}…`): "
        f"{n_rows} accepted rows, {n_paper} from the paper, {n_rows - n_paper} ours."
    )


def write_renderings(frame: pd.DataFrame, out_dir: Path, summary: str) -> tuple[Path, Path]:
    """Write ``out_dir``/LEADERBOARD.md and ``out_dir``/index.html atomically; returns both."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, page = out_dir / "LEADERBOARD.md", out_dir / "index.html"
    atomic_write_text(markdown, render_markdown(frame, out_dir, summary))
    atomic_write_text(page, render_html(frame, out_dir, summary))
    return markdown, page
