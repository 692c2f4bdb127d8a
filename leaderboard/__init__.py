"""The versioned results table: ours beside the paper's numbers, validated, rendered, regressed.

Harness side::

    results = build_results(task=..., model=..., dataset=..., metrics=[...], ...)
    write_results(path, results)
    append_rows(rows_from_results(results, path))          # locked, atomic
    verdicts = judge_run(results, load_table(), fallback={"block_fid": Tolerance(0.5)})
    print(format_verdicts(verdicts))                       # a regression fails its rule
"""

from .paper import import_paper, paper_rows
from .regress import Tolerance, Verdict, compare_to_baseline, format_verdicts, judge_run
from .results import (
    DatasetInfo,
    IntervalInfo,
    MetricEntry,
    ModelInfo,
    Results,
    SampleCounts,
    TaskInfo,
    build_results,
    load_results,
    rows_from_results,
    validate_results,
    write_results,
)
from .schema import SCHEMA_VERSION, LeaderboardError, Row
from .table import DEFAULT_TABLE, accepted_rows, append_rows, load_table, validate_table
from .view import comparison_frame

__all__ = [
    "DEFAULT_TABLE",
    "SCHEMA_VERSION",
    "DatasetInfo",
    "IntervalInfo",
    "LeaderboardError",
    "MetricEntry",
    "ModelInfo",
    "Results",
    "Row",
    "SampleCounts",
    "TaskInfo",
    "Tolerance",
    "Verdict",
    "accepted_rows",
    "append_rows",
    "build_results",
    "compare_to_baseline",
    "comparison_frame",
    "format_verdicts",
    "import_paper",
    "judge_run",
    "load_results",
    "load_table",
    "paper_rows",
    "rows_from_results",
    "validate_results",
    "validate_table",
    "write_results",
]
