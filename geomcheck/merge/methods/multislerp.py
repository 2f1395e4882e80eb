"""Multi-SLERP: mergekit's barycentric interpolation of N models on the hypersphere.

With weights normalised to sum to 1 (``normalize_weights``), each (flattened) tensor —
or task vector ``θ_i - base`` when a base is given — is ``x_i = ‖x_i‖·u_i``,
``u_i = x_i / (‖x_i‖ + eps)``. mergekit's ``multislerp`` takes the weighted Euclidean mean
``m = Σ w_i·u_i``, normalises it (``m̂``), projects each ``u_i`` onto the tangent space at
``m̂``, averages the projections with the weights, maps the average back with the
exponential map, and rescales by the weighted mean norm ``Σ w_i·‖x_i‖``.

The weighted sum of the projections is exactly zero (``Σ w_i (u_i - ⟨u_i, m̂⟩ m̂) = m -
‖m‖·m̂``), so the exponential map is the identity and the result is, up to rounding::

    multislerp = m̂ · Σ_i w_i·‖x_i‖   (+ base)

i.e. the normalised weighted mean direction at the weighted mean norm ("NLERP" for two
models; for the geodesic weighted mean use ``karcher``). If ``‖m‖ < eps`` (antipodal inputs
that cancel) two models fall back to the linear ``Σ w_i·x_i``; more raise a MergeError.
Reference: mergekit ``merge_methods/multislerp.py``,
https://goddard.blog/posts/multislerp-wow-what-a-cool-idea
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from geomcheck.errors import MergeError
from geomcheck.merge._base import EPS, MergeMethod, Param, check_bool
from geomcheck.merge._tensor import flat_dot

__all__ = ["multislerp", "METHOD"]


def multislerp(tensors: Sequence[torch.Tensor], weights: Sequence[float], *, base: torch.Tensor | None = None,
               normalize_weights: bool = True, eps: float = 1e-8, name: str = "") -> torch.Tensor:
    """m̂·Σ w_i‖x_i‖ (+ base), m̂ the normalised Σ w_i x_i/(‖x_i‖ + eps) — mergekit's multislerp (module doc)."""
    w = list(weights)
    if normalize_weights:
        total = sum(w)
        if abs(total) < 1e-12:
            raise MergeError("multislerp weights sum to 0, so they cannot be normalised; change the weights "
                             "or pass normalize_weights=False.")
        w = [x / total for x in w]
    xs = [x - base for x in tensors] if base is not None else list(tensors)
    norms = [flat_dot(x, x) ** 0.5 for x in xs]
    m = torch.zeros_like(xs[0])
    for x, wi, n in zip(xs, w, norms):
        m.add_(x, alpha=wi / (n + eps))
    m_norm = flat_dot(m, m) ** 0.5
    if max(norms) < eps:  # all zero (e.g. an untouched zero bias): the mean is zero too
        out = torch.zeros_like(xs[0])
        return out.add_(base) if base is not None else out
    if m_norm < eps:
        if len(xs) == 2:
            out = torch.mul(xs[0], w[0]).add_(xs[1], alpha=w[1])
            return out.add_(base) if base is not None else out
        raise MergeError(
            f"multislerp: the weighted mean direction of tensor {name!r} is zero (antipodal tensors whose "
            "weights cancel); change the weights."
        )
    out = m.mul_(sum(wi * n for wi, n in zip(w, norms)) / m_norm)
    return out.add_(base) if base is not None else out


METHOD = MergeMethod(
    "multislerp", multislerp, base="optional",
    summary="mergekit's Multi-SLERP: normalised weighted mean direction of N models at their weighted mean norm",
    reference="mergekit merge_methods/multislerp.py; https://goddard.blog/posts/multislerp-wow-what-a-cool-idea",
    parameters=(Param("normalize_weights", True, check_bool, help="divide the weights by their sum first"), EPS),
)
