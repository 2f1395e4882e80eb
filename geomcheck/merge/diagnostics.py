"""Merge diagnostics: the geometry between two endpoints (and a base), and how much of an adapter a merge kept.

Per floating tensor of two state dicts ``a`` and ``b`` (flattened):

- ``cos = ⟨a, b⟩ / (‖a‖·‖b‖)`` — exactly the cosine ``slerp`` uses (a norm ≤ eps is not
  divided by); ``angle_deg = arccos(cos)``; ``abs_cos = |cos|``;
- ``slerp_is_lerp``: ``|cos| > dot_threshold`` — tensor-wise SLERP falls back to linear
  interpolation there, so SLERP and LERP give the same tensor;
- ``norm_ratio = ‖a‖ / ‖b‖``; ``rel_change = ‖b - a‖ / ‖a‖`` (‖Δ‖/‖W‖);
- with a base: ``task_cos = cos(a - base, b - base)``, the cosine of the task vectors.

The summary adds the share of tensors and the share of parameters where SLERP equals LERP,
the parameter-weighted mean angle, and model-wide ``rel_change`` / ``task_cos`` (the same
formulas over all tensors concatenated).

:func:`adapter_share` answers "how much of the adapter is in the merge": for a merged
model ``M``, the base ``B`` and the adapter-only model ``A`` (base + LoRA, merged in),
with ``d_M = M - B`` and ``d_A = A - B`` over all tensors::

    share    = ⟨d_M, d_A⟩ / ‖d_A‖²                 (projection coefficient of d_M on d_A)
    residual = ‖d_M - share·d_A‖ / ‖d_M‖           (part of the merged delta off the adapter's direction)

``M = B + s·(A - B)`` gives ``share = s``, ``residual = 0``; ``M = A`` gives 1; a merge that
drops the adapter gives 0. Values are also reported per tensor.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from geomcheck._json import jsonable
from geomcheck.errors import MergeError
from geomcheck.merge._base import check_fraction
from geomcheck.merge._tensor import flat_dot
from geomcheck.merge.core import check_compatible

__all__ = ["TensorDiagnostics", "MergeDiagnostics", "AdapterShare", "TensorAdapterShare", "merge_diagnostics",
           "adapter_share"]


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return math.nan if num == 0 else math.inf


@dataclass(frozen=True)
class TensorDiagnostics:
    """Geometry of one tensor between two endpoints (see the module doc for each formula)."""

    name: str
    numel: int
    cos: float
    angle_deg: float
    abs_cos: float
    slerp_is_lerp: bool
    norm_ratio: float
    rel_change: float
    task_cos: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (NaN/inf → None)."""
        return {k: jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class MergeDiagnostics:
    """Per-tensor diagnostics of two endpoints and model-wide summaries."""

    tensors: tuple[TensorDiagnostics, ...]
    dot_threshold: float
    skipped: tuple[str, ...] = ()  # non-floating tensors, not merged
    global_rel_change: float = math.nan
    global_task_cos: float | None = None

    @property
    def lerp_share_tensors(self) -> float:
        """Share of (floating) tensors where SLERP equals LERP (``|cos| > dot_threshold``)."""
        return sum(t.slerp_is_lerp for t in self.tensors) / len(self.tensors) if self.tensors else math.nan

    @property
    def lerp_share_parameters(self) -> float:
        """Share of parameters in tensors where SLERP equals LERP."""
        total = sum(t.numel for t in self.tensors)
        return sum(t.numel for t in self.tensors if t.slerp_is_lerp) / total if total else math.nan

    @property
    def mean_angle_deg(self) -> float:
        """Parameter-weighted mean angle between the endpoints."""
        total = sum(t.numel for t in self.tensors)
        return sum(t.numel * t.angle_deg for t in self.tensors) / total if total else math.nan

    @property
    def max_angle_deg(self) -> float:
        return max((t.angle_deg for t in self.tensors), default=math.nan)

    def summary(self) -> dict[str, Any]:
        """The model-wide numbers, JSON-ready."""
        out = {
            "tensors": len(self.tensors),
            "parameters": sum(t.numel for t in self.tensors),
            "dot_threshold": self.dot_threshold,
            "slerp_equals_lerp_tensor_share": self.lerp_share_tensors,
            "slerp_equals_lerp_parameter_share": self.lerp_share_parameters,
            "mean_angle_deg": self.mean_angle_deg,
            "max_angle_deg": self.max_angle_deg,
            "rel_change": self.global_rel_change,
            "task_cos": self.global_task_cos,
            "skipped": list(self.skipped),
        }
        return {k: jsonable(v) for k, v in out.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "tensors": [t.to_dict() for t in self.tensors]}


@dataclass(frozen=True)
class TensorAdapterShare:
    name: str
    numel: int
    share: float
    residual: float

    def to_dict(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class AdapterShare:
    """How much of the adapter's delta the merged model's delta holds (module doc)."""

    share: float
    residual: float
    merged_delta_norm: float
    adapter_delta_norm: float
    tensors: tuple[TensorAdapterShare, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "share": jsonable(self.share), "residual": jsonable(self.residual),
            "merged_delta_norm": self.merged_delta_norm, "adapter_delta_norm": self.adapter_delta_norm,
            "tensors": [t.to_dict() for t in self.tensors],
        }


def _state(x: Any, label: str) -> Mapping[str, Any]:
    if isinstance(x, (str, os.PathLike)):
        from geomcheck.merge.reader import lazy_state_dict

        return lazy_state_dict(x)
    if isinstance(x, Mapping):
        return x
    raise MergeError(f"{label} must be a state dict or a path to a model / .safetensors file, "
                     f"got {type(x).__name__}.")


def _aligned(states: list[Mapping[str, Any]], labels: list[str]) -> Iterator[tuple[str, list[Any]]]:
    """(name, float32/float64 tensors) for each floating tensor; non-floating names yielded with None."""
    import torch

    from geomcheck.merge._tensor import work_dtype

    check_compatible([{k: tuple(v.shape) for k, v in _shapes(s).items()} for s in states], labels)
    for name in states[0]:
        ts = [s[name] for s in states]
        if not all(isinstance(t, torch.Tensor) for t in ts):
            ts = [torch.as_tensor(t) for t in ts]
        if not ts[0].is_floating_point():
            yield name, None  # type: ignore[misc]
            continue
        work = work_dtype(*ts)
        yield name, [t.to(work) for t in ts]


def _shapes(s: Mapping[str, Any]) -> Mapping[str, Any]:
    from geomcheck.merge.reader import LazyStateDict

    if isinstance(s, LazyStateDict):
        return {k: _Shape(v) for k, v in s.shapes().items()}
    return s


class _Shape:
    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape


def merge_diagnostics(a: Any, b: Any, base: Any = None, *, dot_threshold: float = 0.9995,
                      eps: float = 1e-8) -> MergeDiagnostics:
    """Per-tensor angle, |cos|, SLERP→LERP fallback, norm ratio, ‖Δ‖/‖W‖ and task-vector cosine of ``a`` vs ``b``.

    ``a``, ``b``, ``base``: state dicts, or paths to model directories / .safetensors files
    (read one tensor at a time). Formulas in the module doc.
    """
    dot_threshold = check_fraction(dot_threshold, what="dot_threshold")
    states = [_state(a, "a"), _state(b, "b")] + ([_state(base, "base")] if base is not None else [])
    labels = ["a", "b"] + (["base"] if base is not None else [])
    rows: list[TensorDiagnostics] = []
    skipped: list[str] = []
    sq_a = sq_diff = 0.0
    tv_dot = tv_a = tv_b = 0.0
    for name, ts in _aligned(states, labels):
        if ts is None:
            skipped.append(name)
            continue
        x, y = ts[0], ts[1]
        xx, yy, xy = flat_dot(x, x), flat_dot(y, y), flat_dot(x, y)
        na, nb = math.sqrt(xx), math.sqrt(yy)
        cos = xy / ((na if na > eps else 1.0) * (nb if nb > eps else 1.0))
        diff = math.sqrt(max(flat_dot(y - x, y - x), 0.0))
        task_cos = None
        if base is not None:
            da, db = x - ts[2], y - ts[2]
            dd, aa, bb = flat_dot(da, db), flat_dot(da, da), flat_dot(db, db)
            task_cos = dd / math.sqrt(aa * bb) if aa > 0 and bb > 0 else math.nan
            tv_dot, tv_a, tv_b = tv_dot + dd, tv_a + aa, tv_b + bb
        sq_a, sq_diff = sq_a + xx, sq_diff + diff * diff
        rows.append(TensorDiagnostics(
            name=name, numel=x.numel(), cos=cos, angle_deg=math.degrees(math.acos(max(-1.0, min(1.0, cos)))),
            abs_cos=abs(cos), slerp_is_lerp=abs(cos) > dot_threshold, norm_ratio=_ratio(na, nb),
            rel_change=_ratio(diff, na), task_cos=task_cos,
        ))
    g_task = None
    if base is not None:
        g_task = tv_dot / math.sqrt(tv_a * tv_b) if tv_a > 0 and tv_b > 0 else math.nan
    return MergeDiagnostics(tuple(rows), dot_threshold, tuple(skipped), _ratio(math.sqrt(sq_diff), math.sqrt(sq_a)),
                            g_task)


def adapter_share(merged: Any, base: Any, adapter: Any) -> AdapterShare:
    """share = ⟨M - B, A - B⟩ / ‖A - B‖² and residual = ‖(M - B) - share·(A - B)‖ / ‖M - B‖ (module doc).

    ``merged``, ``base``, ``adapter``: state dicts or paths; ``adapter`` is the base with the
    adapter (LoRA) merged in.
    """
    states = [_state(merged, "merged"), _state(base, "base"), _state(adapter, "adapter")]
    rows: list[TensorAdapterShare] = []
    tot_ma = tot_aa = tot_mm = 0.0
    for name, ts in _aligned(states, ["merged", "base", "adapter"]):
        if ts is None:
            continue
        dm, da = ts[0] - ts[1], ts[2] - ts[1]
        ma, aa, mm = flat_dot(dm, da), flat_dot(da, da), flat_dot(dm, dm)
        tot_ma, tot_aa, tot_mm = tot_ma + ma, tot_aa + aa, tot_mm + mm
        rows.append(TensorAdapterShare(name, dm.numel(), *_share(ma, aa, mm)))
    share, residual = _share(tot_ma, tot_aa, tot_mm)
    return AdapterShare(share, residual, math.sqrt(tot_mm), math.sqrt(tot_aa), tuple(rows))


def _share(ma: float, aa: float, mm: float) -> tuple[float, float]:
    if aa <= 0:
        return math.nan, (0.0 if mm <= 0 else 1.0)
    s = ma / aa
    # ‖d_M - s·d_A‖² = ‖d_M‖² - ⟨d_M, d_A⟩²/‖d_A‖²
    res_sq = max(mm - ma * ma / aa, 0.0)
    return s, (math.sqrt(res_sq / mm) if mm > 0 else 0.0)
