"""Leaderboard row schema and results-JSON schema: round trips, versions, refusals."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leaderboard.paper import paper_rows
from leaderboard.results import load_results, rows_from_results, validate_results, write_results
from leaderboard.schema import (
    SCHEMA_VERSION,
    LeaderboardError,
    Row,
    check_row,
    row_from_json,
    row_to_json,
)
from leaderboard.table import DEFAULT_TABLE, load_table, validate_table, write_table
from leaderboard.testing import example_metric, example_results


@pytest.fixture(scope="module")
def results():
    return example_results([example_metric(143.25)], artifacts={"sample_grid": "grid.png"})


def our_row(results) -> Row:
    return rows_from_results(results)[0]


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


@settings(max_examples=40, deadline=None)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False, width=64),
    setting=text,
    protocol=text,
    model=text.filter(str.strip),
)
def test_row_json_round_trip(results, value, setting, protocol, model):
    row = dataclasses.replace(
        our_row(results), value=value, setting=setting, protocol=protocol, model=model
    )
    line = row_to_json(row)
    assert "\n" not in line
    assert row_from_json(line, "test") == row


def test_table_round_trip(tmp_path, results):
    rows = [our_row(results), dataclasses.replace(our_row(results), setting="with text")]
    write_table(tmp_path / "t.jsonl", rows)
    assert load_table(tmp_path / "t.jsonl") == rows
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    assert all(json.loads(line)["schema_version"] == SCHEMA_VERSION for line in lines)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": SCHEMA_VERSION + 1}, "newer than this code"),
        ({"schema_version": 0}, "not supported"),
        ({"surprise": 1}, "unknown fields ['surprise']"),
        ({"value": float("nan")}, "not finite"),
        ({"better": "up"}, "better must be"),
        ({"checkpoint_sha256": "abc"}, "64 lowercase hex"),
        ({"created": "yesterday"}, "ISO 8601"),
        ({"task_version": None}, "task_version must be an integer"),
        ({"metric_id": "paper:block_fid"}, "reserved for the paper"),
        ({"paper_comparable": True}, "never go into a paper-comparable column"),
        ({"ci_low": 1.0}, "must be numbers together"),
        ({"ci_low": 3.0, "ci_high": 2.0, "ci_level": 0.95}, "ci_low 3.0 is above ci_high 2.0"),
        ({"ci_low": 1.0, "ci_high": 2.0, "ci_level": 95}, "ci_level 95 is not in"),
        ({"ci_low": float("-inf"), "ci_high": 2.0, "ci_level": 0.95}, "is not finite"),
    ],
)
def test_bad_rows_are_refused(results, change, message):
    obj = {**dataclasses.asdict(our_row(results)), **change}
    with pytest.raises(LeaderboardError, match=message.replace("[", r"\[").replace("]", r"\]")):
        row_from_json(json.dumps(obj), "line 1")


def test_comparable_flag_refused_for_procedural_data_even_with_real_features(results):
    real_features = example_metric(
        7.0, name="Block-FID", metric_id="block_fid@1/tf2015/x", features="tf2015@1"
    )
    real_features["paper_comparable"] = True
    with pytest.raises(LeaderboardError, match="procedural dataset"):
        example_results([real_features])
    allowed = example_results([real_features], dataset="lhqc-repro-v1")
    assert rows_from_results(allowed)[0].paper_comparable


def test_results_schema_accepts_the_example_and_fills_provenance(results):
    assert validate_results(results) is results
    assert results["env"]["torch"] not in ("", "absent")
    assert results["git_commit"] == "unknown" or len(results["git_commit"]) == 40
    assert results["created"].endswith("Z")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("task", "version"), "1", r"results\.task\.version is str"),
        (("model", "checkpoint_sha256"), "0" * 63, "checkpoint_sha256 must be 64"),
        (("metrics", 0, "better"), "more", r"results\.metrics\[0\]\.better is 'more'"),
        (("metrics", 0, "value"), float("inf"), "not finite"),
        (("metrics", 0, "paper_comparable"), "no", r"metrics\[0\]\.paper_comparable is str"),
        (("seeds", "torch"), 0.5, r"results\.seeds\.torch is float"),
        (("n_samples", "effective"), 9, "effective <= requested"),
        (("wall_time_s", "total"), -1.0, "wall_time_s"),
        (("schema_version",), 2, "schema_version 2 is not supported"),
        (("schema",), "lm-eval", "results.schema is 'lm-eval'"),
    ],
)
def test_results_schema_refusals_name_the_field(results, path, value, message):
    broken = copy.deepcopy(results)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(LeaderboardError, match=message):
        validate_results(broken)


def test_results_refuse_missing_unknown_and_repeated(results):
    missing = copy.deepcopy(results)
    del missing["seeds"]
    with pytest.raises(LeaderboardError, match=r"missing fields \['seeds'\]"):
        validate_results(missing)
    unknown = copy.deepcopy(results)
    unknown["dataset"]["colour"] = "blue"
    with pytest.raises(LeaderboardError, match=r"results\.dataset: .*unknown fields \['colour'\]"):
        validate_results(unknown)
    repeated = copy.deepcopy(results)
    repeated["metrics"].append(copy.deepcopy(repeated["metrics"][0]))
    with pytest.raises(LeaderboardError, match="repeats a metric id"):
        validate_results(repeated)


def test_optional_metric_fields(results):
    extended = copy.deepcopy(results)
    extended["metrics"][0].update(stderr=None, per_seed=[143.0, 143.5])
    validate_results(extended)
    extended["metrics"][0]["per_seed"] = ["a"]
    with pytest.raises(LeaderboardError, match=r"per_seed\[0\] is str"):
        validate_results(extended)


def test_metric_intervals_are_validated_and_become_row_fields(results):
    with_interval = example_results([example_metric(143.25, interval=(131.0, 158.9))])
    (row,) = rows_from_results(with_interval)
    assert (row.ci_low, row.ci_high, row.ci_level) == (131.0, 158.9, 0.95) and row.has_interval
    assert row_from_json(row_to_json(row), "test") == row
    line = json.loads(row_to_json(row))
    assert list(line)[-4:] == ["ci_low", "ci_high", "ci_level", "schema_version"]
    none = copy.deepcopy(results)
    none["metrics"][0].update(interval=None, no_interval="n=4 < 8")
    (row,) = rows_from_results(validate_results(none))
    assert not row.has_interval and row.ci_level is None
    for change, message in (
        ({"low": 170.0}, r"metrics\[0\]\.interval needs finite low <= high"),
        ({"level": 1.5}, r"interval\.level 1\.5 is not in \(0, 1\)"),
        ({"seed": "zero"}, r"interval\.seed is str"),
        ({"method": None}, r"interval\.method is NoneType"),
    ):
        broken = copy.deepcopy(with_interval)
        broken["metrics"][0]["interval"].update(change)
        with pytest.raises(LeaderboardError, match=message):
            validate_results(broken)
    missing = copy.deepcopy(with_interval)
    del missing["metrics"][0]["interval"]["high"]
    with pytest.raises(LeaderboardError, match=r"interval: missing fields \['high'\]"):
        validate_results(missing)


def test_rows_without_interval_stay_valid_and_byte_identical():
    """Most of the committed table predates intervals: every line loads, validates and is
    written back unchanged (no interval keys are added to rows without one)."""
    lines = DEFAULT_TABLE.read_text(encoding="utf-8").splitlines()
    rows = load_table(DEFAULT_TABLE)
    validate_table(rows)
    assert any(not row.has_interval for row in rows) and any(row.has_interval for row in rows)
    assert [row_to_json(row) for row in rows] == lines


def test_paper_rows_carry_no_interval():
    paper = paper_rows()[0]
    with pytest.raises(LeaderboardError, match="paper rows carry no interval"):
        check_row(dataclasses.replace(paper, ci_low=1.0, ci_high=2.0, ci_level=0.95))


def test_results_file_round_trip_and_rows(tmp_path, results):
    path = tmp_path / "runs" / "up.json"
    write_results(path, results)
    assert load_results(path) == results
    (row,) = rows_from_results(load_results(path), path)
    assert (row.task_label, row.metric_id, row.value) == (
        "lhqc_outpaint_up@1",
        results["metrics"][0]["id"],
        143.25,
    )
    assert row.source == "ours" and not row.paper_comparable
    assert row.n_samples == 8 and row.setting == "without text"
    assert row.results_file == str(path.resolve()) or row.results_file.endswith("runs/up.json")
    assert row.sample_grid.endswith("runs/grid.png")  # relative to the results file's folder
    path.write_text("{not json")
    with pytest.raises(LeaderboardError, match="cannot read results"):
        load_results(path)
