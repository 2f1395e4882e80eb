"""What every merge method shares: the method spec, its declared parameters and their checks, per-tensor settings.

Errors are ``geomcheck.errors``' (``MergeError`` and its kin).

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
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any

from geomcheck.errors import MergeError

__all__ = [
    "MergeMethod",
    "Param",
    "REQUIRED",
    "SCALE",
    "EPS",
    "normalize_param",
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

# The inputs MergeMethod hands to a method's function, each to the parameter of that name.
_INPUTS = ("tensors", "base", "weights", "name")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Marks a method parameter that has no default."""


@dataclass(frozen=True)
class Param:
    """One parameter a merge method declares: ``Param("density", 0.2, check, per_model=True, help=...)``.

    ``check(value, what=label)`` returns the normalised value or raises MergeError (None: taken
    as given). ``per_model``: one value for all models or one per model, normalised to a list
    of ``n_models`` values, each checked. ``per_tensor``: the value may also be depth anchors
    or name filters (module doc), each number checked; resolved tensor by tensor when
    merging. A parameter whose default is None is optional: None means unset and is not
    checked. ``label`` names it in error messages when that is not ``name``.
    """

    name: str
    default: Any = REQUIRED
    check: Callable[..., Any] | None = None
    per_model: bool = False
    per_tensor: bool = False
    help: str = ""
    label: str = ""

    def normalise(self, value: Any, n_models: int) -> Any:
        """``value`` checked and normalised (see the class doc)."""
        if value is None and self.default is None:
            return None
        check, what = self.check or _as_given, self.label or self.name
        if self.per_model:
            return check_per_model(value, n_models, what=what, check=check)
        if self.per_tensor:
            return check_setting(value, what=what, check=check)
        return check(value, what=what)


