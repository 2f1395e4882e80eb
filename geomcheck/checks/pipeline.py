"""The sentence-transformers pipeline of a model directory, and how a variant's differs from its base's.

A merged model is more than its transformer weights: the pipeline around them decides what an
embedding is. mergekit writes no pipeline (arcee-ai/mergekit#286, #577), and a merged BGE model
that lost its ``1_Pooling`` folder silently fell back to mean pooling instead of CLS
(FlagEmbedding#311). ``pipeline_differences`` compares, from the files alone (no model is
loaded, any sentence-transformers file format):

- ``modules``: the module kinds of ``modules.json`` in order (Transformer → Pooling → Normalize);
- ``pooling``: the mode of the Pooling module (``1_Pooling/config.json``: ``pooling_mode``, or the
  legacy ``pooling_mode_*_token`` flags; ``include_prompt``), or why there is none;
- ``dense``: each Dense layer's in/out features, bias and activation;
- ``normalize``: whether a Normalize module ends the pipeline;
- ``prompts``, ``default prompt`` and ``similarity`` (``config_sentence_transformers.json``);
- ``max_seq_length`` (``sentence_bert_config.json``, else the tokenizer's ``model_max_length``,
  else ``max_position_embeddings``: what sentence-transformers truncates at) and ``lowercase``;
- ``tokenizer``: vocabulary size and a digest of what tokenises (``tokenizer.json``'s model, added
  tokens, normaliser, pre-tokeniser and post-processor; else the vocabulary files).

Each difference names its part, both values and what is wrong on disk:
``pooling: base cls, mine missing: 1_Pooling is listed in modules.json but its folder is missing``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geomcheck.errors import GeometryAssertionError, InvalidInputError

__all__ = ["PipelineDifference", "Pipeline", "read_pipeline", "pipeline_differences", "assert_same_pipeline",
           "PARTS"]

PARTS: tuple[str, ...] = ("modules", "pooling", "dense", "normalize", "prompts", "default prompt", "similarity",
                          "max_seq_length", "lowercase", "tokenizer")
_SPECIFIC = {"Pooling", "Dense", "Normalize"}  # module kinds with a part of their own
# what tokenises a text, in tokenizer.json (not "decoder", "truncation", "padding": those do not change an embedding)
_TOKENIZER_SECTIONS = ("model", "added_tokens", "normalizer", "pre_tokenizer", "post_processor")
_VOCAB_FILES = ("vocab.txt", "vocab.json", "merges.txt", "spiece.model", "tokenizer.model", "sentencepiece.bpe.model")
_LEGACY_POOLING = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                   "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                   "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}


@dataclass(frozen=True)
class PipelineDifference:
    """One part of the pipeline that differs: ``part`` (one of ``PARTS``), the base's and the variant's value
    as text, and ``why`` (what is wrong on the variant's disk, when something is)."""

    part: str
    base: str
    variant: str
    why: str = ""

    def message(self, name: str = "variant", base_name: str = "base") -> str:
        """``"pooling: base cls, mine missing: 1_Pooling …"``."""
        return f"{self.part}: {base_name} {self.base}, {name} {self.variant}" + (f": {self.why}" if self.why else "")

    def __str__(self) -> str:
        return self.message()


@dataclass(frozen=True)
class Pipeline:
    """What ``read_pipeline`` found: each part's value as text, and per part what is wrong on disk."""

    path: str
    values: dict[str, str]
    notes: dict[str, str] = field(default_factory=dict)
    tokenizer_sections: dict[str, str] = field(default_factory=dict)  # section or file → digest


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise _Unreadable(f"{path.name} cannot be read ({exc})") from None


class _Unreadable(Exception):
    pass


def _kind(module_type: str) -> str:
    return str(module_type).rsplit(".", 1)[-1] or "?"


def _pooling(folder: Path, rel: str) -> tuple[str, str]:
    """(mode, note) of a listed Pooling module."""
    if not folder.is_dir():
        return "missing", f"{rel} is listed in modules.json but its folder is missing (the model cannot load)"
    try:
        cfg = _json(folder / "config.json")
    except _Unreadable as exc:
        return "unreadable", f"{rel}/{exc}"
    if not isinstance(cfg, dict):
        return "missing", f"{rel}/config.json is missing (the model cannot load)"
    mode = cfg.get("pooling_mode")
    if mode is None:
        found = [m for k, m in _LEGACY_POOLING.items() if cfg.get(k)]
        mode = found or ["mean"]  # sentence-transformers' reading of a config with no flag set
    modes = [mode] if isinstance(mode, str) else list(mode)
    text = "+".join(str(m) for m in modes)
    return (text + (", prompt excluded" if cfg.get("include_prompt") is False else "")), ""


def _dense(folder: Path, rel: str) -> str:
    try:
        cfg = _json(folder / "config.json")
    except _Unreadable as exc:
        return f"unreadable ({rel}/{exc})"
    if not isinstance(cfg, dict):
        return f"missing ({rel}/config.json)"
    act = _kind(cfg.get("activation_function") or "Identity")
    bias = "" if cfg.get("bias", True) else ", no bias"
    return f"{cfg.get('in_features', '?')}→{cfg.get('out_features', '?')} {act}{bias}"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]


