"""Task arithmetic: add weighted task vectors to a base model.

    θ = base + λ·Σ_i w_i·(θ_i - base)              (normalize=False, the default)
    θ = base + λ·Σ_i w_i·(θ_i - base) / Σ_i w_i     (normalize=True)

``λ`` is ``scale`` (mergekit's ``lambda``); weights default to 1 each. Reference: Ilharco
et al. 2023, "Editing models with task arithmetic", ICLR, arXiv:2212.04089; mergekit
``task_arithmetic``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from geomcheck.merge._base import MergeMethod, check_bool
from geomcheck.merge._tensor import weighted_sum

__all__ = ["task_vectors", "task_arithmetic", "METHOD"]


def task_vectors(tensors: Sequence[torch.Tensor], base: torch.Tensor) -> list[torch.Tensor]:
    """τ_i = θ_i - base (each subtracted before any weighting: small deltas keep their precision)."""
    return [x - base for x in tensors]


def task_arithmetic(tensors: Sequence[torch.Tensor], base: torch.Tensor, weights: Sequence[float], *,
                    scale: float = 1.0, normalize: bool = False) -> torch.Tensor:
    """base + scale·Σ w_i (θ_i - base) (÷ Σ w_i when ``normalize``); each delta formed just before it is added."""
    return weighted_sum((x - base for x in tensors), weights, normalize=normalize).mul_(scale).add_(base)


def _merge(tensors: Sequence[torch.Tensor], base: torch.Tensor, weights: Sequence[float], *, name: str = "",
           scale: float = 1.0, normalize: bool = False) -> torch.Tensor:
    return task_arithmetic(tensors, base, weights, scale=scale, normalize=normalize)


def check_scale_normalize(params: dict[str, Any]) -> dict[str, Any]:
    from geomcheck.merge._base import check_fraction

    params["scale"] = check_fraction(params["scale"], what="scale (λ)", lo=-float("inf"), hi=float("inf"))
    params["normalize"] = check_bool(params["normalize"], what="normalize")
    return params


def _prepare(params: dict[str, Any], n_models: int, weights_given: bool) -> dict[str, Any]:
    return check_scale_normalize(params)


METHOD = MergeMethod(
    name="task_arithmetic",
    fn=_merge,
    summary="base + λ·Σ w_i (θ_i - base): add weighted task vectors to a base model",
    reference="Ilharco et al. 2023, Editing models with task arithmetic, ICLR, arXiv:2212.04089",
    min_models=1,
    base="required",
    params={"scale": 1.0, "normalize": False},
    prepare=_prepare,
)
