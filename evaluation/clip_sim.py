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
        self.sample_ids: list[np.ndarray] = []  # per cosine, the sample its image belongs to
        self.n_samples = 0

    def update(self, images: Any, captions: list[str], *, images_per_sample: int = 1) -> None:
        """Add generated images and their captions (one caption per image, same order).

        ``images_per_sample`` consecutive images form one sample (e.g. the frames of one clip,
        each given the clip's caption); the bootstrap interval resamples samples, not images.
        """
        images = self.samples(images)
        if len(captions) != len(images) or not all(isinstance(c, str) for c in captions):
            raise EvaluationError(
                f"CLIP-SIM needs one caption string per image; got {len(captions)} "
                f"for {len(images)} images"
            )
        if images_per_sample < 1 or len(images) % images_per_sample:
            raise EvaluationError(
                f"CLIP-SIM got {len(images)} images, not a whole number of samples of "
                f"{images_per_sample} images"
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
        self.sample_ids.append(self.n_samples + np.arange(len(images)) // images_per_sample)
        self.n_samples += len(images) // images_per_sample

    def compute(self) -> MetricResult:
        """Mean cosine (std in details). Its bootstrap interval (bootstrap > 0) resamples samples
        and takes the mean cosine over all their images."""
        if not self.cosines:
            raise EvaluationError("CLIP-SIM needs image-caption pairs; none were added")
        cosines = np.concatenate(self.cosines)
        value = float(cosines.mean())
        sample_ids = np.concatenate(self.sample_ids)
        sums, counts = np.bincount(sample_ids, cosines), np.bincount(sample_ids)

        def statistic(indices: dict[str, np.ndarray]) -> float:
            drawn = indices["generated"]
            return float(sums[drawn].sum() / counts[drawn].sum())

        interval = self._interval(statistic, {"generated": self.n_samples}, value)
        return self._result(value, {"std": float(cosines.std())}, interval=interval)
