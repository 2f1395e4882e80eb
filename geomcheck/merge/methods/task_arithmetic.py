"""Task arithmetic: add weighted task vectors to a base model.

    θ = base + λ·Σ_i w_i·(θ_i - base)              (normalize=False, the default)
    θ = base + λ·Σ_i w_i·(θ_i - base) / Σ_i w_i     (normalize=True)

``λ`` is ``scale`` (mergekit's ``lambda``); weights default to 1 each. Reference: Ilharco
et al. 2023, "Editing models with task arithmetic", ICLR, arXiv:2212.04089; mergekit
``task_arithmetic``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from geomcheck.merge._base import SCALE, MergeMethod, normalize_param
from geomcheck.merge._tensor import weighted_sum

__all__ = ["task_vectors", "task_arithmetic", "METHOD"]


def task_vectors(tensors: Sequence[torch.Tensor], base: torch.Tensor) -> list[torch.Tensor]:
    """τ_i = θ_i - base (each subtracted before any weighting: small deltas keep their precision)."""
    return [x - base for x in tensors]


def task_arithmetic(tensors: Sequence[torch.Tensor], base: torch.Tensor, weights: Sequence[float], *,
                    scale: float = 1.0, normalize: bool = False) -> torch.Tensor:
    """base + scale·Σ w_i (θ_i - base) (÷ Σ w_i when ``normalize``); each delta formed just before it is added."""
    return weighted_sum((x - base for x in tensors), weights, normalize=normalize).mul_(scale).add_(base)


METHOD = MergeMethod(
    "task_arithmetic", task_arithmetic, min_models=1, base="required",
    summary="base + λ·Σ w_i (θ_i - base): add weighted task vectors to a base model",
    reference="Ilharco et al. 2023, Editing models with task arithmetic, ICLR, arXiv:2212.04089",
    parameters=(SCALE, normalize_param(False)),
)
