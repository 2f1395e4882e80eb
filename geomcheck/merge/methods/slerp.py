"""SLERP: spherical linear interpolation of two models, tensor-wise or row-wise.

For endpoints ``a``, ``b`` (flattened) with ``cos θ = ⟨a/‖a‖, b/‖b‖⟩``::

    slerp(a, b; t) = sin((1 - t)·θ)/sin θ · a  +  sin(t·θ)/sin θ · b

The angle comes from normalised copies, but the *original* (unnormalised) tensors are
interpolated, as in mergekit's ``slerp`` (and the gist it credits, after Shoemake 1985,
"Animating rotation with quaternion curves", SIGGRAPH). When ``|cos θ| > dot_threshold``
the endpoints are (anti)parallel and ``sin θ`` is ill-conditioned, so the result is the
linear interpolation ``(1 - t)·a + t·b``. A norm at or below ``eps`` is not divided by.

``granularity="row"`` does the same for each row (leading axis) on its own sphere; a
0-D/1-D tensor (bias, norm weight) is a single row.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch

from geomcheck.errors import MergeError
from geomcheck.merge._base import EPS, REQUIRED, MergeMethod, Param, check_choice, check_fraction
from geomcheck.merge._tensor import as_rows, flat_stats, work_dtype

__all__ = ["slerp", "slerp_tensors", "slerp_coefficients", "METHOD"]

GRANULARITIES = ("tensor", "row")
ROW_BLOCK = 1 << 21  # elements per block of rows in row-wise SLERP


def slerp_coefficients(cos: float, t: float, dot_threshold: float) -> tuple[float, float]:
    """(s0, s1) with slerp = s0·a + s1·b: sin-weights, or (1 - t, t) when |cos| > dot_threshold."""
    theta = math.acos(max(-1.0, min(1.0, cos)))
    s = math.sin(theta)
    if abs(cos) > dot_threshold or s < 1e-12:  # the second only with dot_threshold = 1
        return 1.0 - t, t
    return math.sin((1.0 - t) * theta) / s, math.sin(t * theta) / s


def _slerp_tensor(a: torch.Tensor, b: torch.Tensor, t: float, dot_threshold: float, eps: float) -> torch.Tensor:
    aa, bb, ab = flat_stats(a, b)
    na, nb = aa**0.5, bb**0.5
    # mergekit normalises a copy only when its norm exceeds eps
    cos = ab / ((na if na > eps else 1.0) * (nb if nb > eps else 1.0))
    s0, s1 = slerp_coefficients(cos, t, dot_threshold)
    out = torch.mul(a, s0)  # one allocation; the inputs may be read-only file mappings
    return out.add_(b, alpha=s1)


def _slerp_rows(a: torch.Tensor, b: torch.Tensor, t: float, dot_threshold: float, eps: float) -> torch.Tensor:
    a2, b2 = as_rows(a), as_rows(b)
    out = torch.empty_like(a2)
    # Blocks of rows keep the float64 temporaries small next to a 600 MB embedding matrix.
    step = max(1, ROW_BLOCK // max(1, a2.shape[1]))
    for i in range(0, a2.shape[0], step):
        x, y = a2[i : i + step].to(torch.float64), b2[i : i + step].to(torch.float64)
        na, nb = torch.linalg.vector_norm(x, dim=1), torch.linalg.vector_norm(y, dim=1)
        one = torch.ones_like(na)
        cos = (x * y).sum(dim=1) / (torch.where(na > eps, na, one) * torch.where(nb > eps, nb, one))
        theta = torch.acos(cos.clamp(-1.0, 1.0))
        linear = (cos.abs() > dot_threshold) | (torch.sin(theta) < 1e-12)
        sin = torch.where(linear, one, torch.sin(theta))
        s0 = torch.where(linear, one * (1.0 - t), torch.sin((1.0 - t) * theta) / sin)
        s1 = torch.where(linear, one * t, torch.sin(t * theta) / sin)
        out[i : i + step] = (x * s0[:, None]).add_(y * s1[:, None])
    return out.reshape(a.shape)


def slerp_tensors(a: torch.Tensor, b: torch.Tensor, t: float, *, granularity: str = "tensor",
                  dot_threshold: float = 0.9995, eps: float = 1e-8) -> torch.Tensor:
    """SLERP of two float tensors of one shape and dtype, arguments unchecked (see :func:`slerp`)."""
    fn = _slerp_tensor if granularity == "tensor" else _slerp_rows
    return fn(a, b, t, dot_threshold, eps)


def _to_torch(x: Any, what: str) -> tuple[torch.Tensor, bool]:
    if isinstance(x, torch.Tensor):
        return x, False
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        np = None
    if np is not None and isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise MergeError(f"{what} must hold floats, got a numpy array of {x.dtype}.")
        return torch.from_numpy(np.ascontiguousarray(x)), True
    raise MergeError(f"{what} must be a torch.Tensor or numpy array, got {type(x).__name__}.")


def slerp(a: Any, b: Any, t: float, *, granularity: str = "tensor", dot_threshold: float = 0.9995,
          eps: float = 1e-8) -> Any:
    """Spherical linear interpolation from ``a`` (t = 0) to ``b`` (t = 1).

    ``s0·a + s1·b`` with ``s0 = sin((1-t)θ)/sin θ``, ``s1 = sin(tθ)/sin θ`` and θ the angle
    between the flattened tensors (or each row's, with ``granularity="row"``); linear
    interpolation where ``|cos θ| > dot_threshold``. Reference: mergekit ``slerp``;
    Shoemake 1985. Computed in float32 (float64 for float64 inputs); returns ``a``'s dtype,
    a numpy array when ``a`` is one.
    """
    ta, a_np = _to_torch(a, "a")
    tb, _ = _to_torch(b, "b")
    if ta.shape != tb.shape:
        raise MergeError(f"slerp endpoints differ in shape: a is {tuple(ta.shape)}, b is {tuple(tb.shape)}.")
    if not ta.is_floating_point() or not tb.is_floating_point():
        raise MergeError(f"slerp needs floating-point tensors, got {ta.dtype} and {tb.dtype}.")
    t = check_fraction(t, what="t")
    granularity = check_choice(granularity, GRANULARITIES, what="granularity")
    dot_threshold = check_fraction(dot_threshold, what="dot_threshold")
    eps = check_fraction(eps, what="eps", hi=float("inf"))
    work = work_dtype(ta, tb)
    out = slerp_tensors(ta.to(work), tb.to(work), t, granularity=granularity, dot_threshold=dot_threshold,
                        eps=eps).to(ta.dtype)
    return out.numpy() if a_np else out


METHOD = MergeMethod(
    "slerp", slerp_tensors, max_models=2, uses_weights=False,
    summary="spherical interpolation of two models (t=0: first, t=1: second), per tensor or per row",
    reference="mergekit slerp; Shoemake 1985 (SIGGRAPH), https://en.wikipedia.org/wiki/Slerp",
    parameters=(
        Param("t", REQUIRED, check_fraction, per_tensor=True,
              help="0: the first model, 1: the second; depth anchors or name filters allowed"),
        Param("granularity", "tensor", partial(check_choice, choices=GRANULARITIES),
              help="'tensor': one angle per tensor; 'row': one per row (leading axis)"),
        Param("dot_threshold", 0.9995, check_fraction, help="linear interpolation where |cos θ| exceeds it"),
        EPS,
    ),
)
