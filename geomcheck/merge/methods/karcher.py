"""Karcher mean: the weighted Riemannian (Fréchet) mean of N models on the unit sphere.

Each (flattened) tensor — or task vector ``θ_i - base`` with a base — is ``x_i = n_i·u_i``
with ``‖u_i‖ = 1``. The direction ``u`` minimises ``Σ w_i·d(u, u_i)²`` (geodesic distance);
starting from the normalised weighted mean of the ``u_i`` it iterates (Karcher 1977;
Buss & Fillmore 2001, "Spherical averages and applications to spherical splines and
interpolation", ACM TOG)::

    T = Σ_i w_i·Log_u(u_i),   Log_u(v) = θ/sin θ·(v - cos θ·u),  cos θ = ⟨u, v⟩
    u ← cos‖T‖·u + sin‖T‖·T/‖T‖

until ``‖T‖ < tol`` or ``max_iter`` steps, and returns ``(Σ_i w_i·n_i)·u`` (+ base). Weights
(default equal) are normalised to sum to 1; tensors with norm ≤ eps take no part in the
direction but count (as 0) in the norm. For two models the Karcher mean is
``slerp(u_0, u_1; w_1)``. Reference: mergekit ``karcher`` (which uses equal weights and no
base), https://en.wikipedia.org/wiki/Karcher_mean
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch

from geomcheck.errors import MergeError
from geomcheck.merge._base import EPS, MergeMethod, Param, check_positive
from geomcheck.merge._tensor import flat_dot

__all__ = ["karcher_mean", "METHOD"]


def karcher_mean(tensors: Sequence[torch.Tensor], weights: Sequence[float] | None = None, *,
                 base: torch.Tensor | None = None, max_iter: int = 10, tol: float = 1e-5,
                 eps: float = 1e-8) -> torch.Tensor:
    """(Σ w_i‖x_i‖)·u with u the weighted Karcher mean of x_i/‖x_i‖ on the sphere (module doc)."""
    w = [1.0] * len(tensors) if weights is None else list(weights)
    total = sum(w)
    if abs(total) < 1e-12:
        raise MergeError("karcher weights sum to 0; give weights with a non-zero sum.")
    w = [x / total for x in w]
    xs = [x - base for x in tensors] if base is not None else list(tensors)
    norms = [flat_dot(x, x) ** 0.5 for x in xs]
    scale = sum(wi * n for wi, n in zip(w, norms))
    valid = [i for i, n in enumerate(norms) if n > eps]
    if not valid:
        out = torch.zeros_like(xs[0])
        return out.add_(base) if base is not None else out
    wv = sum(w[i] for i in valid)
    alphas = [w[i] / wv for i in valid]
    units = [xs[i] / norms[i] for i in valid]

    u = torch.zeros_like(units[0])
    for a, ui in zip(alphas, units):
        u.add_(ui, alpha=a)
    nu = flat_dot(u, u) ** 0.5
    u = units[0].clone() if nu < eps else u.div_(nu)
    for _ in range(max_iter):
        tangent = torch.zeros_like(u)
        for a, ui in zip(alphas, units):
            c = max(-1.0, min(1.0, flat_dot(u, ui)))
            theta = math.acos(c)
            s = math.sin(theta)
            coef = theta / s if s > 1e-12 else 1.0  # θ/sin θ → 1 as θ → 0
            tangent.add_(ui, alpha=a * coef).add_(u, alpha=-a * coef * c)
        nt = flat_dot(tangent, tangent) ** 0.5
        if nt < tol:
            break
        u = u.mul_(math.cos(nt)).add_(tangent, alpha=math.sin(nt) / nt)
        u.div_(flat_dot(u, u) ** 0.5)
    out = u.mul_(scale)
    return out.add_(base) if base is not None else out


METHOD = MergeMethod(
    "karcher", karcher_mean, base="optional",
    summary="weighted Riemannian (Karcher) mean of N models on the sphere, at their weighted mean norm",
    reference="Karcher 1977; Buss & Fillmore 2001 (ACM TOG); mergekit karcher",
    parameters=(
        Param("max_iter", 10, partial(check_positive, integer=True), help="at most this many iterations"),
        Param("tol", 1e-5, check_positive, help="stop when the tangent mean's norm is below tol"),
        EPS,
    ),
)
