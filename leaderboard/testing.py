"""Small valid results for tests (ours and other areas'), built through the real builder.

Every number here is a placeholder that a test sets on purpose; nothing here is a measured result.
"""

from __future__ import annotations

from typing import Any

from nuwa.io import sha256_bytes

from .results import IntervalInfo, MetricEntry, Results, build_results

SURROGATE_BLOCK_FID_ID = "block_fid@1/inception_v3.surrogate_seed0@1/b256s256/generated/1a2b3c4d"


def example_metric(
    value: float,
    *,
    base: str = "block_fid",
    name: str = "Block-FID [surrogate Inception]",
    metric_id: str = SURROGATE_BLOCK_FID_ID,
    better: str = "lower",
    paper_comparable: bool = False,
    features: str = "inception_v3.surrogate_seed0@1",
    interval: tuple[float, float] | None = None,
) -> MetricEntry:
    """One metric entry; defaults describe a surrogate-feature Block-FID. ``interval`` (low,
    high) adds a 95% bootstrap interval of 200 replicates, seed 0."""
    metric = MetricEntry(
        id=metric_id,
        name=name,
        base=base,
        value=value,
        better=better,
        paper_comparable=paper_comparable,
        features=features,
        config={"block": 256, "stride": 256, "region": "generated"},
    )
    if interval is not None:
        low, high = interval
        metric["interval"] = IntervalInfo(
            low=low, high=high, level=0.95, replicates=200, seed=0, method="percentile"
        )
    return metric


def example_results(
    metrics: list[MetricEntry],
    *,
    task: str = "lhqc_outpaint_up",
    version: int = 1,
    model: str = "nuwa-tiny",
    checkpoint: bytes = b"checkpoint-a",
    setting: str = "without text",
    dataset: str = "procedural-landscapes-v1",
    paper_ref: str = "table3/NUWA-Infinity/without text",
    artifacts: dict[str, str] | None = None,
    **extra: Any,
) -> Results:
    """A validated results dict for ``metrics``; ``checkpoint`` bytes stand in for the weights."""
    return build_results(
        task={"name": task, "version": version, "config": {"direction": "up", "n": 8}},
        model={
            "name": model,
            "checkpoint": "bundled",
            "checkpoint_sha256": sha256_bytes(checkpoint),
            "setting": setting,
        },
        dataset={
            "name": dataset,
            "split": "test",
            "manifest_sha256": sha256_bytes(b"manifest"),
            "n_real": 8,
        },
        metrics=metrics,
        n_samples={"requested": 8, "effective": 8},
        samples_sha256=sha256_bytes(b"samples"),
        seeds={"torch": 0, "numpy": 0},
        config={"batch_size": 4},
        device="cpu",
        wall_time_s={"generation": 1.5, "metrics": 0.5, "total": 2.0},
        paper_ref=paper_ref,
        protocol="block_fid@1 on the generated half; test fixture",
        artifacts=artifacts,
        extra=extra,
    )
