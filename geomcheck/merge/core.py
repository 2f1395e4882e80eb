"""Merge plans and in-memory merges of state dicts.

A :class:`MergePlan` validates a method and its parameters once, then merges tensor by
tensor (:meth:`MergePlan.merge_tensor`) — the same code path for state dicts in memory
(:func:`merge_state_dicts`) and for safetensors files streamed from disk
(:func:`geomcheck.merge.files.merge_files`).

Dtypes: floating tensors are merged in float32 (float64 when any input is float64) and
cast back to the first model's dtype, so bf16 in gives bf16 out computed in float32.
Non-floating tensors (position ids, integer buffers) are taken from the first model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from geomcheck.errors import IncompatibleModelsError, MergeError, NonFiniteWeightsError
from geomcheck.merge._base import MergeMethod, check_weights, count_layers, resolve_setting
from geomcheck.merge._tensor import work_dtype
from geomcheck.merge.registry import METHODS, get_method

__all__ = ["MergePlan", "plan_merge", "check_compatible", "check_finite", "count_non_finite", "merge_state_dicts"]

_FINITE_CHUNK = 1 << 22  # entries per isfinite pass: the bool mask stays at 4 MB for any tensor size


@dataclass(frozen=True)
class MergePlan:
    """A validated merge: method, weights, parameters and the layer count for depth anchors."""

    method: MergeMethod
    n_models: int
    has_base: bool
    weights: tuple[float, ...] | None
    params: Mapping[str, Any]
    n_layers: int

    def tensor_params(self, name: str) -> dict[str, Any]:
        """The parameters for tensor ``name``: per-tensor settings (anchors, filters) resolved to numbers."""
        out = dict(self.params)
        for key in self.method.per_tensor:
            if out.get(key) is not None:
                out[key] = resolve_setting(out[key], name, self.n_layers, what=key)
        return out

    def merge_tensor(self, name: str, tensors: Sequence[torch.Tensor], base: torch.Tensor | None = None) -> torch.Tensor:
        """Merge one tensor; returns a contiguous tensor of the first model's dtype and shape."""
        first = tensors[0]
        if not first.is_floating_point():
            return first
        work = work_dtype(*tensors, base)
        xs = [t.to(work) for t in tensors]
        b = base.to(work) if base is not None else None
        out = self.method(xs, b, list(self.weights) if self.weights is not None else None, name=name,
                          **self.tensor_params(name))
        return out.to(first.dtype).reshape(first.shape).contiguous()


def plan_merge(method: str | MergeMethod, n_models: int, *, has_base: bool, weights: Sequence[float] | None = None,
               names: Sequence[str] = (), params: Mapping[str, Any] | None = None) -> MergePlan:
    """Check the method against the number of models, the base, the weights and the parameters; raise MergeError if off."""
    m = get_method(method)
    if n_models < m.min_models:
        raise MergeError(
            f"{m.name} needs at least {m.min_models} model{'s' if m.min_models > 1 else ''}"
            f"{' besides the base' if m.uses_task_vectors else ''}, got {n_models}."
        )
    if m.max_models is not None and n_models > m.max_models:
        hint = " Use multislerp or karcher for more than two." if m.pairwise else ""
        raise MergeError(f"{m.name} merges at most {m.max_models} models, got {n_models}.{hint}")
    if m.uses_task_vectors and not has_base:
        raise MergeError(f"{m.name} needs a base model (the task vectors are θ_i - base); pass base=... "
                         "(--base DIR on the command line).")
    if not m.takes_base and has_base:
        raise MergeError(f"{m.name} takes no base model; put it among the models to merge, or use a method "
                         f"that uses one ({', '.join(n for n, x in METHODS.items() if x.takes_base)}).")
    w: tuple[float, ...] | None = None
    if weights is not None:
        if not m.uses_weights:
            raise MergeError(f"{m.name} takes no weights" + (" (use t to place the result between the "
                             "two models)" if "t" in m.params else "") + ".")
        w = tuple(check_weights(weights, n_models, method=m.name))
    elif m.uses_weights:
        w = (1.0,) * n_models
    full = m.check_params(dict(params or {}), n_models, w if weights is not None else None)
    return MergePlan(m, n_models, has_base, w, full, count_layers(list(names)))


