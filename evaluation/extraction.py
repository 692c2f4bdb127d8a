"""Batched, cached feature extraction: samples -> preprocessed views -> extractor -> features.

Items are processed in fixed chunks of CHUNK_ITEMS; each chunk is looked up in the feature cache
first. Preprocessing (PIL decode and resize, which release the GIL) runs in a small thread pool a
batch ahead of the network.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import PIL
import torch
from torch import nn
from tqdm import tqdm

from evaluation.cache import FeatureCache
from evaluation.errors import EvaluationError

CHUNK_ITEMS = 64
PREFETCH_THREADS = 2


def chunk_key(feature_key: str, item_hashes: Sequence[str]) -> str:
    """Cache key of one chunk: the feature definition, library versions and the items' content."""
    digest = hashlib.sha256(
        f"{feature_key}|torch={torch.__version__}|pil={PIL.__version__}".encode()
    )
    for item in item_hashes:
        digest.update(item.encode())
    return digest.hexdigest()


def _prefetched(fn: Callable[[int], list[torch.Tensor]], indices: Sequence[int], pool, ahead: int):
    """Yield fn(i) for i in order while at most ``ahead`` later calls run in ``pool``."""
    pending: deque = deque()
    for index in indices:
        pending.append(pool.submit(fn, index))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _run_chunk(
    samples,
    indices: Sequence[int],
    views: Callable,
    model: nn.Module,
    output: str,
    batch_size: int,
    device: torch.device,
    pool,
    name: str,
) -> np.ndarray:
    """Features [len(indices) * views_per_item, D] float32 of one chunk, in item-major order."""
    rows: list[np.ndarray] = []
    batch: list[torch.Tensor] = []
    first = views(samples[indices[0]])
    per_item = len(first)
    # Keep about one batch of views in flight: enough to overlap with the network, bounded memory.
    ahead = max(PREFETCH_THREADS, batch_size // max(per_item, 1))
    rest = _prefetched(lambda i: views(samples[i]), indices[1:], pool, ahead)

    def flush() -> None:
        with torch.inference_mode():
            out = model(torch.stack(batch).to(device))[output]
        rows.append(out.float().cpu().numpy())
        batch.clear()

    for item_views in itertools.chain([first], rest):
        if len(item_views) != per_item or per_item == 0:
            raise EvaluationError(
                "every item of a set must give the same, non-zero number of views"
            )
        batch.extend(item_views)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    features = np.concatenate(rows)
    if not np.all(np.isfinite(features)):
        raise EvaluationError(
            f"extractor {name} produced NaN/Inf features for items {indices[0]}..{indices[-1]}"
        )
    return features


def iter_features(
    samples,
    views: Callable[[np.ndarray], list[torch.Tensor]],
    model: nn.Module,
    output: str,
    *,
    feature_key: str,
    cache: FeatureCache | None = None,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "features",
    on_item_hash: Callable[[str], None] | None = None,
) -> Iterator[np.ndarray]:
    """Yield float32 feature chunks [items_in_chunk * views_per_item, D] for ``samples`` in order.

    samples: sequence with `item_hash(i)`; views: one sample -> list of input tensors (e.g. one
    per block); output: which extractor output to keep; feature_key: everything the features
    depend on except the items (a metric id's feature part). ``on_item_hash`` receives each
    item's content hash, for manifest hashes.
    """
    name = getattr(getattr(model, "spec", None), "name", type(model).__name__)
    total = len(samples)
    with (
        tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False) as bar,
        ThreadPoolExecutor(PREFETCH_THREADS) as pool,
    ):
        for start in range(0, total, CHUNK_ITEMS):
            indices = range(start, min(start + CHUNK_ITEMS, total))
            hashes = list(pool.map(samples.item_hash, indices))
            if on_item_hash is not None:
                for item_hash in hashes:
                    on_item_hash(item_hash)
            key = chunk_key(feature_key, hashes)
            features = cache.get(key) if cache is not None else None
            if features is None:
                features = _run_chunk(
                    samples,
                    indices,
                    views,
                    model,
                    output,
                    batch_size,
                    torch.device(device),
                    pool,
                    name,
                )
                if cache is not None:
                    cache.put(key, features)
            bar.update(len(indices))
            yield features
