"""The one exception type the evaluation package raises for bad input, missing weights or
mismatched provenance; CLIs print its message as a single line and exit 2."""

from __future__ import annotations

from nuwa.errors import UserError


class EvaluationError(UserError, ValueError):
    """A user-facing error whose message is one self-contained line (what is wrong, what to do)."""


class WeightsError(EvaluationError):
    """A weights file is missing, has the wrong hash, or cannot be fetched."""


class MetricIdMismatch(EvaluationError):
    """Two results computed under different metric ids were about to be compared or merged."""


class FewSamplesWarning(UserWarning):
    """Fewer samples than feature dimensions: the covariance is singular (FID is still defined,
    but biased and noisy)."""
