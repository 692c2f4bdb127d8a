"""Deterministic random initialisation for surrogate extractors (no weights file).

numpy's PCG64 normal stream is stable across numpy versions and platforms, unlike torch's CPU
`normal_`, whose vectorised path can differ in the last bits between CPU instruction sets; the
surrogate's features, and so the golden values pinned in tests, depend only on the seed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SEEDED_INIT = (
    "he-normal(fan_in) for conv/linear weights, zero biases, identity batch-norm; "
    "numpy PCG64 in sorted parameter order"
)


@torch.no_grad()
def seeded_he_init(module: nn.Module, seed: int) -> None:
    """Re-initialise every parameter and batch-norm buffer of ``module`` in place from ``seed``.

    Conv and linear weights [out, in, *k] ~ N(0, 2 / fan_in) keeps activation variance roughly
    constant through ReLU stacks; batch norms become identities (mean 0, var 1, affine 1/0).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    for name, tensor in sorted(module.state_dict(keep_vars=True).items()):
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            continue
        if leaf == "weight" and tensor.ndim >= 2:
            fan_in = tensor[0].numel()
            values = rng.standard_normal(tuple(tensor.shape)) * np.sqrt(2.0 / fan_in)
            tensor.copy_(torch.from_numpy(values))
        elif leaf in ("weight", "running_var"):
            tensor.fill_(1.0)
        elif leaf in ("bias", "running_mean"):
            tensor.zero_()
        else:
            raise ValueError(f"seeded_he_init does not know how to initialise {name}")
