"""A recipe stage's parameters, tensor by tensor, with mergekit's precedence and gradients, for geomcheck's methods.

For tensor ``name`` of layer ``i`` in a slice of layers ``[a, b)``, a gradient is read at
``t = (i - a) / (b - a - 1)`` (``t = 1`` for a one-layer slice); a tensor outside the numbered
layers (embeddings, final norm, pooler, Dense modules) is read at ``t = 0`` with the first
slice's parameters if its name holds ``embed`` and with the last slice's otherwise — as mergekit's
planner does (``mergekit/plan.py``). A per-model parameter (``weight``, ``density``) is looked up
in that model's source, then the slice, then the recipe; a parameter of the whole merge in the
slice, then the recipe; a filter list where no filter matches passes to the next level, as in
mergekit's ``evaluate_setting``. Unset parameters take *mergekit's* defaults (ties: density 1,
normalize true; dare: rescale true, to the L1 norm; task_arithmetic: normalize false), not geomcheck's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geomcheck.errors import MergeError
from geomcheck.merge._base import layer_index
from geomcheck.merge.recipe.config import REQUIRED, Stage

__all__ = ["RecipePlan", "evaluate"]


def evaluate(setting: Any, name: str, t: float) -> Any:
    """mergekit's ``evaluate_setting``: a value, a gradient read at ``t``, or the first matching filter's value
    (None when no filter matches)."""
    if isinstance(setting, list):
        if setting and isinstance(setting[0], dict):
            for cond in setting:
                f = cond["filter"]
                if f is None or f == "*" or (name and f in name):
                    return evaluate(cond["value"], name, t)
            return None
        scaled = t * (len(setting) - 1)
        i0 = int(scaled)
        i1 = min(len(setting) - 1, i0 + 1)
        frac = scaled - i0
        return (1 - frac) * setting[i0] + frac * setting[i1]
    return setting


class RecipePlan:
    """``merge_tensor(name, tensors, base)`` for one stage: the engine's plan interface (``geomcheck.merge.files``).

    ``models``: the recipe's model references (as written) in the order the engine passes their tensors;
    ``n_layers``: the models' layer count (the slices must cover it).
    """

    def __init__(self, stage: Stage, models: Sequence[str], *, has_base: bool, n_layers: int, source: str,
                 out_dtype: Any = None, compute_dtype: Any = None):
        from geomcheck.merge.registry import get_method

        self.stage, self.models, self.has_base = stage, list(models), has_base
        self.method = get_method(stage.method.name)
        self.n_layers, self.source = n_layers, source
        self.out_dtype, self.compute_dtype = out_dtype, compute_dtype
        end = stage.slices[-1].sources[0].layer_range[1] if not stage.from_models else n_layers
        if end != n_layers:
            raise MergeError(f"{source}, line {stage.slices[-1].line}: the slices end at layer {end} but the models "
                             f"have {n_layers} layers; cover every layer (a merge that drops layers is not supported).")
        self._checked: dict[Any, dict[str, Any]] = {}

    def _where(self, name: str) -> tuple[int, float]:
        """(slice index, gradient position t) of tensor ``name``."""
        idx = layer_index(name)
        slices = self.stage.slices
        if idx is None:
            return (0 if "embed" in name else len(slices) - 1), 0.0
        for k, sl in enumerate(slices):
            a, b = sl.sources[0].layer_range or (0, self.n_layers)
            if a <= idx < b:
                return k, (idx - a) / (b - a - 1) if b - a > 1 else 1.0
        raise MergeError(f"{self.source}: tensor {name!r} is in layer {idx}, which no slice covers.")

    def _lookup(self, key: str, name: str, k: int, t: float, model: str | None) -> Any:
        sl = self.stage.slices[k]
        levels = []
        if model is not None:
            levels += [s.params for s in sl.sources if s.ref.text == model][:1]
        levels += [sl.params, self.stage.params]
        for params in levels:
            if key in params:
                value = evaluate(params[key], name, t)
                if value is not None:
                    return value
        spec = self.stage.method
        default = spec.tensor.get(key, spec.glob.get(key))
        if default is REQUIRED:
            who = f" for model {model!r}" if model is not None else ""
            raise MergeError(f"{self.source}: {spec.name} needs the parameter {key!r}{who} (tensor {name!r}); set it "
                             "in the model's, the slice's or the recipe's `parameters`.")
        return default

    def params_for(self, name: str) -> tuple[list[float] | None, dict[str, Any]]:
        """(weights, geomcheck parameters) of tensor ``name``, checked by the method."""
        spec = self.stage.method
        k, t = self._where(name)
        per_model = {key: [self._lookup(key, name, k, t, m) for m in self.models] for key in spec.tensor}
        glob = {key: self._lookup(key, name, k, t, None) for key in spec.glob}
        weights = per_model.pop("weight", None)
        params: dict[str, Any] = {}
        for key, value in {**per_model, **glob}.items():
            target = spec.rename.get(key, key)
            if target is None:
                continue
            if key == "rescale" and spec.name.startswith("dare"):
                value = "l1" if value else "none"  # mergekit 0.1.5: kept entries rescaled to the L1 norm
            elif key == "rescale":
                if value:
                    raise MergeError(f"{self.source}: rescale: true with {spec.name} (rescaling trimmed task "
                                     "vectors to their L1 norm) is not supported; remove it.")
                continue
            params[target] = value
        return weights, params

    def checked(self, name: str) -> tuple[list[float] | None, dict[str, Any]]:
        weights, params = self.params_for(name)
        key = (tuple(weights) if weights is not None else None, repr(sorted(params.items())))
        if key not in self._checked:
            try:
                full = self.method.check_params(params, len(self.models), weights)
            except MergeError as exc:
                raise MergeError(f"{self.source}: tensor {name!r}: {exc}") from None
            self._checked[key] = full
        return weights, self._checked[key]

    def merge_tensor(self, name: str, tensors: Sequence[Any], base: Any = None) -> Any:
        import torch

        from geomcheck.merge._tensor import work_dtype

        first = tensors[0]
        if not first.is_floating_point():
            return first
        weights, params = self.checked(name)
        work = work_dtype(*tensors, base)
        if self.compute_dtype == torch.float64:
            work = torch.float64
        xs = [x.to(work) for x in tensors]
        b = base.to(work) if base is not None else None
        w = weights if self.method.uses_weights else None
        if self.method.uses_weights and w is None:
            w = [1.0] * len(xs)
        out = self.method(xs, b, w, name=name, **params)
        return out.to(self.out_dtype or first.dtype).reshape(first.shape).contiguous()
