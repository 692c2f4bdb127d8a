"""Evaluation metrics you can trust and trace (FID, Block-FID, IS, KID, CLIP-SIM, FVD, SWD).

Every number carries a MetricId (hash of extractor provenance, preprocessing, protocol and
implementation version); numbers with different ids never share a leaderboard column.

    from evaluation import BlockFID, Region, SURROGATE_INCEPTION
    metric = BlockFID(SURROGATE_INCEPTION, region=Region(top=0, left=512, height=1024, width=512))
    metric.update(generated_canvases, real=False)   # folder, paths, uint8 [H,W,3] arrays, ...
    metric.update(real_canvases, real=True)
    result = metric.compute()                        # BlockFIDResult
    result.position_mean.value, result.pooled.value, result.position_mean.metric_id.label
"""

from evaluation.block_fid import BLOCK, BlockFID, BlockFIDResult, Region, block_positions
from evaluation.bootstrap import MIN_INTERVAL_SAMPLES, Interval, bootstrap_interval
from evaluation.clip_sim import CLIPSim
from evaluation.errors import EvaluationError, FewSamplesWarning, MetricIdMismatch, WeightsError
from evaluation.extractors import (
    ExtractorSpec,
    all_weights,
    get_extractor_spec,
    list_extractors,
    load_extractor,
    register_extractor,
)
from evaluation.fid import FID
from evaluation.frechet import FeatureStats, fid_from_stats, frechet_distance
from evaluation.fvd import FVD
from evaluation.inception_score import InceptionScore, inception_score
from evaluation.kid import KID, kernel_inception_distance
from evaluation.layout import RowProfileL1
from evaluation.metric_base import MetricResult
from evaluation.metric_id import MetricId, require_same_metric
from evaluation.swd import SWD

PAPER_INCEPTION = "inception_v3.tf2015.pt_port@1"  # pytorch-fid / torch-fidelity port (IS works)
CLEANFID_INCEPTION = "inception_v3.tf2015.nvidia_ts@1"  # clean-fid's TorchScript
SURROGATE_INCEPTION = "inception_v3.surrogate_seed0@1"
PAPER_CLIP = "clip_vit_b32.openai@1"
SURROGATE_CLIP = "clip_vit_b32.surrogate_seed0@1"
PAPER_I3D = "i3d.stylegan_v_ts@1"
SURROGATE_VIDEO = "r3d18.surrogate_seed0@1"
# The offline default for image metrics on procedural-landscapes-v1 (never paper-comparable).
LANDSCAPE_FEATURES = "landscape_net.procedural_v1@1"


def block_fid(
    generated,
    real,
    *,
    region: Region | tuple[int, int, int, int] | None = None,
    extractor: str = PAPER_INCEPTION,
    shifted_pass: bool = False,
    **kwargs,
) -> BlockFIDResult:
    """Block-FID@1 of generated vs real canvases (same size), restricted to ``region``
    (top, left, height, width) in pixels. kwargs go to BlockFID (cache_dir, batch_size, ...)."""
    metric = BlockFID(extractor, region=region, shifted_pass=shifted_pass, **kwargs)
    metric.update(generated, real=False)
    metric.update(real, real=True)
    return metric.compute()


__all__ = [
    "BLOCK",
    "CLEANFID_INCEPTION",
    "CLIPSim",
    "EvaluationError",
    "ExtractorSpec",
    "FID",
    "FVD",
    "FeatureStats",
    "FewSamplesWarning",
    "InceptionScore",
    "Interval",
    "KID",
    "LANDSCAPE_FEATURES",
    "MIN_INTERVAL_SAMPLES",
    "MetricId",
    "MetricIdMismatch",
    "MetricResult",
    "PAPER_CLIP",
    "PAPER_I3D",
    "PAPER_INCEPTION",
    "Region",
    "SURROGATE_CLIP",
    "SURROGATE_INCEPTION",
    "SURROGATE_VIDEO",
    "RowProfileL1",
    "SWD",
    "BlockFID",
    "BlockFIDResult",
    "WeightsError",
    "all_weights",
    "block_fid",
    "bootstrap_interval",
    "block_positions",
    "fid_from_stats",
    "frechet_distance",
    "get_extractor_spec",
    "inception_score",
    "kernel_inception_distance",
    "list_extractors",
    "load_extractor",
    "register_extractor",
    "require_same_metric",
]
