"""A mergekit YAML recipe read into stages: what each key means, what geomcheck supports, and where a key is wrong.

The format is mergekit's (``mergekit/config.py``, 0.1.5): ``merge_method``; the inputs as
``models`` (each ``model`` with optional ``parameters``) or ``slices`` (each with ``sources``:
``model``, ``layer_range`` and optional ``parameters``, plus slice ``parameters``);
``base_model``; global ``parameters``; ``dtype``, ``out_dtype``, ``tokenizer_source``. A
parameter's value is a number (or true/false, a name), a *gradient* (a list of numbers spread
over the layers of a slice) or *filters* (a list of ``{filter: name-part, value: …}``, the
first whose filter is part of the tensor's name wins, ``{value: …}`` without a filter matches
every tensor). Several YAML documents are stages run in order; a stage with ``name: X`` can be
an input of a later one (``model: X``), as in mergekit's multi-stage recipes. A model reference
``path+adapter`` is the model with a LoRA adapter merged into it.

What geomcheck does not do is refused with the key, its line and what is supported — mergekit
silently ignores a key it does not know, geomcheck does not: layer-stacking ``passthrough``
(frankenmerges), slices that reorder or repeat layers, per-slice ``base_model``,
``modules``, ``tokenizer``/``chat_template`` and merge methods outside ``METHODS`` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geomcheck.errors import MergeError
from geomcheck.merge._base import REQUIRED  # one marker for a parameter without a default
from geomcheck.merge.recipe._yaml import LineDict, LineList, line_of

__all__ = ["REQUIRED", "MethodSpec", "METHODS", "Ref", "Source", "Slice", "Stage", "parse_stage", "DTYPES"]


@dataclass(frozen=True)
class MethodSpec:
    """A merge method as mergekit 0.1.5 declares it: per-model (``tensor``) and global parameters with mergekit's
    defaults, how it uses ``base_model``, and the geomcheck name of each parameter (``rename``; None: accepted
    and without effect on the numbers, e.g. ``int8_mask``)."""

    name: str
    tensor: Mapping[str, Any] = field(default_factory=dict)
    glob: Mapping[str, Any] = field(default_factory=dict)
    base: str = "input"  # "required": task vectors / t=0 end; "optional": origin if given; "input": one more model
    rename: Mapping[str, str | None] = field(default_factory=dict)


_GTA_GLOBAL = {"int8_mask": False, "lambda": 1.0}
_GTA_RENAME = {"weight": "weights", "lambda": "scale", "int8_mask": None}

METHODS: dict[str, MethodSpec] = {m.name: m for m in (
    MethodSpec("linear", {"weight": REQUIRED}, {"normalize": True}, "input", {"weight": "weights"}),
    MethodSpec("slerp", {}, {"t": REQUIRED}, "required"),
    MethodSpec("nuslerp", {"weight": REQUIRED}, {"nuslerp_flatten": True, "nuslerp_row_wise": False}, "optional",
               {"weight": "weights", "nuslerp_flatten": "flatten", "nuslerp_row_wise": "row_wise"}),
    MethodSpec("multislerp", {"weight": REQUIRED}, {"normalize_weights": True, "eps": 1e-8}, "optional",
               {"weight": "weights"}),
    MethodSpec("karcher", {}, {"max_iter": 10, "tol": 1e-5}, "input"),
    MethodSpec("task_arithmetic", {"weight": REQUIRED},
               {**_GTA_GLOBAL, "normalize": False, "rescale": False}, "required", _GTA_RENAME),
    MethodSpec("ties", {"weight": REQUIRED, "density": 1.0},
               {**_GTA_GLOBAL, "normalize": True, "rescale": False}, "required", _GTA_RENAME),
    MethodSpec("dare_ties", {"weight": REQUIRED, "density": 1.0},
               {**_GTA_GLOBAL, "normalize": False, "rescale": True}, "required", _GTA_RENAME),
    MethodSpec("dare_linear", {"weight": REQUIRED, "density": 1.0},
               {**_GTA_GLOBAL, "normalize": False, "rescale": True}, "required", _GTA_RENAME),
    MethodSpec("model_stock", {}, {"filter_wise": False}, "required"),
)}

DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64",
          "fp32": "F32", "fp16": "F16", "bf16": "BF16", "float": "F32", "half": "F16", "double": "F64"}

_TOP_KEYS = ("merge_method", "models", "slices", "base_model", "parameters", "dtype", "out_dtype",
             "tokenizer_source", "name")
_REFUSED_TOP = {
    "modules": "per-module recipes (`modules:`) are not supported; use `models:` or `slices:`",
    "tokenizer": "`tokenizer:` (token-level embedding surgery) is not supported; the merge keeps the base's "
                 "tokenizer — use tokenizer_source: base, or remove the key",
    "chat_template": "`chat_template:` is not supported (geomcheck merges embedding models and writes the "
                     "base's sentence-transformers pipeline); remove the key",
}


@dataclass(frozen=True)
class Ref:
    """A model reference as written: ``model`` (a path, registry alias or earlier stage) and ``lora`` (an adapter)."""

    text: str
    model: str
    lora: str | None
    line: int


@dataclass(frozen=True)
class Source:
    ref: Ref
    layer_range: tuple[int, int] | None
    params: Mapping[str, Any]
    line: int


@dataclass(frozen=True)
class Slice:
    sources: tuple[Source, ...]
    params: Mapping[str, Any]
    line: int


@dataclass(frozen=True)
class Stage:
    """One YAML document of a recipe."""

    method: MethodSpec
    slices: tuple[Slice, ...]
    base: Ref | None
    params: Mapping[str, Any]
    name: str | None = None
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: Any = None  # None | "base" | "union" | Ref
    line: int = 1
    from_models: bool = True  # `models:`, not `slices:`

    def refs(self) -> list[Ref]:
        """Every model the stage reads, base first, each once (by the text as written)."""
        seen: dict[str, Ref] = {}
        for r in ([self.base] if self.base else []) + [s.ref for sl in self.slices for s in sl.sources]:
            seen.setdefault(r.text, r)
        if isinstance(self.tokenizer_source, Ref):
            seen.setdefault(self.tokenizer_source.text, self.tokenizer_source)
        return list(seen.values())


class _Where:
    """Error messages that name the recipe and the line."""

    def __init__(self, source: str):
        self.source = source

    def __call__(self, line: int, text: str) -> MergeError:
        return MergeError(f"{self.source}, line {line}: {text}")


def _unknown(where: _Where, node: LineDict, allowed: tuple[str, ...], what: str) -> None:
    for key in node:
        if key not in allowed:
            raise where(line_of(node, key), f"{what} has no key {key!r} (mergekit would ignore it silently; "
                        f"geomcheck does not); its keys are: {', '.join(allowed)}.")


def _ref(where: _Where, value: Any, line: int, what: str) -> Ref:
    if isinstance(value, Mapping):
        raise where(line, f"{what}: give the model as a path, registry name or earlier stage "
                    "(`path+adapter` for a LoRA), not a mapping.")
    if not isinstance(value, str) or not value.strip():
        raise where(line, f"{what} must be a model path or name, got {value!r}.")
    text = value.strip()
    model, plus, lora = text.partition("+")
    if plus and (not model or not lora):
        raise where(line, f"{what} {text!r}: write a model with a LoRA adapter as MODEL+ADAPTER.")
    return Ref(text, model, lora or None, line)


def _setting(where: _Where, value: Any, line: int, what: str) -> Any:
    """A parameter setting checked for shape (numbers are checked per method when the merge is planned)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, LineDict):  # one conditional value
        return [_condition(where, value, what)]
    if isinstance(value, LineList):
        if not value:
            raise where(line_of(value, default=line), f"{what} is an empty list.")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return [float(v) for v in value]
        if all(isinstance(v, LineDict) for v in value):
            return [_condition(where, v, what) for v in value]
        raise where(line_of(value, default=line), f"{what} mixes numbers and filters; give a gradient (a list of "
                    "numbers) or a list of {filter: …, value: …} entries.")
    raise where(line, f"{what} must be a number, a list of numbers or a list of filters, got {value!r}.")


