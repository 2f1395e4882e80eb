"""Linear merge: the weighted average of N models ("model soup").

    θ = Σ_i w_i·θ_i / Σ_i w_i        (normalize=True, the default)
    θ = Σ_i w_i·θ_i                  (normalize=False)

Weights default to 1 each, i.e. the uniform soup. Reference: Wortsman et al. 2022,
"Model soups: averaging weights of multiple fine-tuned models improves accuracy without
increasing inference time", ICML, arXiv:2203.05482; mergekit ``linear``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from geomcheck.merge._base import MergeMethod, normalize_param
from geomcheck.merge._tensor import weighted_sum

__all__ = ["linear", "METHOD"]


def linear(tensors: Sequence[torch.Tensor], weights: Sequence[float], *, normalize: bool = True) -> torch.Tensor:
    """Σ w_i·θ_i, divided by Σ w_i when ``normalize``."""
    return weighted_sum(tensors, weights, normalize=normalize)


METHOD = MergeMethod(
    "linear", linear, base="forbidden",
    summary="weighted average of N models (model soup); weights normalised to sum to 1 by default",
    reference="Wortsman et al. 2022, Model soups, arXiv:2203.05482",
    parameters=(normalize_param(True),),
)
