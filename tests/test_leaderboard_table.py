"""The table file: concurrent appends, column rules, the paper import, accepted rows."""

from __future__ import annotations

import csv
import dataclasses
import subprocess
import sys
import textwrap
import time

import pytest

from leaderboard.paper import PAPER_CSV, PAPER_CSV_SHA256, import_paper, paper_rows
from leaderboard.results import rows_from_results
from leaderboard.schema import LeaderboardError
from leaderboard.table import (
    DEFAULT_TABLE,
    accepted_rows,
    append_rows,
    load_table,
    validate_table,
)
from leaderboard.testing import example_metric, example_results
from nuwa.io import sha256_file


@pytest.fixture(scope="module")
def base_row():
    return rows_from_results(example_results([example_metric(143.25)]))[0]


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "leaderboard.jsonl"
    import_paper(path)
    return path


WORKER = textwrap.dedent(
    """
    import dataclasses, pathlib, sys, time
    from leaderboard.results import rows_from_results
    from leaderboard.table import append_rows
    from leaderboard.testing import example_metric, example_results
    table, worker, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), pathlib.Path(sys.argv[4])
    base = rows_from_results(example_results([example_metric(1.0)]))[0]
    while not go.exists():
        time.sleep(0.005)
    for i in range(n):
        row = dataclasses.replace(base, value=float(i), setting=f"worker {worker} run {i}")
        append_rows([row], table)
    """
)


def test_concurrent_appends_lose_no_row(table, tmp_path):
    go, n_workers, n_rows = tmp_path / "go", 4, 15
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(table), str(w), str(n_rows), str(go)])
        for w in range(n_workers)
    ]
    time.sleep(1.5)  # let every worker finish importing, so their appends overlap
    go.touch()
    assert [worker.wait(timeout=120) for worker in workers] == [0] * n_workers
    rows = load_table(table)
    ours = sorted(row.setting for row in rows if row.source == "ours")
    expected = sorted(f"worker {w} run {i}" for w in range(n_workers) for i in range(n_rows))
    assert ours == expected
    assert len(rows) == 55 + n_workers * n_rows
    validate_table(rows)


def test_append_skips_verbatim_duplicates_and_keeps_history(table, base_row):
    assert append_rows([base_row], table) == 1
    assert append_rows([base_row], table) == 0
    newer = dataclasses.replace(base_row, value=150.0, created="2100-01-01T00:00:00Z")
    assert append_rows([newer], table) == 1
    rows = load_table(table)
    assert [row.value for row in rows if row.source == "ours"] == [143.25, 150.0]
    assert [row.value for row in accepted_rows(rows) if row.source == "ours"] == [150.0]


def test_mixed_metric_ids_in_one_column_are_refused(table, base_row):
    append_rows([base_row], table)
    before = table.read_bytes()
    changed = dataclasses.replace(base_row, metric_id=base_row.metric_id + "-v2", setting="x")
    with pytest.raises(LeaderboardError, match="mixes metric ids"):
        append_rows([changed], table)
    assert table.read_bytes() == before  # a refused append writes nothing
    renamed = dataclasses.replace(changed, metric="Block-FID [surrogate Inception, v2]")
    assert append_rows([renamed], table) == 1


def test_one_metric_id_cannot_mean_two_things(base_row):
    with pytest.raises(LeaderboardError, match="shown under two names"):
        validate_table([base_row, dataclasses.replace(base_row, metric="Other", setting="x")])
    with pytest.raises(LeaderboardError, match="measures block_fid"):
        validate_table([base_row, dataclasses.replace(base_row, metric_base="swd", setting="x")])


def test_non_comparable_row_refused_in_a_comparable_column(base_row):
    comparable = dataclasses.replace(
        base_row,
        metric="Block-FID",
        metric_id="block_fid@1/tf2015/x",
        features="inception_v3.tf2015@1",
        dataset="lhqc-repro-v1",
        paper_comparable=True,
    )
    protocol_differs = dataclasses.replace(comparable, paper_comparable=False, setting="x")
    with pytest.raises(LeaderboardError, match="is not paper-comparable but its column"):
        validate_table([comparable, protocol_differs])
    validate_table([comparable, dataclasses.replace(protocol_differs, dataset="other-set")])


def test_paper_ref_must_name_one_paper_row(base_row):
    papers = paper_rows()
    validate_table(papers + [base_row])
    ambiguous = dataclasses.replace(base_row, paper_ref="table3/NUWA-Infinity")
    with pytest.raises(LeaderboardError, match="matches 2 paper rows"):
        validate_table(papers + [ambiguous])


def test_paper_rows_match_the_csv_exactly():
    assert sha256_file(PAPER_CSV) == PAPER_CSV_SHA256
    with open(PAPER_CSV, newline="", encoding="utf-8") as f:
        records = list(csv.DictReader(f))
    committed = [row for row in load_table(DEFAULT_TABLE) if row.source == "paper"]
    for rows in (paper_rows(), committed):
        assert len(rows) == len(records) == 55
        for row, record in zip(rows, records, strict=True):
            assert (row.task, row.model, row.setting, row.metric_base, row.better) == (
                record["task"],
                record["method"],
                record["setting"],
                record["metric"],
                record["better"],
            )
            assert row.value == float(record["value"])
            assert row.paper_ref == f"{record['table']}/{record['method']}/{record['setting']}"
            assert row.metric_id == f"paper:{record['metric']}" and row.paper_comparable
            assert row.protocol == "as reported in arXiv 2207.09814 Tables 2–6"
            assert row.task_version is None and row.dataset in ("LHQC", "LHQ-V")


def test_import_paper_is_idempotent_and_keeps_our_rows(table, base_row):
    append_rows([base_row], table)
    before = table.read_bytes()
    assert import_paper(table) == 0
    assert table.read_bytes() == before
    assert sum(row.source == "ours" for row in load_table(table)) == 1


def test_tampered_paper_csv_is_refused(tmp_path):
    copy = tmp_path / "paper.csv"
    copy.write_text(PAPER_CSV.read_text().replace("9.71", "9.70", 1))
    with pytest.raises(LeaderboardError, match="not the pinned"):
        import_paper(tmp_path / "t.jsonl", copy)
