"""Metric ids: what exactly a number measures, as a hash, so numbers never mix silently.

A metric id is the SHA-256 of canonical JSON over the feature extractor's provenance record
(architecture, weights hash, preprocessing, output layer), the protocol parameters (block size,
shifted pass, region, splits, frames, ...) and the implementation version of the math. Anything
that can change a value changes the id. The leaderboard keys columns by the full digest; people
read the label.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from evaluation.errors import MetricIdMismatch


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) used for every hash in this package."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class MetricId:
    """Identity of one metric column.

    name: readable metric name with version, e.g. "block_fid@1";
    extractor: registry name of the feature extractor ("none" for SWD);
    config: the full JSON-able definition that is hashed;
    paper_comparable: True only with real TF-2015/OpenAI/I3D weights *and* the paper protocol.
    """

    def __init__(
        self, name: str, extractor: str, config: Mapping[str, Any], paper_comparable: bool
    ) -> None:
        self.name = name
        self.extractor = extractor
        self.config = json.loads(canonical_json(config))  # a frozen, JSON-clean copy
        self.paper_comparable = bool(paper_comparable)
        self.digest = hashlib.sha256(
            canonical_json({"name": name, "extractor": extractor, "config": self.config}).encode()
        ).hexdigest()

    @property
    def short(self) -> str:
        return self.digest[:12]

    @property
    def label(self) -> str:
        """Readable id, e.g. "block_fid@1 · inception_v3.tf2015.pt_port@1 · b256 · 3f2a9c1d0e4b"."""
        parts = [self.name, self.extractor, *self.config.get("summary", [])]
        if not self.paper_comparable:
            parts.append("not-paper-comparable")
        return " · ".join([*parts, self.short])

    def variant(self, variant: str) -> MetricId:
        """The id of a second number reported beside this one (e.g. the pooled Block-FID)."""
        config = dict(self.config)
        config["variant"] = variant
        summary = [*config.get("summary", []), variant]
        config["summary"] = summary
        return MetricId(f"{self.name}", self.extractor, config, self.paper_comparable)

    def to_json(self) -> dict[str, Any]:
        """Everything a results file needs to record about this metric."""
        return {
            "id": self.digest,
            "label": self.label,
            "name": self.name,
            "extractor": self.extractor,
            "paper_comparable": self.paper_comparable,
            "config": self.config,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricId) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return f"MetricId({self.label!r})"


def _digest(metric: MetricId | str) -> str:
    return metric.digest if isinstance(metric, MetricId) else str(metric)


def require_same_metric(metrics: Iterable[MetricId | str]) -> str:
    """Check that results may share one leaderboard column; return their common digest.

    Accepts MetricId objects or their hex digests (as stored in results files). Raises
    MetricIdMismatch naming the two differing ids otherwise; an empty input is an error too.
    """
    items = list(metrics)
    if not items:
        raise MetricIdMismatch("no metric ids given; a column needs at least one result")
    first = items[0]
    for other in items[1:]:
        if _digest(other) != _digest(first):
            raise MetricIdMismatch(
                f"results with different metric ids cannot share a column: {first} vs {other}"
            )
    return _digest(first)
