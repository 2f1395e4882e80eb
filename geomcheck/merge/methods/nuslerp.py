"""NuSLERP: mergekit's "new" SLERP — flattened, row-wise or column-wise, optionally on task vectors.

Vectors are interpolated on their own spheres: with ``u = v/max(‖v‖, eps)``,
``cos θ = ⟨u_0, u_1⟩``::

    nuslerp(v_0, v_1; t) = (sin((1 - t)θ)·v_0 + sin(tθ)·v_1) / sin θ

and linear interpolation where ``|sin θ| < eps`` (only numerically collinear vectors;
unlike ``slerp`` there is no 0.9995 threshold). Which vectors (mergekit's ``nuslerp``):

- ``flatten=True`` (default): the whole tensor is one vector (classic SLERP without the
  threshold);
- ``flatten=False, row_wise=False``: each vector along the last axis (each row of a
  ``[out, in]`` weight);
- ``flatten=False, row_wise=True``: each vector along the first axis (each column of a
  weight) — mergekit's name, kept as is.

``t`` defaults to ``w_1 / (w_0 + w_1)`` from the two weights (0.5 when they sum to ~0),
as mergekit derives it. With a base model the task vectors are interpolated:
``base + nuslerp(θ_0 - base, θ_1 - base; t)``.
Reference: mergekit ``merge_methods/nuslerp.py``.
"""

from __future__ import annotations

from typing import Any

import torch

from geomcheck.errors import MergeError
from geomcheck.merge._base import EPS, MergeMethod, Param, check_bool, check_fraction
from geomcheck.merge._tensor import flat_stats

__all__ = ["nuslerp", "METHOD"]


def nuslerp(v0: torch.Tensor, v1: torch.Tensor, t: float, *, base: torch.Tensor | None = None,
            row_wise: bool = False, flatten: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """Interpolate ``v0`` → ``v1`` by ``t`` along great circles of the chosen vectors (see module doc).

    With ``base``: ``base + nuslerp(v0 - base, v1 - base, t)``, the task vectors interpolated.
    """
    if base is not None:
        return base + nuslerp(v0 - base, v1 - base, t, row_wise=row_wise, flatten=flatten, eps=eps)
    shape = v0.shape
    if flatten or v0.dim() <= 1:
        x, y = v0.reshape(1, -1), v1.reshape(1, -1)
    elif row_wise:
        x, y = v0.movedim(0, -1), v1.movedim(0, -1)
        x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    else:
        x, y = v0.reshape(-1, shape[-1]), v1.reshape(-1, shape[-1])
    # Reductions in the work dtype (no float64 copies of a 600 MB matrix); coefficients in float64.
    if x.shape[0] == 1:
        xx, yy, xy = flat_stats(x, y)
        nx = torch.tensor([xx**0.5], dtype=torch.float64).clamp(min=eps)
        ny = torch.tensor([yy**0.5], dtype=torch.float64).clamp(min=eps)
        dot = torch.tensor([xy], dtype=torch.float64)
    else:
        nx = torch.linalg.vector_norm(x, dim=1).to(torch.float64).clamp(min=eps)
        ny = torch.linalg.vector_norm(y, dim=1).to(torch.float64).clamp(min=eps)
        dot = torch.linalg.vecdot(x, y, dim=1).to(torch.float64)
    cos = (dot / (nx * ny)).clamp(-1.0, 1.0)
    theta = torch.acos(cos)
    sin = torch.sin(theta)
    colinear = sin.abs() < eps
    safe = torch.where(colinear, torch.ones_like(sin), sin)
    s0 = torch.where(colinear, torch.full_like(sin, 1.0 - t), torch.sin((1.0 - t) * theta) / safe)
    s1 = torch.where(colinear, torch.full_like(sin, t), torch.sin(t * theta) / safe)
    res = torch.mul(x, s0.to(x.dtype)[:, None])
    res.addcmul_(y, s1.to(x.dtype)[:, None])
    if flatten or v0.dim() <= 1:
        return res.reshape(shape)
    if row_wise:
        moved = v0.movedim(0, -1).shape
        return res.reshape(moved).movedim(-1, 0).contiguous()
    return res.reshape(shape)


def _t_from_weights(params: dict[str, Any], n_models: int, weights: tuple[float, ...] | None) -> dict[str, Any]:
    """t or weights, not both; without t, t = w_1 / (w_0 + w_1) (0.5 without weights or when they sum to ~0)."""
    if params["t"] is not None:
        if weights is not None:
            raise MergeError("nuslerp takes t or weights (t = w1 / (w0 + w1)), not both; drop one.")
        return params
    w0, w1 = weights if weights is not None else (1.0, 1.0)
    return {**params, "t": 0.5 if abs(w0 + w1) < 1e-6 else w1 / (w0 + w1)}


METHOD = MergeMethod(
    "nuslerp", nuslerp, max_models=2, base="optional",
    summary="mergekit's NuSLERP: SLERP per tensor, row or column, optionally of task vectors around a base",
    reference="mergekit merge_methods/nuslerp.py",
    parameters=(
        Param("t", None, check_fraction, per_tensor=True,
              help="0: the first model, 1: the second (default w_1 / (w_0 + w_1)); anchors or filters allowed"),
        Param("row_wise", False, check_bool, help="with flatten=False: vectors along the first axis (columns)"),
        Param("flatten", True, check_bool, help="the whole tensor is one vector"),
        EPS,
    ),
    prepare=_t_from_weights,
)