def check_compatible(shapes: Sequence[Mapping[str, tuple[int, ...]]], labels: Sequence[str]) -> None:
    """Same tensor names and shapes in every model; else IncompatibleModelsError naming the first difference."""
    ref, ref_label = shapes[0], labels[0]
    for other, label in zip(shapes[1:], labels[1:]):
        missing = [k for k in ref if k not in other]
        if missing:
            raise IncompatibleModelsError(
                f"{label} has no tensor {missing[0]!r} that {ref_label} has ({len(missing)} missing in all); "
                "merge models of the same architecture."
            )
        extra = [k for k in other if k not in ref]
        if extra:
            raise IncompatibleModelsError(
                f"{label} has tensor {extra[0]!r} that {ref_label} lacks ({len(extra)} extra in all); "
                "merge models of the same architecture."
            )
        for k, s in ref.items():
            if tuple(other[k]) != tuple(s):
                raise IncompatibleModelsError(
                    f"tensor {k!r} has shape {tuple(s)} in {ref_label} but {tuple(other[k])} in {label}; "
                    "merge models of the same architecture and vocabulary."
                )


def count_non_finite(t: torch.Tensor) -> int:
    """How many entries of ``t`` are NaN or ±inf (0 for a non-floating tensor); chunked, so memory stays small."""
    if not t.is_floating_point():
        return 0
    flat = t.reshape(-1)
    return sum(int(torch.count_nonzero(~torch.isfinite(flat[i : i + _FINITE_CHUNK])))
               for i in range(0, flat.numel(), _FINITE_CHUNK))


def check_finite(t: torch.Tensor, name: str, where: str) -> None:
    """``NonFiniteWeightsError`` naming ``where`` (the input and its file) and tensor ``name`` when ``t`` holds NaN/inf.

    Checked on every input before merging: linear and slerp would carry a NaN into the output,
    ties would silently drop it and write a clean-looking model.
    """
    bad = count_non_finite(t)
    if bad:
        raise NonFiniteWeightsError(
            f"{where}: tensor {name!r} {tuple(t.shape)} has {bad:,} non-finite entr{'y' if bad == 1 else 'ies'} "
            f"(NaN or inf) of {t.numel():,}; a merge would spread them or hide them, so nothing was written. "
            "Use an earlier checkpoint of that model (training diverged?), or leave it out of the merge."
        )


def _as_tensor(x: Any, key: str, label: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        import numpy as np

        if isinstance(x, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(x))
    except ImportError:  # pragma: no cover
        pass
    raise MergeError(f"{label}[{key!r}] is a {type(x).__name__}, not a tensor; pass state dicts of torch tensors.")


def merge_state_dicts(method: str | MergeMethod, models: Sequence[Mapping[str, Any]],
                      base: Mapping[str, Any] | None = None, *, weights: Sequence[float] | None = None,
                      **params: Any) -> dict[str, torch.Tensor]:
    """Merge state dicts with a registered method (``METHODS``); returns a new state dict in the first model's key order.

    ``models``: the models to merge (the base is separate and not one of them); ``weights``:
    one per model where the method takes weights; ``params``: the method's parameters
    (``geomcheck.merge.METHODS[name].params`` lists them with their defaults).
    """
    if isinstance(models, Mapping) or not isinstance(models, Sequence):
        raise MergeError("models must be a list of state dicts (mappings of name -> tensor).")
    for i, sd in enumerate(models):
        if not isinstance(sd, Mapping):
            raise MergeError(f"models[{i}] is a {type(sd).__name__}, not a state dict (mapping of name -> tensor).")
    if base is not None and not isinstance(base, Mapping):
        raise MergeError(f"base is a {type(base).__name__}, not a state dict (mapping of name -> tensor).")
    plan = plan_merge(method, len(models), has_base=base is not None, weights=weights,
                      names=list(models[0]) if models else [], params=params)
    labels = [f"models[{i}]" for i in range(len(models))]
    dicts = [{k: _as_tensor(v, k, lab) for k, v in sd.items()} for sd, lab in zip(models, labels)]
    base_d = {k: _as_tensor(v, k, "base") for k, v in base.items()} if base is not None else None
    all_d = dicts + ([base_d] if base_d is not None else [])
    all_labels = labels + (["base"] if base_d is not None else [])
    check_compatible([{k: tuple(v.shape) for k, v in d.items()} for d in all_d], all_labels)
    for d, label in zip(all_d, all_labels):
        for k, v in d.items():
            check_finite(v, k, label)
    return {k: plan.merge_tensor(k, [d[k] for d in dicts], base_d[k] if base_d is not None else None)
            for k in dicts[0]}
