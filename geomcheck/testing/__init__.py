"""Tiny real models built locally, one per backbone family of the registry, for CPU tests.

``tiny_model(kind, path)`` writes a complete sentence-transformers directory (a tokenizer of the
family's class and scheme, a real ``transformers`` config with seeded random float32 weights in
safetensors, the family's pipeline after the transformer) that ``SentenceTransformer(path)``
loads offline — ``load_model(path, trust_remote_code=True)`` for ``"llama"``, which ships its
own code as Llama-Embed-Nemotron does. Nothing is downloaded: the point is a model that behaves
like the registry's real ones (same classes, module names, tokenizer classes, pooling, Dense
layers, attention mask) at a few hundred kilobytes. ``ARCHITECTURES`` lists them:

- ``"bert"``: ``BertModel`` + WordPiece ``BertTokenizer``, mean pooling — like all-MiniLM-L6-v2;
- ``"xlmr"``: ``XLMRobertaModel`` + Unigram ``XLMRobertaTokenizer``, mean — like multilingual-e5-large;
- ``"gemma3"``: ``Gemma3TextModel`` with bidirectional attention + ``GemmaTokenizer``, mean pooling,
  Dense 64→256, Dense 256→64, Normalize — like EmbeddingGemma-300M;
- ``"qwen2"`` / ``"qwen3"``: ``Qwen2Model`` / ``Qwen3Model`` + byte-level BPE ``Qwen2Tokenizer``
  (left padding), last-token pooling of the appended ``<|endoftext|>`` — like gte-Qwen2 / Qwen3-Embedding.
  Qwen3's ``tokenizer.json`` appends it; Qwen2's only ``tokenizer_config.json`` asks (``add_eos_token``);
- ``"mistral"``: ``MistralModel`` + ``LlamaTokenizer``, last token, EOS asked for by
  ``tokenizer_config.json`` only — like e5-mistral-7b-instruct;
- ``"llama"``: ``LlamaBidirectionalModel`` (its own ``llama_bidirectional_model.py``, the causal mask
  removed) + Llama 3-style byte-level BPE, mean pooling — like Llama-Embed-Nemotron-8B;
- ``"gemma2"``: ``Gemma2Model`` + ``GemmaTokenizer``, last token then a Dense projection 64→32.

``KINDS`` (bert, qwen3) are the two the first tests were written for; their files are unchanged.
``gemma3_replica(path)`` writes the EmbeddingGemma-300M shape itself with random weights (24
layers, hidden 768, vocabulary 262,144: ~1.2 GB) for memory and time benchmarks.
``noisy_copy(src, out, scale)`` copies a model directory with Gaussian noise on its weight matrices;
``hf_cache_layout`` lays a directory out as a Hugging Face hub cache.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Any

from geomcheck.errors import InvalidInputError
from geomcheck.testing._architectures import ARCHITECTURES, REMOTE_CODE_FILE, TINY, Architecture, Size
from geomcheck.testing._files import hf_cache_layout, noisy_copy
from geomcheck.testing._tokenizers import training_corpus

__all__ = ["KINDS", "ARCHITECTURES", "Architecture", "MAX_SEQ_LENGTH", "POOLING", "HIDDEN_SIZE", "REMOTE_CODE_FILE",
           "REPLICA", "gemma3_replica", "hf_cache_layout", "noisy_copy", "tiny_model", "training_corpus"]

KINDS: tuple[str, ...] = ("bert", "qwen3")
POOLING: dict[str, str] = {k: a.pooling for k, a in ARCHITECTURES.items()}
HIDDEN_SIZE = TINY.hidden  # the transformer width of every tiny model (their embedding size but for gemma2's 32)
MAX_SEQ_LENGTH = 128
# EmbeddingGemma-300M's shape (google/embeddinggemma-300m: gemma3_text, 24 layers, hidden 768, 3 heads of 256,
# 1 KV head, MLP 1152, vocabulary 262,144, 2048 positions; mean pooling, Dense 768->3072->768, Normalize)
REPLICA = Size(hidden=768, layers=24, heads=3, kv_heads=1, head_dim=256, intermediate=1152, max_positions=2048,
               vocab=262_144)


def _new_dir(path: Any) -> pathlib.Path:
    try:
        out = pathlib.Path(path)
    except TypeError:
        raise InvalidInputError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(
            f"{str(out)!r} already exists and is not an empty directory; pass a new path so that "
            "files from an older model cannot mix with the new one."
        )
    return out


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")


def tiny_model(kind: str, path: str | os.PathLike[str], *, seed: int = 0) -> pathlib.Path:
    """Write a tiny sentence-transformers model of ``kind`` (a key of ``ARCHITECTURES``) at ``path``; return the path.

    Same ``kind`` and ``seed`` give byte-identical files (weights, tokenizer, configs); another
    seed changes only the weights. The caller's torch RNG state is left untouched. ``path``
    must not exist or must be an empty directory.
    """
    if kind not in ARCHITECTURES:
        raise InvalidInputError(
            f"unknown tiny model kind {kind!r}; valid kinds are {', '.join(repr(k) for k in ARCHITECTURES)}."
        )
    _check_seed(seed)
    out = _new_dir(path)
    return _build(ARCHITECTURES[kind], out, seed, TINY, MAX_SEQ_LENGTH)


def gemma3_replica(path: str | os.PathLike[str], *, seed: int = 0) -> pathlib.Path:
    """Write a random-weight replica of EmbeddingGemma-300M (``REPLICA``: 307.6M parameters, max_seq_length 2048,
    bidirectional ``Gemma3TextModel``, mean pooling, Dense 768→3072, Dense 3072→768, Normalize) at ``path``.

    Its tokenizer is the tiny Gemma one (characters, digits one by one) padded with unused pieces to the
    262,144 rows of the embedding. About 1.2 GB on disk and 10-20 s on a 2-core CPU; peak memory ~2.5 GB."""
    _check_seed(seed)
    out = _new_dir(path)
    arch = Architecture("gemma3", "embeddinggemma-300m", "mean", lambda n: None, dense=(3072, 768), normalize=True)
    return _build(arch, out, seed, REPLICA, 2048)


def _build(arch: Architecture, out: pathlib.Path, seed: int, size: Size, max_length: int) -> pathlib.Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer
    from transformers.utils import logging as hf_logging

    from geomcheck.testing._architectures import build_hf_model, finish_directory
    from geomcheck.testing._tokenizers import gemma_tokenizer

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights"/"Writing model shards" bars are noise here
    try:
        with tempfile.TemporaryDirectory(prefix="geomcheck-tiny-") as stage:
            tokenizer = (gemma_tokenizer(max_length, vocab_size=size.vocab) if size.vocab
                         else arch.tokenizer(max_length))
            # fork_rng: the caller's global torch RNG must not depend on whether a model was built.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = build_hf_model(arch.kind, tokenizer, size)
                widths = (size.hidden, *arch.dense)
                denses = [Dense(a, b, bias=False, activation_function=torch.nn.Identity())
                          for a, b in zip(widths, widths[1:])]
            model.save_pretrained(stage, safe_serialization=True)
            del model  # the replica: one copy in memory at a time
            tokenizer.save_pretrained(stage)

            # Loading the staged HF directory through Transformer (instead of wrapping the objects)
            # proves it loads, and writes exactly what SentenceTransformer(path) will read back.
            transformer = Transformer(stage, max_seq_length=max_length if size is not TINY else None)
            modules = [transformer, Pooling(size.hidden, pooling_mode=arch.pooling), *denses,
                       *([Normalize()] if arch.normalize else [])]
            st_model = SentenceTransformer(modules=modules, device="cpu")
            out.mkdir(parents=True, exist_ok=True)
            st_model.save(str(out), create_model_card=False)
            # AutoProcessor records its load arguments ("is_local", "local_files_only", which follow
            # HF_HUB_OFFLINE) in the tokenizer config; write the tokenizer as built instead.
            tokenizer.save_pretrained(str(out))
            finish_directory(arch, out)
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
    return out
