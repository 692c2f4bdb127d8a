"""The training log: one CSV row per logging interval, consistent across kills and resumes."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from nuwa.io import atomic_write_text

FIELDS = (
    "batch",
    "optimizer_step",
    "epoch",
    "loss",
    "lr",
    "tokens_per_s",
    "mfu",
    "elapsed_s",
    "train_flops",
)


class CsvLog:
    """Append-only CSV at ``path``; opening it at ``resume_batch`` drops rows logged after that
    batch by a run that was killed before its next checkpoint (they are about to be redone)."""

    def __init__(self, path: str | Path, resume_batch: int) -> None:
        self.path = Path(path)
        rows = []
        if self.path.exists() and resume_batch > 0:
            with open(self.path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if int(r["batch"]) <= resume_batch]
        text = io.StringIO()
        writer = csv.DictWriter(text, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, text.getvalue())

    def append(self, row: dict) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, FIELDS, lineterminator="\n").writerow(row)


def read_log(path: str | Path) -> list[dict[str, float | None]]:
    """Every row of a ``log.csv`` as numbers; a field the run did not log is None (an empty cell,
    as ``train_flops`` in logs written before that column existed)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {key: float(value) if value else None for key, value in row.items()}
            for row in csv.DictReader(f)
        ]
