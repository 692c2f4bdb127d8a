"""CLIP-SIM: mean cosine similarity between CLIP embeddings of each generated image and its
caption. Scale: the raw cosine in [-1, 1] (×1, no clamp, no ×100), which is the scale of the
paper's Table 2 (0.2807) and of HORIZON's code (logit_scale = 1). torchmetrics' CLIPScore is
max(100·cos, 0) and Hessel et al.'s is 2.5·max(cos, 0); neither is this number.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from evaluation.errors import EvaluationError
from evaluation.metric_base import FeatureMetric, MetricResult


class CLIPSim(FeatureMetric):
    """CLIP-SIM@1 (default extractor: OpenAI CLIP ViT-B/32)."""

    NAME = "clip_sim"
    VERSION = 1
    PAPER_PROTOCOL = {"scale": "cosine x1"}

    def protocol(self) -> dict[str, Any]:
        return {
            "scale": "cosine x1",
            "clamp": None,
            "text": "open_clip BPE tokenizer, truncated to 77 tokens",
            "reduction": "mean over image-caption pairs",
        }

    def summary(self) -> list[str]:
        return ["cos"]

    def reset(self) -> None:
        super().reset()
        self.cosines: list[np.ndarray] = []

    def update(self, images: Any, captions: list[str]) -> None:
        """Add generated images and their captions (one caption per image, same order)."""
        images = self.samples(images)
        if len(captions) != len(images) or not all(isinstance(c, str) for c in captions):
            raise EvaluationError(
                f"CLIP-SIM needs one caption string per image; got {len(captions)} "
                f"for {len(images)} images"
            )
        image_embeds = np.concatenate(list(self._features(images, "generated")))
        for caption in captions:
            self._manifest["generated"].update(
                hashlib.sha256(caption.encode()).hexdigest().encode()
            )
        text_embeds = []
        for start in range(0, len(captions), self.batch_size):
            text_embeds.append(
                self.model.embed_text(captions[start : start + self.batch_size]).float().cpu()
            )
        image = torch.nn.functional.normalize(torch.from_numpy(image_embeds).double(), dim=1)
        text = torch.nn.functional.normalize(torch.cat(text_embeds).double(), dim=1)
        self.cosines.append((image * text).sum(dim=1).numpy())

    def compute(self) -> MetricResult:
        """Mean cosine (std and per-pair count in details)."""
        if not self.cosines:
            raise EvaluationError("CLIP-SIM needs image-caption pairs; none were added")
        cosines = np.concatenate(self.cosines)
        return self._result(float(cosines.mean()), {"std": float(cosines.std())})