@dataclass(frozen=True)
class MergeMethod:
    """A registered merge method: its maths function, what it accepts, and its parameters.

    ``fn`` is the method's maths function. Calling the method (``method(tensors, base,
    weights, name=..., **params)``, one tensor at a time) calls ``fn`` with the inputs it
    names among ``tensors`` (the models' tensors: float32, or float64 when an input is
    float64; they may be read-only file mappings, so never modify them in place), ``base``
    (the base model's tensor, or None), ``weights`` (one float per model, all 1.0 unless
    given; None when the method takes none) and ``name`` (the tensor's name; DARE seeds its
    draw with it), each passed by that name; a function without a ``tensors`` parameter
    merges two models and gets their two tensors as its first two arguments. The method's
    parameters follow as keywords, per-tensor settings resolved to numbers.

    ``parameters`` declares the parameters (:class:`Param`); :meth:`check_params` validates
    and normalises them. ``prepare(params, n_models, weights)`` is only for rules across
    parameters (after each is checked; ``weights``: as given, None when not).
    """

    name: str
    fn: Callable[..., Any]
    summary: str
    reference: str
    min_models: int = 2
    max_models: int | None = None
    base: str = "forbidden"  # "required" | "optional" | "forbidden"
    uses_weights: bool = True
    parameters: tuple[Param, ...] = ()
    prepare: Callable[[dict[str, Any], int, tuple[float, ...] | None], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        names = [p.name for p in self.parameters]
        bad = [n for n in names if n in _INPUTS or names.count(n) > 1]
        if bad:
            raise MergeError(f"merge method {self.name!r}: parameter {bad[0]!r} is declared twice or is one of "
                             f"the inputs {_INPUTS}.")

    @property
    def params(self) -> dict[str, Any]:
        """Accepted parameter name -> default (or REQUIRED), in declaration order."""
        return {p.name: p.default for p in self.parameters}

    @property
    def per_tensor(self) -> tuple[str, ...]:
        """The parameters that may be depth anchors or name filters."""
        return tuple(p.name for p in self.parameters if p.per_tensor)

    @property
    def uses_task_vectors(self) -> bool:
        """Combines the models' task vectors θ_i - base: a base model is required."""
        return self.base == "required"

    @property
    def takes_base(self) -> bool:
        """Accepts a base model (required or optional)."""
        return self.base != "forbidden"

    @property
    def pairwise(self) -> bool:
        """Merges exactly two models (slerp, nuslerp)."""
        return self.max_models == 2

    def accepts(self, n_models: int) -> bool:
        """Whether it merges ``n_models`` models (besides the base)."""
        return self.min_models <= n_models and (self.max_models is None or n_models <= self.max_models)

    def check_params(self, given: Mapping[str, Any], n_models: int,
                     weights: Sequence[float] | None = None) -> dict[str, Any]:
        """Every declared parameter, given or default, checked and normalised; MergeError when one is off."""
        declared = self.params
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise MergeError(f"{self.name} has no parameter {unknown[0]!r}; its parameters are: "
                             f"{', '.join(declared) or 'none'}.")
        missing = [p.name for p in self.parameters if p.default is REQUIRED and p.name not in given]
        if missing:
            raise MergeError(f"{self.name} needs the parameter {missing[0]!r} (e.g. {missing[0]}=0.5).")
        out = {p.name: p.normalise(given.get(p.name, p.default), n_models) for p in self.parameters}
        if self.prepare is not None:
            out = self.prepare(out, n_models, tuple(weights) if weights is not None else None)
        return out

    @cached_property
    def _calling(self) -> tuple[bool, tuple[str, ...]]:
        import inspect  # here, not at the top: `import geomcheck.merge` stays quick

        names = inspect.signature(self.fn).parameters
        return "tensors" not in names, tuple(k for k in _INPUTS if k in names)

    def __call__(self, tensors: Sequence[Any], base: Any = None, weights: Sequence[float] | None = None,
                 *, name: str = "", **params: Any) -> Any:
        pair, takes = self._calling
        inputs = {"tensors": tensors, "base": base, "weights": weights, "name": name}
        return self.fn(*(tensors[:2] if pair else ()), **{k: inputs[k] for k in takes}, **params)


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


def check_setting(setting: Any, *, what: str, check: Callable[..., Any] | None = None) -> Any:
    """Validate a per-tensor setting: a number, a non-empty list of them, or a filter dict of those.

    Each number goes through ``check(value, what=...)`` (default: a fraction in [0, 1]).
    """
    check = check or check_fraction
    if isinstance(setting, Mapping):
        if not setting:
            raise MergeError(f"{what} is an empty dict; give filters like {{\"self_attn\": 0.3, \"default\": 0.5}}.")
        return {str(k): check_setting(v, what=f"{what}[{k!r}]", check=check) for k, v in setting.items()}
    if isinstance(setting, (list, tuple)):
        if not setting:
            raise MergeError(f"{what} is an empty list; give at least one anchor, e.g. [0, 0.5, 1].")
        return [check(v, what=f"{what}[{i}]") for i, v in enumerate(setting)]
    return check(setting, what=what)


def check_fraction(value: Any, *, what: str, lo: float = 0.0, hi: float = 1.0, lo_open: bool = False) -> float:
    """A finite number in [lo, hi] (or (lo, hi] with ``lo_open``), else a MergeError saying so."""
    if not _is_number(value):
        raise MergeError(f"{what} must be a finite number, got {value!r}.")
    v = float(value)
    if v > hi or v < lo or (lo_open and v == lo):
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        # the value as given (repr), not :g, which prints 1.0000001 as "1" and hides why it is out;
        # through float/int so that a numpy scalar reads 1.0000001, not np.float64(1.0000001)
        shown = repr(float(value)) if isinstance(value, float) else repr(int(value))
        raise MergeError(f"{what} must lie in {interval}, got {shown}.")
    return v


def check_per_model(value: Any, n: int, *, what: str, check: Callable[..., Any] | None = None) -> list[float]:
    """One value for all models or one per model, each through ``check(value, what=...)`` (default: a fraction in [0, 1])."""
    check = check or check_fraction
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise MergeError(f"{what} has {len(value)} values for {n} models; give one number or one per model.")
        return [check(v, what=f"{what}[{i}]") for i, v in enumerate(value)]
    return [check(value, what=what)] * n


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


def check_seed(value: Any, *, what: str = "seed") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MergeError(f"{what} must be a non-negative integer, got {value!r}.")
    return value


def _as_given(value: Any, *, what: str) -> Any:
    return value


# ----------------------------------------------------------------------------- parameters several methods share

SCALE = Param("scale", 1.0, partial(check_fraction, lo=-math.inf, hi=math.inf), label="scale (λ)",
              help="λ, the factor of the combined task vector (mergekit's lambda)")
EPS = Param("eps", 1e-8, check_positive, help="norms at or below eps are not divided by")


def normalize_param(default: bool) -> Param:
    """The ``normalize`` switch: divide the weighted sum by the sum of the weights."""
    return Param("normalize", default, check_bool, help="divide the weighted sum by Σ w_i")