def _tokenizer(d: Path) -> tuple[str, dict[str, str]]:
    """("N tokens, digest D", per-section digests) of the tokenizer files in ``d``."""
    tj = d / "tokenizer.json"
    if tj.is_file():
        doc = _json(tj)
        if not isinstance(doc, dict):
            raise _Unreadable("tokenizer.json is not a JSON object")
        vocab = (doc.get("model") or {}).get("vocab")
        size = len(vocab) if isinstance(vocab, (dict, list)) else 0
        ids = {int(t["id"]) for t in doc.get("added_tokens") or () if isinstance(t, dict) and "id" in t}
        size += len(ids - set(vocab.values() if isinstance(vocab, dict) else range(size)))
        sections = {s: _digest(doc.get(s)) for s in _TOKENIZER_SECTIONS}
        return f"{size} tokens, digest {_digest([sections[s] for s in _TOKENIZER_SECTIONS])}", sections
    sections = {}
    for name in _VOCAB_FILES:
        if (d / name).is_file():
            sections[name] = hashlib.sha256((d / name).read_bytes()).hexdigest()[:12]
    if not sections:
        return "none", {}
    size = ""
    if (d / "vocab.txt").is_file():
        size = f"{len((d / 'vocab.txt').read_text(encoding='utf-8').splitlines())} tokens, "
    return f"{size}digest {_digest(sections)}", sections


def read_pipeline(path: str | os.PathLike[str]) -> Pipeline:
    """The pipeline of the model directory ``path`` (see the module doc), from its files."""
    root = Path(path)
    if not root.is_dir():
        raise InvalidInputError(f"no model directory at {str(path)!r}")
    values: dict[str, str] = {}
    notes: dict[str, str] = {}
    transformer = root
    try:
        modules = _json(root / "modules.json")
    except _Unreadable as exc:
        modules, notes["modules"] = [], str(exc)
    if modules is None:
        values["modules"] = "none"
        notes["modules"] = "no modules.json: not a sentence-transformers directory, the loader builds a default pipeline"
        values["pooling"] = "default"
        notes["pooling"] = ("no modules.json, so no pooling of its own: the loader picks one (mean for encoders, "
                            "last token for decoders)")
        kinds: list[str] = []
        dense: list[str] = []
    else:
        kinds, dense = [], []
        pooling = None
        for m in modules if isinstance(modules, list) else []:
            if not isinstance(m, dict):
                continue
            kind, rel = _kind(m.get("type", "")), str(m.get("path", ""))
            kinds.append(kind)
            if kind == "Transformer":
                transformer = root / rel
            elif kind == "Pooling" and pooling is None:
                pooling = _pooling(root / rel, rel)
            elif kind == "Dense":
                dense.append(_dense(root / rel, rel))
        values["modules"] = " → ".join(kinds) or "none"
        if pooling is None:
            stray = sorted(p.name for p in root.glob("*_Pooling") if p.is_dir())
            values["pooling"] = "none"
            notes["pooling"] = ("no Pooling module in modules.json"
                                + (f" ({', '.join(stray)} exists but is not listed)" if stray else
                                   " (1_Pooling missing)") + ": the pipeline yields no sentence embedding")
        else:
            values["pooling"] = pooling[0]
            if pooling[1]:
                notes["pooling"] = pooling[1]
    values["dense"] = "; ".join(dense) if dense else "none"
    values["normalize"] = "yes" if "Normalize" in kinds else "no"
    try:
        st = _json(root / "config_sentence_transformers.json") or {}
    except _Unreadable as exc:
        st, notes["prompts"] = {}, str(exc)
    prompts = {str(k): str(v) for k, v in (st.get("prompts") or {}).items() if v}  # "" is no prompt
    values["prompts"] = json.dumps(prompts, sort_keys=True, ensure_ascii=False) if prompts else "none"
    values["default prompt"] = str(st.get("default_prompt_name") or "none")
    values["similarity"] = str(st.get("similarity_fn_name") or "cosine")  # sentence-transformers' default
    try:
        sb = _json(transformer / "sentence_bert_config.json") or _json(root / "sentence_bert_config.json") or {}
        tok_cfg = _json(transformer / "tokenizer_config.json") or {}
        cfg = _json(transformer / "config.json") or {}
    except _Unreadable as exc:
        sb, tok_cfg, cfg = {}, {}, {}
        notes["max_seq_length"] = str(exc)
    length = sb.get("max_seq_length") or tok_cfg.get("model_max_length") or cfg.get("max_position_embeddings")
    values["max_seq_length"] = str(length) if length is not None else "none"
    values["lowercase"] = "yes" if sb.get("do_lower_case") else "no"
    try:
        values["tokenizer"], sections = _tokenizer(transformer)
    except _Unreadable as exc:
        values["tokenizer"], sections = "unreadable", {}
        notes["tokenizer"] = str(exc)
    return Pipeline(str(root), values, notes, sections)


