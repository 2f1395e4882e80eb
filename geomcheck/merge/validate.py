"""Checks of merge inputs on disk, for callers that turn the user's models into other files before merging.

``geomcheck.adapt.variants`` re-saves each checkpoint and merges LoRA adapters into the base
before ``merge_files`` reads them; an error found in those copies would name the copies (cache
paths) instead of what the user passed. These checks run on the user's own files, or compare
a copy with the base and name the user's path.

``check_same_base`` asks more of a merged model the user brings (``--geomcheck-merge NAME=PATH``):
that it is a merge *of this base* — same tensor names and shapes, same architecture fields in
``config.json``, same vocabulary, and weights that still point the base's way (a merge of
another base with the same shapes has weights unrelated to this one's).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from geomcheck.errors import IncompatibleModelsError
from geomcheck.merge.reader import LazyStateDict, lazy_state_dict, weight_groups

__all__ = ["check_finite_files", "check_fits_base", "check_same_base", "base_differences", "MIN_WEIGHT_COSINE"]


def _safetensors_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix == ".safetensors" else []
    if (path / "adapter_config.json").is_file():  # a peft adapter: its weights sit in the root
        return sorted(p for p in path.glob("*.safetensors") if not p.name.startswith("."))
    return [f for files in weight_groups(path).values() for f in files] if path.is_dir() else []


def check_finite_files(path: str | os.PathLike[str], what: str) -> None:
    """``NonFiniteWeightsError`` naming ``what``, the file and the tensor when a safetensors file of ``path``
    (a model directory, a peft adapter directory or a ``.safetensors`` file) holds NaN or inf.

    Tensor by tensor, one mapped at a time, so memory stays near the largest tensor.
    """
    from geomcheck.merge.core import check_finite

    for f in _safetensors_files(Path(path)):
        sd = LazyStateDict([f], str(f))
        try:
            for name in sd:
                check_finite(sd[name], name, f"{what} {str(path)!r}, file {str(f)!r}")
        finally:
            sd.close()


def check_fits_base(copy: str | os.PathLike[str], base: str | os.PathLike[str], what: str) -> None:
    """``IncompatibleModelsError`` naming ``what`` (the user's input), the tensor and both shapes when the model
    directory ``copy`` (made from that input) and ``base`` differ in a tensor's shape or in their tensor names."""
    got, ref = lazy_state_dict(copy).shapes(), lazy_state_dict(base).shapes()
    for name, shape in ref.items():
        if name not in got:
            raise IncompatibleModelsError(f"{what} has no tensor {name!r} that the base model has: it is not the "
                                          "base's architecture; use checkpoints of the same model as the base.")
        if tuple(got[name]) != tuple(shape):
            raise IncompatibleModelsError(
                f"{what} does not fit the base model: tensor {name!r} has shape {tuple(got[name])} there but "
                f"{tuple(shape)} in the base (another width or vocabulary); use checkpoints trained from this base.")
    extra = [n for n in got if n not in ref]
    if extra:
        raise IncompatibleModelsError(f"{what} has tensor {extra[0]!r} that the base model lacks ({len(extra)} "
                                      "extra): it is not the base's architecture; use checkpoints of the same model.")


# config.json fields that define the architecture (plus any key matching _ARCH_PATTERN): a model that differs in
# one of them is not a merge of the base. Keys only one side has are not compared (transformers versions write
# different defaults: rope_theta vs rope_parameters, layer_types, …).
_ARCH_KEYS = {"model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "intermediate_size", "head_dim", "max_position_embeddings", "type_vocab_size",
              "hidden_act", "hidden_activation", "layer_norm_eps", "rms_norm_eps", "position_embedding_type",
              "rope_theta", "rope_scaling", "sliding_window", "tie_word_embeddings", "d_model", "n_layer",
              "n_head", "n_embd", "n_positions", "activation_function", "partial_rotary_factor", "attention_bias",
              "mlp_bias", "embedding_size"}
_ARCH_PATTERN = re.compile(r"^(num_|n_)|_size$|_eps$|^rope_|_theta$|^max_position")
_CONFIG_IGNORED = {"_name_or_path", "transformers_version", "torch_dtype", "dtype", "initializer_range",
                   "chunk_size_feed_forward", "pad_token_id", "bos_token_id", "eos_token_id", "num_labels",
                   "output_hidden_states", "output_attentions", "use_cache"}
# A merge of the base keeps its weights pointing the base's way: each tensor v of a merge of fine-tunes of
# b is b + Δ with ‖Δ‖ well below ‖b‖ (MiniLM: every tensor of its suite LoRA model, of the SLERP of the two
# and of a SLERP at t = 0.3 at cosine ≥ 0.999 to the base's, measured), while two independently trained
# models of one architecture are near orthogonal (cosine ≈ 0). Below this cosine a tensor counts as not the
# base's; past half the parameters in such tensors the model is refused. A model fine-tuned from the same
# ancestor as the base (two siblings) may pass: only the config, vocabulary and shapes tell those apart.
MIN_WEIGHT_COSINE = 0.5


def _config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise IncompatibleModelsError(f"cannot read {str(path / 'config.json')!r}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _transformer_dir(path: Path) -> Path:
    """Where the Transformer module's files sit: the root, or the module folder ``modules.json`` names."""
    try:
        modules = json.loads((path / "modules.json").read_text())
    except (OSError, ValueError):
        return path
    for m in modules if isinstance(modules, list) else []:
        if isinstance(m, dict) and str(m.get("type", "")).endswith("Transformer"):
            return path / str(m.get("path", ""))
    return path


def vocabulary(path: str | os.PathLike[str]) -> dict[str, int] | None:
    """The token → id map of the model directory's tokenizer (``tokenizer.json``'s model and added tokens, else
    ``vocab.txt`` / ``vocab.json``), or None when it has none of those files."""
    d = _transformer_dir(Path(path))
    tj = d / "tokenizer.json"
    if tj.is_file():
        try:
            doc = json.loads(tj.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IncompatibleModelsError(f"cannot read {str(tj)!r}: {exc}") from None
        vocab = (doc.get("model") or {}).get("vocab")
        out = ({str(k): int(v) for k, v in vocab.items()} if isinstance(vocab, dict) else
               {str(piece[0]): i for i, piece in enumerate(vocab)} if isinstance(vocab, list) else {})
        for tok in doc.get("added_tokens") or ():
            if isinstance(tok, dict) and "content" in tok and "id" in tok:
                out[str(tok["content"])] = int(tok["id"])
        return out
    if (d / "vocab.txt").is_file():
        return {t: i for i, t in enumerate((d / "vocab.txt").read_text(encoding="utf-8").splitlines())}
    if (d / "vocab.json").is_file():
        try:
            return {str(k): int(v) for k, v in json.loads((d / "vocab.json").read_text(encoding="utf-8")).items()}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            raise IncompatibleModelsError(f"cannot read {str(d / 'vocab.json')!r}: {exc}") from None
    return None


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return a == b


def _weight_differences(model: Path, base: Path) -> list[str]:
    """The tensors whose cosine to the base's is below ``MIN_WEIGHT_COSINE``, when they hold most parameters."""
    import torch

    from geomcheck.merge.reader import lazy_state_dict

    got, ref = lazy_state_dict(model), lazy_state_dict(base)
    low: list[tuple[float, str, int]] = []
    total = 0
    try:
        for name in ref:
            b = ref[name]
            if not b.is_floating_point() or name not in got:
                continue
            v = got[name].to(torch.float64).flatten()
            b = b.to(torch.float64).flatten()
            nb, nv = float(torch.linalg.vector_norm(b)), float(torch.linalg.vector_norm(v))
            if nb < 1e-8 or nv < 1e-8:  # zero-initialised biases: no direction to compare
                continue
            total += b.numel()
            cos = float(v @ b) / (nb * nv)
            if cos < MIN_WEIGHT_COSINE:
                low.append((cos, name, b.numel()))
    finally:
        got.close()
        ref.close()
    share = sum(n for _, _, n in low) / total if total else 0.0
    if share <= 0.5:
        return []
    low.sort()
    named = ", ".join(f"{n!r} cosine {c:+.2f}" for c, n, _ in low[:3])
    return [f"weights: {len(low)} tensors holding {share:.0%} of the parameters point away from the base's "
            f"(cosine to the base below {MIN_WEIGHT_COSINE}; {named}{', …' if len(low) > 3 else ''}): "
            "not a merge of this base"]


def base_differences(model: str | os.PathLike[str], base: str | os.PathLike[str]) -> list[str]:
    """What tells the model directory ``model`` from a merge of ``base``, one line each (empty: it fits).

    Compared: tensor names and shapes (``check_fits_base``); the architecture fields of ``config.json``
    (``model_type``, sizes, layer counts, activation, norms, rope, …; a field only one side writes is not
    compared); the vocabulary (token → id); and the weights' direction (``MIN_WEIGHT_COSINE``: a model of
    the same shapes trained from another base is caught here). The pipeline around the weights (pooling,
    normalisation, prompts, …) is not compared: ``geomcheck.checks.pipeline`` does that, as a check.
    """
    model, base = Path(model), Path(base)
    out: list[str] = []
    mc, bc = _config(model), _config(base)
    for key in sorted(set(mc) & set(bc)):
        if key in _CONFIG_IGNORED or not (key in _ARCH_KEYS or _ARCH_PATTERN.search(key)):
            continue
        if not _same_value(mc[key], bc[key]):
            out.append(f"config.json {key}: base {bc[key]!r}, this model {mc[key]!r}")
    if bc and not mc:
        out.append("config.json: the base has one, this model has none")
    mv, bv = vocabulary(model), vocabulary(base)
    if mv is not None and bv is not None and mv != bv:
        moved = sum(1 for t, i in bv.items() if mv.get(t) != i)
        out.append(f"tokenizer vocabulary: base {len(bv)} tokens, this model {len(mv)}; {moved} of the base's "
                   "tokens are missing or have another id")
    try:
        check_fits_base(model, base, "this model")
    except IncompatibleModelsError as exc:
        out.append(f"tensors: {exc}")
        return out  # the weights cannot be compared tensor by tensor
    return out + _weight_differences(model, base)


def check_same_base(model: str | os.PathLike[str], base: str | os.PathLike[str], what: str,
                    base_name: str | None = None) -> None:
    """``IncompatibleModelsError`` naming ``what`` and every difference ``base_differences`` finds, when the
    model directory ``model`` is not a merge of ``base`` (named ``base_name`` in the message, default its path)."""
    diffs = base_differences(model, base)
    if diffs:
        raise IncompatibleModelsError(f"{what} is not a merge of the base model {base_name or str(base)!r}: "
                                      + "; ".join(diffs)
                                      + ". Merge models fine-tuned from the base under test, or test that "
                                        "model with its own base (--geomcheck-base-model).")
