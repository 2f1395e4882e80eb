"""How a model directory becomes a sentence-transformers pipeline (transformer → pooling → normalize).

``TEXT_ONLY`` pins the Transformer module to plain-text inputs; ``kind_of`` tells decoders
from encoders by their config; ``build_pipeline`` builds the modules for a local directory.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geomcheck.errors import ModelLoadError
from geomcheck.models.spec import ModelSpec

__all__ = ["TEXT_ONLY", "DECODER_TYPES", "kind_of", "read_json", "build_pipeline", "quiet_progress",
           "restore_special_tokens"]

DECODER_TYPES = {"qwen2", "qwen3", "llama", "mistral", "gemma", "gemma2", "gemma3_text", "gemma3", "phi3",
                 "smollm3", "olmo", "gpt2", "gpt_neox", "falcon", "mixtral", "qwen2_moe", "qwen3_moe"}
# Texts go to the model as plain text. Left to infer its inputs, sentence-transformers 6 sees a
# tokenizer's chat template and renders every string as a chat turn (system prompt, role
# markers), which changes the embeddings completely (SmolLM2 paper silhouette +0.146 -> -0.148).
TEXT_ONLY = {
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "module_output_name": "token_embeddings",
}


def read_json(path: Path) -> dict:
    """A JSON file of a model directory, or a ``ModelLoadError`` naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None


def kind_of(config: dict) -> str:
    """``"llm"`` for decoder architectures (causal LM heads, known decoder types), else ``"encoder"``; a
    decoder type whose config turns causal attention off (``is_causal: false``, or Gemma 3's
    ``use_bidirectional_attention: true``, as EmbeddingGemma) is an encoder: mean pooling, encoder recipes."""
    archs = config.get("architectures") or []
    if any(a.endswith("ForCausalLM") for a in archs) or config.get("model_type") in DECODER_TYPES:
        bidirectional = config.get("is_causal") is False or config.get("use_bidirectional_attention") is True
        return "encoder" if bidirectional else "llm"
    return "encoder"


def build_pipeline(path: Path, name: str, spec: ModelSpec | None, *, device: str, torch_dtype: Any,
                   pooling: str | None, trust: bool) -> Any:
    """The ``SentenceTransformer`` of the directory ``path`` (``name`` for messages; ``spec`` from the registry)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Pooling,
        Transformer,
    )

    kwargs = dict(model_kwargs={"dtype": torch_dtype}, processor_kwargs={}, config_kwargs={})
    if trust:
        for k in kwargs.values():
            k["trust_remote_code"] = True
    if (path / "modules.json").is_file():
        model = SentenceTransformer(str(path), device=device, trust_remote_code=trust, local_files_only=True,
                                    model_kwargs=kwargs["model_kwargs"])
        if pooling is not None:
            idx = next((i for i, m in enumerate(model) if isinstance(m, Pooling)), None)
            if idx is None:
                raise ModelLoadError(f"{name}: its pipeline has no Pooling module to set pooling={pooling!r} on")
            if model[idx].get_config_dict().get("pooling_mode") != pooling:
                model[idx] = Pooling(model[idx].get_embedding_dimension(), pooling)
        return model
    config = read_json(path / "config.json")
    kind = spec.kind if spec else kind_of(config)
    mode = pooling or (spec.pooling if spec else ("lasttoken" if kind == "llm" else "mean"))
    transformer = Transformer(str(path), **kwargs, **TEXT_ONLY)
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), mode)]
    if spec is not None and spec.normalize:
        modules.append(Normalize())
    return SentenceTransformer(modules=modules, device=device)


def restore_special_tokens(model: Any, path: Path) -> tuple[str, ...]:
    """Make the tokenizer end texts with EOS where the directory's ``tokenizer_config.json`` asks for it
    (``add_eos_token: true``) and its ``tokenizer.json`` does not; returns what was changed (empty: nothing).

    transformers < 5 rewrote the post-processor from those flags at load time; transformers >= 5 takes
    ``tokenizer.json`` as it is and drops the flags, silently. A last-token-pooling model trained on the
    EOS state (e5-mistral-7b-instruct: its ``tokenizer.json`` adds only ``<s>``; mteb loads gte-Qwen2 with
    ``add_eos_token`` too) then pools the last *content* token instead. BOS stays as the tokenizer had it
    unless the file says ``add_bos_token`` (rebuilding the post-processor from the flags alone would drop it)."""
    tok = getattr(model, "tokenizer", None)
    try:
        config = json.loads((path / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return ()
    if tok is None or not isinstance(config, dict) or config.get("add_eos_token") is not True:
        return ()
    eos, bos = getattr(tok, "eos_token_id", None), getattr(tok, "bos_token_id", None)
    setter = getattr(type(tok), "add_eos_token", None)
    if eos is None or not (isinstance(setter, property) and setter.fset is not None):
        return ()
    from geomcheck.models._checks import PROBE

    ids = tok(PROBE)["input_ids"]
    if ids and ids[-1] == eos:
        return ()
    had_bos = bool(ids) and bos is not None and ids[0] == bos
    want_bos = bool(config.get("add_bos_token", had_bos))
    tok.add_bos_token = want_bos
    tok.add_eos_token = True
    ids = tok(PROBE)["input_ids"]
    if not ids or ids[-1] != eos or (bos is not None and (ids[0] == bos) != want_bos):
        raise ModelLoadError(f"{path}: tokenizer_config.json asks for an EOS token at the end of every text "
                             f"(add_eos_token), and the tokenizer could not be made to append it")
    return ("eos appended (tokenizer_config.json add_eos_token)",)


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """transformers' progress bars ("Loading weights", "Writing model shards") off while geomcheck loads
    or saves a model: they would print into test output and CLI tables. Its load report (missing and
    unexpected tensors) is off too: ``load_model`` checks the same (``_checks.check_weights``) and says it
    as an error or in ``Embedder.dropped_weights``. So is its tensor-parallel check, which transformers 5
    runs exactly when that report is quieted and which lists every tensor as "not sharded" (no model is
    sharded here). Restored afterwards."""
    import logging

    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    loggers = [logging.getLogger(n) for n in ("transformers.modeling_utils", "transformers.distributed.tensor_parallel")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if was_on:
            hf_logging.enable_progress_bar()
