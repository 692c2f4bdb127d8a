"""Renderings: ours beside the paper's, deltas only where comparable, labels where not."""

from __future__ import annotations

import csv
import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from leaderboard import DEFAULT_TABLE
from leaderboard.cli import render_inputs
from leaderboard.page import render_html
from leaderboard.paper import PAPER_CSV, paper_rows
from leaderboard.render import PACKAGE_DIR, render_markdown, render_text, write_renderings
from leaderboard.results import rows_from_results, write_results
from leaderboard.testing import example_metric, example_results
from leaderboard.view import comparison_frame


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Paper rows plus two of ours: a surrogate/procedural run with a sample grid, and a
    paper-comparable run on a reproduced data set."""
    folder = tmp_path_factory.mktemp("run")
    Image.new("RGB", (48, 16), (90, 140, 200)).save(folder / "grid.png")
    surrogate = example_results([example_metric(143.25)], artifacts={"sample_grid": "grid.png"})
    write_results(folder / "surrogate.json", surrogate)
    comparable = example_results(
        [
            example_metric(
                8.53,
                name="Block-FID",
                metric_id="block_fid@1/inception_v3.tf2015@1/b256s256/generated/9f9f9f9f",
                features="inception_v3.tf2015.nvidia_ts@1",
                paper_comparable=True,
            )
        ],
        dataset="lhqc-repro-v1",
        setting="with text",
        paper_ref="table3/NUWA-Infinity/with text",
    )
    ours = rows_from_results(surrogate, folder / "surrogate.json")
    return paper_rows() + ours + rows_from_results(comparable)


def test_frame_pairs_ours_with_the_paper_row(rows):
    frame = comparison_frame(rows)
    ours = frame[frame["source"] == "ours"].set_index("dataset")
    comparable = ours.loc["lhqc-repro-v1"]
    assert comparable["paper_value"] == 7.43
    assert comparable["delta"] == pytest.approx(8.53 - 7.43)
    assert "worse than table3 NUWA-Infinity (with text)" in comparable["note"]
    assert "dataset: lhqc-repro-v1, paper: LHQC" in comparable["note"]
    surrogate = ours.loc["procedural-landscapes-v1"]
    assert surrogate["paper_value"] == 8.03 and surrogate["delta"] != surrogate["delta"]  # NaN
    assert surrogate["note"].startswith("NOT COMPARABLE to table3 NUWA-Infinity (without text)")
    assert "surrogate features" in surrogate["note"] and "procedural dataset" in surrogate["note"]


def test_text_shows_delta_and_label(rows):
    text = render_text(comparison_frame(rows))
    block = text.split("== lhqc_outpaint_up · Block-FID (lower is better) ==")[1].split("==")[0]
    assert re.search(r"ours .*lhqc-repro-v1 .* 8\.53 +\+1\.10 +worse than table3", block)
    assert re.search(r"ours .*procedural-landscapes-v1 .*143\.25 +NOT COMPARABLE", block)
    assert "metric id: Block-FID [surrogate Inception] = block_fid@1/" in block


def paper_records() -> list[dict[str, str]]:
    with open(PAPER_CSV, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def assert_paper_numbers_shown(markdown: str, page: str) -> None:
    """Every CSV record appears, verbatim, as a paper row under its own task's heading."""
    by_task = {chunk.split("\n", 1)[0]: chunk for chunk in markdown.split("\n## ")[1:]}
    for record in paper_records():
        dataset = "LHQ-V" if record["task"].startswith("lhqv") else "LHQC"
        line = (
            f"| paper | {record['table']} | {record['method']} | {record['setting']} | "
            f"{dataset} |  | {record['value']} |"
        )
        assert line in by_task[record["task"]], line
        assert f"<td>{record['method']}</td>" in page
        assert f'<td class="num">{record["value"]}</td>' in page


def test_markdown_and_html_contain_every_paper_number(rows, tmp_path):
    markdown_path, html_path = write_renderings(comparison_frame(rows), tmp_path, "summary")
    markdown, page = markdown_path.read_text(), html_path.read_text()
    assert_paper_numbers_shown(markdown, page)
    assert "NOT COMPARABLE to table3" in markdown and "| +1.10 |" in markdown
    assert "not comparable" in page and "+1.10" in page


def test_html_is_self_contained_with_charts_and_grid_slots(rows, tmp_path):
    _, html_path = write_renderings(comparison_frame(rows), tmp_path / "site", "summary")
    page = html_path.read_text()
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3', "")
    charts = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(charts) == len(comparison_frame(rows).groupby(["task", "metric_base"]))
    for chart in charts:
        ET.fromstring(chart)  # well-formed SVG
    assert re.search(r'<img src="[^"]*grid\.png"', page)  # the grid our run recorded
    assert page.count("No sample grid recorded for this task yet.") >= 1  # slots for the rest


def test_markdown_links_grid_relative_to_output(rows, tmp_path):
    markdown = render_markdown(comparison_frame(rows), tmp_path, "summary")
    (link,) = re.findall(r"!\[[^\]]*\]\(([^)]*grid\.png)\)", markdown)
    assert (tmp_path / link).resolve().exists()


def rendered_table(markdown: str, tmp_path) -> Path:
    """The table the committed renderings were made from. Runs only append rows (the README's
    main command adds three), so it is the prefix of today's table whose SHA-256 the renderings
    record; it is written to ``tmp_path`` under the table's own name."""
    (recorded,) = re.findall(r"sha256 `([0-9a-f]{16})…`", markdown)
    lines = DEFAULT_TABLE.read_bytes().splitlines(keepends=True)
    for end in range(len(lines), 0, -1):
        prefix = b"".join(lines[:end])
        if hashlib.sha256(prefix).hexdigest().startswith(recorded):
            (tmp_path / DEFAULT_TABLE.name).write_bytes(prefix)
            return tmp_path / DEFAULT_TABLE.name
    raise AssertionError("the table is not the one rendered plus appended rows: run render")


def test_committed_renderings_show_the_paper_rows_and_match_the_table(tmp_path):
    markdown = (PACKAGE_DIR / "LEADERBOARD.md").read_text()
    page = (PACKAGE_DIR / "index.html").read_text()
    assert_paper_numbers_shown(markdown, page)
    # what `nuwa-eval leaderboard render` writes from that table
    frame, summary = render_inputs(rendered_table(markdown, tmp_path))
    assert markdown == render_markdown(frame, PACKAGE_DIR, summary), "run leaderboard render"
    assert page == render_html(frame, PACKAGE_DIR, summary), "run leaderboard render"


def test_intervals_are_shown_where_present(rows, tmp_path):
    noisy = example_results(
        [example_metric(143.25, interval=(131.0, 158.9))], setting="bootstrap check"
    )
    frame = comparison_frame(rows + rows_from_results(noisy))
    text = render_text(frame)
    assert "95% interval" in text.splitlines()[1]
    assert re.search(r"bootstrap check .*143\.25 +\[131\.00, 158\.90\] +NOT COMPARABLE", text)
    markdown_path, html_path = write_renderings(frame, tmp_path, "summary")
    assert "| 143.25 | [131.00, 158.90] |  |" in markdown_path.read_text()
    page = html_path.read_text()
    assert '<td class="num">[131.00, 158.90]</td>' in page
    assert "143.25 [131.00, 158.90] · not comparable" in page
    whiskers = re.findall(r'<path d="M[^"]*" stroke="#111"', page)
    assert len(whiskers) == 1  # only the row with an interval; paper rows have none
    for chart in re.findall(r"<svg.*?</svg>", page, re.S):
        ET.fromstring(chart)
