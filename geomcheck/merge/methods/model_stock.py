"""Model Stock: interpolate between the base and the average of N fine-tuned models by their angle.

For N ≥ 2 fine-tuned models and a base, per tensor (Jang et al. 2024, "Model Stock: all
we need is just a few fine-tuned models", ECCV, arXiv:2403.19522, Eq. 2; mergekit
``model_stock``)::

    cos θ = mean over pairs i < j of cos(θ_i - base, θ_j - base)
    t     = N·cos θ / (1 + (N - 1)·cos θ)
    θ     = t·mean_i(θ_i) + (1 - t)·base

``filter_wise=True`` computes ``t`` per row (leading axis) instead of per tensor. A task
vector with norm ≤ 1e-12 has no direction: its cosines count as 0 (mergekit clamps the
product of norms at 1e-6 instead, which shrinks the cosine of small deltas). Where
``1 + (N - 1)·cos θ`` is 0 (cos θ = -1/(N - 1), only reachable with opposed deltas) ``t = 0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from geomcheck.merge._base import MergeMethod, Param, check_bool
from geomcheck.merge._tensor import as_rows, flat_dot

__all__ = ["model_stock_ratio", "model_stock", "METHOD"]


def model_stock_ratio(deltas: Sequence[torch.Tensor], *, filter_wise: bool = False) -> torch.Tensor:
    """t = N·cos θ / (1 + (N - 1)·cos θ), cos θ the mean pairwise cosine of the task vectors (one per row with ``filter_wise``)."""
    if filter_wise:
        rows = [as_rows(d) for d in deltas]
        norms = [torch.linalg.vector_norm(r, dim=1).to(torch.float64) for r in rows]

        def dot(i: int, j: int) -> torch.Tensor:
            return torch.linalg.vecdot(rows[i], rows[j], dim=1).to(torch.float64)
    else:
        norms = [torch.tensor([flat_dot(d, d) ** 0.5], dtype=torch.float64) for d in deltas]

        def dot(i: int, j: int) -> torch.Tensor:
            return torch.tensor([flat_dot(deltas[i], deltas[j])], dtype=torch.float64)

    cos_sum = torch.zeros_like(norms[0])
    pairs = 0
    for i in range(len(deltas)):
        for j in range(i + 1, len(deltas)):
            d = dot(i, j)
            ok = (norms[i] > 1e-12) & (norms[j] > 1e-12)
            denom = torch.where(ok, norms[i] * norms[j], torch.ones_like(d))
            cos_sum += torch.where(ok, d / denom, torch.zeros_like(d)).clamp(-1.0, 1.0)
            pairs += 1
    cos = cos_sum / pairs
    n = len(deltas)
    den = 1.0 + (n - 1) * cos
    return torch.where(den.abs() > 1e-12, n * cos / torch.where(den.abs() > 1e-12, den, torch.ones_like(den)),
                       torch.zeros_like(cos))


def model_stock(tensors: Sequence[torch.Tensor], base: torch.Tensor, *, filter_wise: bool = False) -> torch.Tensor:
    """t·mean(θ_i) + (1 - t)·base with Model Stock's t (module doc)."""
    t = model_stock_ratio([x - base for x in tensors], filter_wise=filter_wise).to(base.dtype)
    mean = torch.zeros_like(base)
    for x in tensors:
        mean.add_(x, alpha=1.0 / len(tensors))
    if filter_wise:
        m2, b2 = as_rows(mean), as_rows(base)
        return (m2 * t[:, None] + b2 * (1 - t)[:, None]).reshape(base.shape)
    tt = float(t[0])
    return mean.mul_(tt).add_(base, alpha=1.0 - tt)


METHOD = MergeMethod(
    "model_stock", model_stock, base="required", uses_weights=False,
    summary="Model Stock: t·mean(θ_i) + (1-t)·base, t from the task vectors' mean pairwise cosine",
    reference="Jang et al. 2024, Model Stock, ECCV, arXiv:2403.19522",
    parameters=(Param("filter_wise", False, check_bool, help="one t per row (leading axis) instead of per tensor"),),
)
