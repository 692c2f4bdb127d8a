"""index.html: one self-contained page (inline CSS and SVG bar charts, no scripts, no CDN).

SVG is written by hand because a bar chart is a handful of <rect>s; pulling in matplotlib for it
would add a heavy dependency and non-deterministic output (its SVGs embed ids and dates).
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

import pandas as pd

from .provenance import resolve_repo_path
from .view import (
    HEADERS,
    LEGEND,
    NUMERIC,
    direction_text,
    format_interval,
    format_value,
    metric_definitions,
    sample_grids,
    section_cells,
    sections,
)

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #111; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.paper td { color: #444; }
tr.ours td { background: #f5f8ff; }
tr.ours.noncomparable td { background: #fff7e6; }
.note { font-size: 12px; color: #555; }
code { font-size: 12px; }
figure { display: inline-block; margin: .5em 1em .5em 0; }
figure img { max-width: 560px; border: 1px solid #ccc; }
.slot { border: 1px dashed #bbb; padding: .6em 1em; color: #777; display: inline-block; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }
"""
PAPER_COLOR, OURS_COLOR, NONCOMPARABLE_COLOR = "#9ca3af", "#2563eb", "#f59e0b"
CHART_WIDTH, LABEL_WIDTH, VALUE_WIDTH, ROW_HEIGHT = 980, 400, 170, 20


def _bar_label(row) -> str:
    setting = f" ({row.setting})" if row.setting else ""
    if row.source == "paper":
        return f"{row.ref} · {row.model}{setting}"
    return f"ours{row.ref} · {row.model}{setting} · {row.dataset}"


def _is_noncomparable(row) -> bool:
    return row.source == "ours" and not row.paper_comparable


def bar_chart(group: pd.DataFrame, chart_id: str) -> str:
    """An inline SVG with one horizontal bar per row of a section.

    Paper bars are grey, comparable bars of ours blue, non-comparable bars of ours hatched orange
    and labelled "not comparable". The axis is scaled to the comparable rows, so a surrogate or
    procedural-set number cannot squash the paper's bars; a longer bar is cut at the edge and
    marked "»". A row with a bootstrap interval gets a whisker from its low to its high end (cut
    at the axis too). Every bar has a tooltip with its full label, interval and note.
    """
    rows = list(group.itertuples())
    comparable = [abs(row.value) for row in rows if not _is_noncomparable(row)]
    scale = max(comparable or [abs(row.value) for row in rows]) or 1.0
    bar_space = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    hatch = f"hatch-{chart_id}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" '
        f'height="{ROW_HEIGHT * len(rows) + 6}" role="img" aria-label="bar chart">',
        f'<defs><pattern id="{hatch}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fde7bd"/>'
        f'<rect width="3" height="6" fill="{NONCOMPARABLE_COLOR}"/></pattern></defs>',
    ]
    for index, row in enumerate(rows):
        y = index * ROW_HEIGHT + 3
        label = _bar_label(row)
        short = label if len(label) <= 64 else label[:63] + "…"
        fill = PAPER_COLOR if row.source == "paper" else OURS_COLOR
        interval = format_interval(row.ci_low, row.ci_high, row.ci_level)
        value_text = " ".join(filter(None, [format_value(row.value), interval]))
        if _is_noncomparable(row):
            fill, value_text = f"url(#{hatch})", f"{value_text} · not comparable"
        fraction = abs(row.value) / scale
        if fraction > 1:
            fraction, value_text = 1.0, f"» {value_text}"
        width = max(bar_space * fraction, 1.0)
        text_x = LABEL_WIDTH + width + 4
        tooltip = escape(f"{label}: {format_value(row.value)} {interval}  {row.note}".rstrip())
        parts += [
            f"<g><title>{tooltip}</title>",
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 12}" font-size="11" text-anchor="end">'
            f"{escape(short)}</text>",
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="14" fill="{fill}"/>',
        ]
        if interval:
            low, high = (
                LABEL_WIDTH + bar_space * min(max(end / scale, 0.0), 1.0)
                for end in (row.ci_low, row.ci_high)
            )
            parts.append(
                f'<path d="M{low:.1f} {y + 7}H{high:.1f}M{low:.1f} {y + 3}V{y + 11}'
                f'M{high:.1f} {y + 3}V{y + 11}" stroke="#111" stroke-width="1"/>'
            )
            text_x = max(text_x, high + 4)
        parts.append(
            f'<text x="{text_x:.1f}" y="{y + 12}" font-size="11">{escape(value_text)}</text></g>'
        )
    return "\n".join(parts + ["</svg>"])


def _table(group: pd.DataFrame) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADERS)
    body = []
    for row, cells in zip(group.itertuples(), section_cells(group), strict=True):
        css = row.source + (" noncomparable" if _is_noncomparable(row) else "")
        tds = []
        for header, cell in zip(HEADERS, cells, strict=True):
            klass = ' class="num"' if header in NUMERIC else ""
            klass = ' class="note"' if header == "note" else klass
            tds.append(f"<td{klass}>{escape(cell)}</td>")
        title = f' title="{escape(row.protocol)}"' if row.protocol else ""
        body.append(f'<tr class="{css}"{title}>{"".join(tds)}</tr>')
    rows = "\n".join(body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table>"


def _grids(frame: pd.DataFrame, task: str, out_dir: Path) -> str:
    grids = sample_grids(frame, task)
    if not grids:
        return '<p class="slot">No sample grid recorded for this task yet.</p>'
    figures = []
    for path, caption in grids:
        target = resolve_repo_path(path)
        if target.exists():
            src = Path(os.path.relpath(target, out_dir)).as_posix()
            body = f'<img src="{escape(src)}" alt="{escape(caption)}" loading="lazy">'
        else:
            body = f'<p class="slot">sample grid missing: {escape(path)}</p>'
        figures.append(f"<figure>{body}<figcaption>{escape(caption)}</figcaption></figure>")
    return "".join(figures)


def render_html(frame: pd.DataFrame, out_dir: Path, summary: str) -> str:
    """The whole page: summary, legend, then per task its tables, bar charts and sample grids."""
    legend = (
        f'<p class="legend">Bars:<span style="background:{PAPER_COLOR}"></span>paper'
        f'<span style="background:{OURS_COLOR}"></span>ours, paper-comparable'
        f'<span style="background:{NONCOMPARABLE_COLOR}"></span>ours, not comparable</p>'
    )
    tasks = list(frame["task"].drop_duplicates()) if not frame.empty else []
    body = [
        "<h1>NUWA-Infinity leaderboard</h1>",
        f"<p>{escape(summary.replace('`', ''))}</p>",
        f"<p>{escape(LEGEND.replace('`', ''))}</p>",
        legend,
        "<nav>" + " · ".join(f'<a href="#{escape(t)}">{escape(t)}</a>' for t in tasks) + "</nav>",
    ]
    all_sections = sections(frame) if not frame.empty else []
    for task in tasks:
        body.append(f'<section id="{escape(task)}"><h2>{escape(task)}</h2>')
        for index, (name, title, better, group) in enumerate(all_sections):
            if name != task:
                continue
            body.append(f"<h3>{escape(title)} ({direction_text(better)})</h3>")
            body.append(_table(group))
            body.append(bar_chart(group, f"{index}"))
            ids = metric_definitions(group)
            if ids:
                items = "".join(f"<li><code>{escape(text)}</code></li>" for text in ids)
                body.append(f'<ul class="note">{items}</ul>')
        body.append("<h3>Sample grids</h3>" + _grids(frame, task, out_dir) + "</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>NUWA-Infinity leaderboard</title>"
        f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
