"""Attribute agreement: offline text alignment on procedural landscapes (GenEval/TIFA-style).

A procedural caption names five scene attributes (time of day, cloud cover, ridge count, ridge
kind, ground). The landscape network, trained on the generator's own labels, plays the detector:
an image's agreement is the fraction of its caption's attributes the network sees in it. The
reported value is the mean over image-caption pairs; the same predictions scored against the
captions of other images (a seeded derangement) give the shuffled-caption baseline in the same
run, the level of an image that ignores its prompt. Works only with procedural captions; it is
never comparable to CLIP-SIM or to a paper number.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from evaluation.bootstrap import Interval
from evaluation.errors import EvaluationError
from evaluation.extractors.landscape import ATTRIBUTES, attribute_logits
from evaluation.metric_base import FeatureMetric, MetricResult
from nuwa.data.landscapes import caption_attributes

SHUFFLE_SEED = 0


def caption_labels(captions: list[str]) -> np.ndarray:
    """int64 [N, 5]: each caption's class index per attribute (ATTRIBUTES order)."""
    rows = []
    for index, caption in enumerate(captions):
        attributes = caption_attributes(caption)
        if attributes is None:
            raise EvaluationError(
                f"caption #{index} ({caption[:60]!r}) is not a procedural-landscapes caption; "
                "attribute agreement measures only those"
            )
        rows.append([classes.index(attributes[name]) for name, classes in ATTRIBUTES.items()])
    return np.asarray(rows, np.int64)


def derangement(n: int, seed: int = SHUFFLE_SEED) -> np.ndarray:
    """A seeded permutation of range(n) with no fixed point (n >= 2)."""
    return (np.arange(n) + np.random.default_rng(seed).integers(1, n)) % n


class AttributeAgreement(FeatureMetric):
    """AttributeAgreement@1: mean fraction of caption attributes the landscape network predicts
    in each generated image; ``compute().details`` holds the shuffled-caption baseline and the
    per-attribute agreement."""

    NAME = "attribute_agreement"
    VERSION = 1

    def __init__(self, extractor: str, **kwargs: Any) -> None:
        super().__init__(extractor, output="attributes", **kwargs)

    def protocol(self) -> dict[str, Any]:
        return {
            "attributes": list(ATTRIBUTES),
            "prediction": "argmax of each attribute's logits on the whole image",
            "reduction": "mean over pairs of the fraction of attributes that agree",
            "baseline": f"captions deranged with numpy default_rng({SHUFFLE_SEED})",
        }

    def summary(self) -> list[str]:
        return ["5 attributes"]

    def reset(self) -> None:
        super().reset()
        self.predicted: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []

    def update(self, images: Any, captions: list[str]) -> None:
        """Add generated images and their captions (one caption per image, same order)."""
        images = self.samples(images)
        if len(captions) != len(images) or not all(isinstance(c, str) for c in captions):
            raise EvaluationError(
                f"attribute agreement needs one caption string per image; got {len(captions)} "
                f"for {len(images)} images"
            )
        self.labels.append(caption_labels(captions))
        for caption in captions:
            self._manifest["generated"].update(
                hashlib.sha256(caption.encode()).hexdigest().encode()
            )
        logits = torch.from_numpy(np.concatenate(list(self._features(images, "generated"))))
        self.predicted.append(
            torch.stack([l.argmax(1) for l in attribute_logits(logits).values()], 1).numpy()
        )

    def agreement(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-pair agreement float [N] with the own captions and with deranged captions."""
        if not self.predicted:
            raise EvaluationError("attribute agreement needs image-caption pairs; none were added")
        predicted, labels = np.concatenate(self.predicted), np.concatenate(self.labels)
        if len(labels) < 2:
            raise EvaluationError("attribute agreement needs at least 2 pairs for its baseline")
        own = (predicted == labels).mean(1)
        shuffled = (predicted == labels[derangement(len(labels))]).mean(1)
        return own, shuffled

    def compute(self) -> MetricResult:
        """Mean agreement; details: the shuffled-caption baseline (with its interval when
        bootstrap > 0) and the agreement per attribute."""
        own, shuffled = self.agreement()
        predicted, labels = np.concatenate(self.predicted), np.concatenate(self.labels)
        per_attribute = (predicted == labels).mean(0)
        baseline = self._mean_interval(shuffled)
        return self._result(
            float(own.mean()),
            {
                "shuffled_captions": float(shuffled.mean()),
                "shuffled_captions_interval": None if baseline is None else baseline.to_json(),
                "per_attribute": dict(zip(ATTRIBUTES, per_attribute.tolist(), strict=True)),
            },
            interval=self._mean_interval(own),
        )

    def _mean_interval(self, per_pair: np.ndarray) -> Interval | None:
        """Bootstrap interval over pairs of the mean of ``per_pair`` [N]."""
        return self._interval(
            lambda indices: float(per_pair[indices["generated"]].mean()),
            {"generated": len(per_pair)},
            float(per_pair.mean()),
        )
