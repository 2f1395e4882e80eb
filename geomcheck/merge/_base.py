"""What every merge method shares: the method spec and per-tensor parameters (errors: ``geomcheck.errors``).

Nothing here imports torch: the CLI hook and ``import geomcheck.merge`` go through this module.

Per-tensor parameters follow mergekit's parameter settings (``mergekit/config.py``):

- a number applies to every tensor;
- a list of numbers is a set of *anchors* spread evenly over layer depth: layer ``i`` of
  ``L`` sits at ``x = i / (L - 1)`` (``x = 1`` when ``L == 1``, as in mergekit), and the
  value is the linear interpolation of the anchors at position ``x · (len - 1)``. Tensors
  outside the numbered layers (embeddings, final norm, pooler) take the *first* anchor,
  as mergekit's planner evaluates them at ``t = 0``;
- a dict maps name filters to values (numbers or anchor lists): the first key, in the
  dict's order, that is a substring of the tensor name wins; ``"default"`` (or ``"*"``)
  applies when none matches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from geomcheck.errors import IncompatibleModelsError, MergeError, UnknownMergeMethodError

__all__ = [
    "MergeError",
    "IncompatibleModelsError",
    "UnknownMergeMethodError",
    "MergeMethod",
    "REQUIRED",
    "layer_index",
    "count_layers",
    "resolve_setting",
    "check_setting",
    "check_weights",
    "check_fraction",
    "check_per_model",
    "check_bool",
    "check_choice",
    "check_positive",
    "check_seed",
]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Marks a method parameter that has no default."""


@dataclass(frozen=True)
class MergeMethod:
    """A registered merge method: its per-tensor function and what it accepts.

    ``fn(tensors, base, weights, *, name, **params)`` merges one tensor: ``tensors`` are the
    models' tensors (float32, or float64 when an input is float64; they may be read-only
    file mappings, so never modify them in place), ``base`` the base model's (or None),
    ``weights`` one float per model (all 1.0 unless given; None when the method takes
    none), ``name`` the tensor's name (DARE seeds its draw with it), ``params`` the
    method's parameters with per-tensor settings already resolved. ``prepare(params,
    n_models, weights_given)`` validates and normalises the parameters once per merge.
    """

    name: str
    fn: Callable[..., Any]
    summary: str
    reference: str
    min_models: int = 2
    max_models: int | None = None
    base: str = "forbidden"  # "required" | "optional" | "forbidden"
    uses_weights: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)  # accepted name -> default (or REQUIRED)
    per_tensor: tuple[str, ...] = ()  # params that may be anchors over depth or name filters
    prepare: Callable[[dict[str, Any], int, bool], dict[str, Any]] | None = None  # (params, n_models, weights_given)

    def __call__(self, tensors: Sequence[Any], base: Any = None, weights: Sequence[float] | None = None,
                 *, name: str = "", **params: Any) -> Any:
        return self.fn(tensors, base, weights, name=name, **params)


# ----------------------------------------------------------------------------- depth and filters

_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks)\.(\d+)(?:\.|$)")


def layer_index(name: str) -> int | None:
    """The layer number in a parameter name (``model.layers.3.mlp…`` → 3, ``encoder.layer.0.…`` → 0)."""
    m = _LAYER.search(name)
    return int(m.group(1)) if m else None


def count_layers(names: Sequence[str]) -> int:
    """1 + the largest layer number among ``names`` (0 when no name is in a numbered layer)."""
    idx = [i for i in (layer_index(n) for n in names) if i is not None]
    return max(idx) + 1 if idx else 0


def _interpolate_anchors(anchors: Sequence[float], x: float) -> float:
    scaled = x * (len(anchors) - 1)
    i0 = min(int(scaled), len(anchors) - 1)
    i1 = min(len(anchors) - 1, i0 + 1)
    frac = scaled - i0
    return float((1 - frac) * anchors[i0] + frac * anchors[i1])


