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

from geomcheck.merge._base import MergeError, MergeMethod, check_bool

__all__ = ["task_vectors", "combine_linear", "task_arithmetic", "METHOD"]


def task_vectors(tensors: Sequence[torch.Tensor], base: torch.Tensor) -> list[torch.Tensor]:
    """τ_i = θ_i - base (each subtracted before any weighting: small deltas keep their precision)."""
    return [x - base for x in tensors]


def combine_linear(deltas: Sequence[torch.Tensor], weights: Sequence[float], *, normalize: bool = False) -> torch.Tensor:
    """Σ w_i·τ_i, divided by Σ w_i when ``normalize``."""
    total = sum(weights)
    if normalize and abs(total) < 1e-12:
        raise MergeError("the weights sum to 0, so normalize=True cannot divide by them; change the weights "
                         "or pass normalize=False.")
    scale = 1.0 / total if normalize else 1.0
    out = torch.mul(deltas[0], weights[0] * scale)
    for d, w in zip(deltas[1:], weights[1:]):
        out.add_(d, alpha=w * scale)
    return out


def task_arithmetic(tensors: Sequence[torch.Tensor], base: torch.Tensor, weights: Sequence[float], *,
                    scale: float = 1.0, normalize: bool = False) -> torch.Tensor:
    """base + scale·Σ w_i (θ_i - base) (÷ Σ w_i when ``normalize``)."""
    total = sum(weights)
    if normalize and abs(total) < 1e-12:
        raise MergeError("the weights sum to 0, so normalize=True cannot divide by them; change the weights "
                         "or pass normalize=False.")
    out = torch.zeros_like(base)
    for x, w in zip(tensors, weights):
        out.add_(x - base, alpha=w / total if normalize else w)  # each delta formed before weighting
    return out.mul_(scale).add_(base)


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
