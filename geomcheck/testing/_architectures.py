"""One entry per backbone family of the registry: the transformers model, tokenizer and pipeline of its tiny copy.

Each ``Architecture`` says which registry model it stands for (``like``), how that model pools,
which sentence-transformers modules follow the pooling (``dense``: the output sizes of bias-free
``Dense`` layers; ``normalize``), how its tokenizer ends a text (``eos``: ``"tokenizer"`` when
``tokenizer.json`` appends EOS itself, ``"config"`` when only ``tokenizer_config.json`` asks for it,
``"none"``) and whether it ships its own modelling code (``remote_code``).

Where a tiny model differs from the model it stands for, the entry's ``note`` says so.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from geomcheck.testing import _tokenizers as toks

__all__ = ["Architecture", "ARCHITECTURES", "Size", "TINY", "build_hf_model", "finish_directory", "REMOTE_CODE_FILE"]


@dataclass(frozen=True)
class Size:
    """The transformer's shape."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 16
    intermediate: int = 128
    max_positions: int = 512
    vocab: int | None = None  # None: the tokenizer's size


TINY = Size()


@dataclass(frozen=True)
class Architecture:
    kind: str
    like: str  # the registry alias this family stands for
    pooling: str
    tokenizer: Callable[[int], Any]  # max_length -> tokenizer
    dense: tuple[int, ...] = ()
    normalize: bool = False
    eos: str = "none"  # "tokenizer", "config", "none"
    remote_code: bool = False
    note: str = ""


ARCHITECTURES: dict[str, Architecture] = {a.kind: a for a in (
    Architecture("bert", "minilm", "mean", toks.bert_tokenizer,
                 note="all-MiniLM-L6-v2 ends in Normalize; the tiny BERT has none (its files predate this table)"),
    Architecture("xlmr", "multilingual-e5-large", "mean", toks.xlmr_tokenizer),
    Architecture("gemma3", "embeddinggemma-300m", "mean", lambda n: toks.gemma_tokenizer(n), dense=(256, 64),
                 normalize=True, note="bidirectional attention (use_bidirectional_attention), Dense 4x wide then back"),
    Architecture("qwen2", "gte-qwen2-1.5b", "lasttoken", lambda n: toks.qwen_tokenizer(n, eos_in_tokenizer=False),
                 normalize=True, eos="config",
                 note="native Qwen2Model; the real model ships its own code. EOS asked for by tokenizer_config.json "
                      "only (mteb loads it with add_eos_token; the repository's files were not read)"),
    Architecture("qwen3", "qwen3-0.6b", "lasttoken", toks.qwen_tokenizer, eos="tokenizer",
                 note="Qwen3-Embedding ends in Normalize; the tiny Qwen3 has none (its files predate this table)"),
    Architecture("mistral", "e5-mistral-7b", "lasttoken", toks.mistral_tokenizer, normalize=True, eos="config"),
    Architecture("llama", "llama-embed-nemotron-8b", "mean", toks.llama3_tokenizer, normalize=True, remote_code=True,
                 note="LlamaBidirectionalModel from its own llama_bidirectional_model.py (config auto_map), as "
                      "Llama-Embed-Nemotron: the causal mask removed"),
    Architecture("gemma2", "bge-multilingual-gemma2", "lasttoken", lambda n: toks.gemma_tokenizer(n), dense=(32,),
                 note="a Dense projection after last-token pooling; bge-multilingual-gemma2's own pipeline has none"),
)}

# Llama-Embed-Nemotron's layout: config.json names LlamaBidirectionalModel through auto_map, the class
# lives beside it, and it removes the causal mask (transformers >= 5 builds a bidirectional mask when the
# config says is_causal=False; the attention layers' own flag is cleared for SDPA's fast path).
REMOTE_CODE_FILE = "llama_bidirectional_model.py"
_REMOTE_CODE = '''"""LlamaModel with the causal mask removed (bidirectional attention), as an embedding backbone."""

from transformers import LlamaConfig, LlamaModel


class LlamaBidirectionalConfig(LlamaConfig):
    model_type = "llama_bidirec"


class LlamaBidirectionalModel(LlamaModel):
    config_class = LlamaBidirectionalConfig

    def __init__(self, config):
        config.is_causal = False
        super().__init__(config)
        for layer in self.layers:
            layer.self_attn.is_causal = False
'''


def build_hf_model(kind: str, tokenizer: Any, size: Size = TINY) -> Any:
    """The transformers model of ``kind`` (float32, eval mode) with random weights from the current torch seed."""
    import torch
    import transformers as tf

    vocab = size.vocab or len(tokenizer)
    common = dict(vocab_size=vocab, hidden_size=size.hidden, num_hidden_layers=size.layers,
                  num_attention_heads=size.heads, intermediate_size=size.intermediate,
                  max_position_embeddings=size.max_positions, pad_token_id=tokenizer.pad_token_id)
    decoder = dict(common, num_key_value_heads=size.kv_heads, head_dim=size.head_dim,
                   bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if kind == "bert":
        config, cls = tf.BertConfig(**common, type_vocab_size=2), tf.BertModel
    elif kind == "xlmr":
        config, cls = tf.XLMRobertaConfig(**common, type_vocab_size=1, bos_token_id=0, eos_token_id=2), \
            tf.XLMRobertaModel
    elif kind == "qwen3":
        config, cls = tf.Qwen3Config(**dict(decoder, bos_token_id=None), tie_word_embeddings=True), tf.Qwen3Model
    elif kind == "qwen2":
        config, cls = tf.Qwen2Config(**dict(decoder, bos_token_id=None), tie_word_embeddings=True), tf.Qwen2Model
    elif kind == "mistral":
        config, cls = tf.MistralConfig(**decoder, sliding_window=None), tf.MistralModel
    elif kind == "llama":
        config, cls = tf.LlamaConfig(**decoder), tf.LlamaModel  # saved, then renamed LlamaBidirectionalModel
    elif kind == "gemma2":
        config, cls = tf.Gemma2Config(**decoder, query_pre_attn_scalar=size.head_dim, sliding_window=64), tf.Gemma2Model
    elif kind == "gemma3":
        layer_types = None if size.layers > 2 else ["sliding_attention", "full_attention"]
        config = tf.Gemma3TextConfig(**decoder, query_pre_attn_scalar=size.head_dim, sliding_window=512,
                                     layer_types=layer_types, use_bidirectional_attention=True)
        cls = tf.Gemma3TextModel
    else:  # pragma: no cover - the caller checks the kind
        raise KeyError(kind)
    config.dtype = torch.float32
    return cls(config).to(torch.float32).eval()


def finish_directory(arch: Architecture, out: pathlib.Path) -> None:
    """What the saved sentence-transformers directory lacks to be laid out like the real model's: the
    ``tokenizer_config.json`` entry asking for EOS, the remote-code class and its ``auto_map``."""
    if arch.eos == "config":  # as the repository's file says; transformers 5 takes tokenizer.json as it is
        toks.patch_tokenizer_config(out, add_eos_token=True, add_bos_token=arch.kind == "mistral")
    if arch.remote_code:
        (out / REMOTE_CODE_FILE).write_text(_REMOTE_CODE)
        path = out / "config.json"
        config = json.loads(path.read_text())
        module = REMOTE_CODE_FILE.removesuffix(".py")
        config.update(model_type="llama_bidirec", architectures=["LlamaBidirectionalModel"], is_causal=False,
                      auto_map={"AutoConfig": f"{module}.LlamaBidirectionalConfig",
                                "AutoModel": f"{module}.LlamaBidirectionalModel"})
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