def resolve_setting(setting: Any, name: str, n_layers: int, *, what: str = "t") -> float:
    """The value of a per-tensor setting (number, depth anchors or name filters) for tensor ``name``.

    Anchors ``[a_0 … a_{m-1}]`` at depth ``x = i / (L - 1)``: ``(1 - f)·a_j + f·a_{j+1}`` with
    ``j + f = x·(m - 1)`` (mergekit's gradient); non-layer tensors take ``a_0``.
    """
    if isinstance(setting, Mapping):
        chosen = None
        for key, value in setting.items():
            if key not in ("default", "*") and str(key) in name:
                chosen = value
                break
        if chosen is None:
            chosen = setting.get("default", setting.get("*"))
        if chosen is None:
            raise MergeError(
                f"{what} has no entry for tensor {name!r}: none of the filters "
                f"{[k for k in setting if k not in ('default', '*')]} is part of its name. "
                f"Add a \"default\" key, e.g. {{..., \"default\": 0.5}}."
            )
        return resolve_setting(chosen, name, n_layers, what=what)
    if isinstance(setting, (list, tuple)):
        idx = layer_index(name)
        if idx is None:
            return float(setting[0])
        x = idx / (n_layers - 1) if n_layers > 1 else 1.0
        return _interpolate_anchors(setting, min(max(x, 0.0), 1.0))
    return float(setting)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def check_setting(setting: Any, *, what: str, lo: float = 0.0, hi: float = 1.0) -> Any:
    """Validate a per-tensor setting: a number in [lo, hi], a non-empty list of them, or a filter dict of those."""
    if isinstance(setting, Mapping):
        if not setting:
            raise MergeError(f"{what} is an empty dict; give filters like {{\"self_attn\": 0.3, \"default\": 0.5}}.")
        return {str(k): check_setting(v, what=f"{what}[{k!r}]", lo=lo, hi=hi) for k, v in setting.items()}
    if isinstance(setting, (list, tuple)):
        if not setting:
            raise MergeError(f"{what} is an empty list; give at least one anchor, e.g. [0, 0.5, 1].")
        return [check_fraction(v, what=f"{what}[{i}]", lo=lo, hi=hi) for i, v in enumerate(setting)]
    return check_fraction(setting, what=what, lo=lo, hi=hi)


def check_fraction(value: Any, *, what: str, lo: float = 0.0, hi: float = 1.0, lo_open: bool = False) -> float:
    """A finite number in [lo, hi] (or (lo, hi] with ``lo_open``), else a MergeError saying so."""
    if not _is_number(value):
        raise MergeError(f"{what} must be a finite number, got {value!r}.")
    v = float(value)
    if v > hi or v < lo or (lo_open and v == lo):
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise MergeError(f"{what} must lie in {interval}, got {v:g}.")
    return v


def check_per_model(value: Any, n: int, *, what: str, lo: float = 0.0, hi: float = 1.0,
                    lo_open: bool = False) -> list[float]:
    """One number for all models or one per model; each in the interval."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise MergeError(f"{what} has {len(value)} values for {n} models; give one number or one per model.")
        return [check_fraction(v, what=f"{what}[{i}]", lo=lo, hi=hi, lo_open=lo_open) for i, v in enumerate(value)]
    return [check_fraction(value, what=what, lo=lo, hi=hi, lo_open=lo_open)] * n


def check_weights(weights: Any, n: int, *, method: str) -> list[float]:
    """One finite float per model."""
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        try:
            weights = list(weights)
        except TypeError:
            raise MergeError(f"weights must be a list of {n} numbers (one per model), got {weights!r}.") from None
    if len(weights) != n:
        raise MergeError(
            f"{method} got {len(weights)} weights for {n} models; give one weight per model (the base takes none)."
        )
    out = []
    for i, w in enumerate(weights):
        if not _is_number(w):
            raise MergeError(f"weights[{i}] must be a finite number, got {w!r}.")
        out.append(float(w))
    return out


def check_bool(value: Any, *, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise MergeError(f"{what} must be true or false, got {value!r}.")


def check_choice(value: Any, choices: Sequence[str], *, what: str) -> str:
    if value not in choices:
        raise MergeError(f"{what} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}.")
    return str(value)


def check_positive(value: Any, *, what: str, integer: bool = False) -> Any:
    if integer:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MergeError(f"{what} must be a positive integer, got {value!r}.")
        return value
    if not _is_number(value) or float(value) <= 0:
        raise MergeError(f"{what} must be a positive number, got {value!r}.")
    return float(value)


def check_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MergeError(f"seed must be a non-negative integer, got {value!r}.")
    return value