def pipeline_differences(base: str | os.PathLike[str] | Pipeline,
                         variant: str | os.PathLike[str] | Pipeline) -> list[PipelineDifference]:
    """Every part (``PARTS``) in which the variant's pipeline differs from the base's, in ``PARTS`` order; empty
    when they are the same. Both are model directories (or ``read_pipeline`` results)."""
    b = base if isinstance(base, Pipeline) else read_pipeline(base)
    v = variant if isinstance(variant, Pipeline) else read_pipeline(variant)
    out = []
    for part in PARTS:
        bv, vv = b.values[part], v.values[part]
        if part == "modules":
            # Pooling / Dense / Normalize have parts of their own; modules names what those do not
            bk, vk = bv.split(" → "), vv.split(" → ")
            same_rest = [k for k in bk if k not in _SPECIFIC] == [k for k in vk if k not in _SPECIFIC]
            reordered = bk != vk and sorted(bk) == sorted(vk)  # the same modules in another order
            if same_rest and not reordered:
                continue
        elif bv == vv:
            continue
        why = v.notes.get(part, "")
        if part == "tokenizer" and not why:
            bs, vs = b.tokenizer_sections, v.tokenizer_sections
            changed = [s for s in dict.fromkeys([*bs, *vs]) if bs.get(s) != vs.get(s)]
            if changed:
                why = "differs in " + ", ".join(changed)
        out.append(PipelineDifference(part, bv, vv, why))
    return out


def assert_same_pipeline(base: str | os.PathLike[str], variant: str | os.PathLike[str], *, name: str = "variant",
                         base_name: str = "base") -> list[PipelineDifference]:
    """``GeometryAssertionError`` (metric ``pipeline``) naming every part in which ``variant``'s pipeline differs
    from ``base``'s (``pipeline_differences``), its first line all of them; returns [] when none does."""
    __tracebackhide__ = True
    diffs = pipeline_differences(base, variant)
    if diffs:
        raise GeometryAssertionError(
            "; ".join(d.message(name, base_name) for d in diffs)
            + f"\n{name}'s sentence-transformers pipeline differs from the base's in {len(diffs)} part"
            f"{'s' if len(diffs) > 1 else ''}: its embeddings are not what the base's pipeline would make of its "
            f"weights. Copy the base's pipeline files (modules.json, 1_Pooling/, 2_Normalize/, "
            f"config_sentence_transformers.json, sentence_bert_config.json, the tokenizer) into {variant}, or build "
            f"the merge with geomcheck merge, which keeps them.",
            metric="pipeline", value=float(len(diffs)), threshold=0.0, model=name)
    return diffs
