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

from collections.abc import Sequence
from typing import Any

import torch

from geomcheck.merge._base import (
    MergeError,
    MergeMethod,
    check_bool,
    check_positive,
    check_setting,
)
from geomcheck.merge._tensor import flat_stats

__all__ = ["nuslerp", "METHOD"]


def nuslerp(v0: torch.Tensor, v1: torch.Tensor, t: float, *, row_wise: bool = False, flatten: bool = True,
            eps: float = 1e-8) -> torch.Tensor:
    """Interpolate ``v0`` → ``v1`` by ``t`` along great circles of the chosen vectors (see module doc)."""
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


def _merge(tensors: Sequence[torch.Tensor], base: torch.Tensor | None, weights: Sequence[float] | None, *,
           name: str = "", t: float | None = None, row_wise: bool = False, flatten: bool = True,
           eps: float = 1e-8) -> torch.Tensor:
    if t is None:
        w0, w1 = weights if weights is not None else (1.0, 1.0)
        t = 0.5 if abs(w0 + w1) < 1e-6 else w1 / (w0 + w1)
    if base is None:
        return nuslerp(tensors[0], tensors[1], t, row_wise=row_wise, flatten=flatten, eps=eps)
    return base + nuslerp(tensors[0] - base, tensors[1] - base, t, row_wise=row_wise, flatten=flatten, eps=eps)


def _prepare(params: dict[str, Any], n_models: int, weights_given: bool) -> dict[str, Any]:
    if params["t"] is not None:
        if weights_given:
            raise MergeError("nuslerp takes t or weights (t = w1 / (w0 + w1)), not both; drop one.")
        params["t"] = check_setting(params["t"], what="t")
    params["row_wise"] = check_bool(params["row_wise"], what="row_wise")
    params["flatten"] = check_bool(params["flatten"], what="flatten")
    params["eps"] = check_positive(params["eps"], what="eps")
    return params


METHOD = MergeMethod(
    name="nuslerp",
    fn=_merge,
    summary="mergekit's NuSLERP: SLERP per tensor, row or column, optionally of task vectors around a base",
    reference="mergekit merge_methods/nuslerp.py",
    min_models=2,
    max_models=2,
    base="optional",
    uses_weights=True,
    params={"t": None, "row_wise": False, "flatten": True, "eps": 1e-8},
    per_tensor=("t",),
    prepare=_prepare,
)