def _condition(where: _Where, node: LineDict, what: str) -> dict[str, Any]:
    _unknown(where, node, ("filter", "value"), f"a filter entry of {what}")
    if "value" not in node:
        raise where(node.line, f"a filter entry of {what} has no `value`.")
    filt = node.get("filter")
    if filt is not None and not isinstance(filt, str):
        raise where(line_of(node, "filter"), f"`filter` must be part of a tensor name, got {filt!r}.")
    value = _setting(where, node["value"], line_of(node, "value"), what)
    if isinstance(value, list) and value and isinstance(value[0], dict):
        raise where(line_of(node, "value"), f"a filter's value in {what} cannot hold filters again.")
    return {"filter": filt, "value": value, "line": node.line}


def _params(where: _Where, node: Any, line: int, spec: MethodSpec, *, per_model: bool, what: str) -> dict[str, Any]:
    if node is None:
        return {}
    if not isinstance(node, LineDict):
        raise where(line, f"{what} `parameters` must be a mapping of name: value.")
    known = tuple(spec.tensor) + (() if per_model else tuple(spec.glob))
    out = {}
    for key, value in node.items():
        if key not in spec.tensor and key not in spec.glob:
            raise where(line_of(node, key), f"{spec.name} has no parameter {key!r} (mergekit would ignore it "
                        f"silently; geomcheck does not); its parameters are: {', '.join(known) or 'none'}.")
        if per_model and key not in spec.tensor:
            raise where(line_of(node, key), f"{key!r} is a parameter of the whole {spec.name} merge, not of one "
                        f"model; move it to the stage's (or the slice's) `parameters`.")
        out[key] = _setting(where, value, line_of(node, key), f"{key!r}")
    return out


def _layer_range(where: _Where, value: Any, line: int) -> tuple[int, int]:
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value) and value[0] < value[1])
    if not ok:
        raise where(line, f"layer_range must be [first, end) with 0 <= first < end, got {value!r}.")
    return int(value[0]), int(value[1])


def parse_stage(doc: Any, source: str, index: int) -> Stage:
    """One YAML document of a recipe as a :class:`Stage`; MergeError naming the line of what is wrong."""
    where = _Where(source)
    if not isinstance(doc, LineDict):
        raise where(line_of(doc, default=1), f"document {index + 1} is not a mapping of recipe keys.")
    for key, why in _REFUSED_TOP.items():
        if key in doc:
            raise where(line_of(doc, key), why + ".")
    _unknown(where, doc, _TOP_KEYS, "a mergekit recipe")
    if "merge_method" not in doc:
        raise where(doc.line, "the recipe has no `merge_method`.")
    name = doc["merge_method"]
    if name == "passthrough":
        raise where(line_of(doc, "merge_method"), "merge_method passthrough (stacking or reordering layers: a "
                    "frankenmerge) is not supported: geomcheck merges layer i of each model with layer i, so the "
                    f"result has the base's architecture. Supported: {', '.join(METHODS)}.")
    if name not in METHODS:
        raise where(line_of(doc, "merge_method"), f"merge_method {name!r} is not supported; supported: "
                    f"{', '.join(METHODS)}.")
    spec = METHODS[name]
    has = [k for k in ("models", "slices") if k in doc]
    if len(has) != 1:
        raise where(doc.line, "give exactly one of `models:` and `slices:`" + (" (both are given)." if has else "."))
    base = _ref(where, doc["base_model"], line_of(doc, "base_model"), "base_model") if "base_model" in doc else None
    slices: list[Slice] = []
    if "models" in doc:
        items = doc["models"]
        if not isinstance(items, LineList) or not items:
            raise where(line_of(doc, "models"), "`models` must be a non-empty list of `- model: …` entries.")
        sources = []
        for item in items:
            if not isinstance(item, LineDict) or "model" not in item:
                raise where(line_of(item, default=line_of(doc, "models")), "each entry of `models` needs `model:`.")
            _unknown(where, item, ("model", "parameters"), "an entry of `models`")
            sources.append(Source(_ref(where, item["model"], line_of(item, "model"), "model"), None,
                                  _params(where, item.get("parameters"), line_of(item, "parameters"), spec,
                                          per_model=True, what="a model's"), item.line))
        slices.append(Slice(tuple(sources), {}, items.line))
    else:
        items = doc["slices"]
        if not isinstance(items, LineList) or not items:
            raise where(line_of(doc, "slices"), "`slices` must be a non-empty list of `- sources: […]` entries.")
        for item in items:
            if not isinstance(item, LineDict) or "sources" not in item:
                raise where(line_of(item, default=line_of(doc, "slices")), "each slice needs `sources:`.")
            if "base_model" in item:
                raise where(line_of(item, "base_model"), "a slice's own base_model is not supported; give one "
                            "base_model for the whole recipe.")
            if "residual_weight" in item:
                raise where(line_of(item, "residual_weight"), "residual_weight is not supported.")
            _unknown(where, item, ("sources", "parameters"), "a slice")
            srcs = item["sources"]
            if not isinstance(srcs, LineList) or not srcs:
                raise where(line_of(item, "sources"), "`sources` must be a non-empty list.")
            sources = []
            for src in srcs:
                if not isinstance(src, LineDict) or "model" not in src or "layer_range" not in src:
                    raise where(line_of(src, default=line_of(item, "sources")),
                                "each source of a slice needs `model:` and `layer_range:`.")
                _unknown(where, src, ("model", "layer_range", "parameters"), "a slice source")
                sources.append(Source(_ref(where, src["model"], line_of(src, "model"), "model"),
                                      _layer_range(where, src["layer_range"], line_of(src, "layer_range")),
                                      _params(where, src.get("parameters"), line_of(src, "parameters"), spec,
                                              per_model=True, what="a slice source's"), src.line))
            slices.append(Slice(tuple(sources), _params(where, item.get("parameters"), line_of(item, "parameters"),
                                                        spec, per_model=False, what="a slice's"), item.line))
        _check_slices(where, slices)
    dtypes = {}
    for key in ("dtype", "out_dtype"):
        if key in doc:
            if doc[key] not in DTYPES:
                raise where(line_of(doc, key), f"{key} {doc[key]!r} is not one of: float32, bfloat16, float16, "
                            "float64.")
            dtypes[key] = doc[key]
    tok = doc.get("tokenizer_source")
    if tok is not None and tok not in ("base", "union"):
        tok = _ref(where, tok, line_of(doc, "tokenizer_source"), "tokenizer_source")
    stage_name = doc.get("name")
    if stage_name is not None and (not isinstance(stage_name, str) or not stage_name.strip()):
        raise where(line_of(doc, "name"), f"a stage's name must be text, got {stage_name!r}.")
    return Stage(spec, tuple(slices), base,
                 _params(where, doc.get("parameters"), line_of(doc, "parameters"), spec, per_model=False,
                         what="the recipe's"),
                 stage_name, DTYPES.get(dtypes.get("dtype", "")), DTYPES.get(dtypes.get("out_dtype", "")), tok,
                 doc.line, "models" in doc)


def _check_slices(where: _Where, slices: list[Slice]) -> None:
    """Slices that keep layer i at layer i: the same models in every slice, one range per slice, and the
    ranges covering 0, 1, … in order without a gap or a repeat."""
    models = [s.ref.text for s in slices[0].sources]
    end = 0
    for sl in slices:
        if [s.ref.text for s in sl.sources] != models:
            raise where(sl.line, f"every slice must take the same models in the same order ({', '.join(models)}); "
                        "geomcheck merges whole models, layer by layer.")
        ranges = {s.layer_range for s in sl.sources}
        if len(ranges) > 1:
            raise where(sl.line, f"the sources of this slice take different layers {sorted(ranges)}: merging "
                        "layer i of one model with layer j of another (a frankenmerge) is not supported.")
        first, last = next(iter(ranges))  # type: ignore[misc]
        if first != end:
            raise where(sl.line, f"this slice takes layers [{first}, {last}) but the slices before it end at layer "
                        f"{end}: slices must cover the layers in order, without a gap or a repeat (stacking or "
                        "reordering layers — a frankenmerge — is not supported).")
        end = last
