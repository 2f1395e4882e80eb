"""Which files of a model directory can change its vectors, and their joint digest (the fingerprint's weights part)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["model_files", "weights_digest_of_dir"]

# What in a model directory cannot change the vectors: documentation, other export formats (ONNX,
# OpenVINO, TF/Flax/Rust weights, GGUF) and training state. Everything else is hashed — weights,
# every tokenizer file (tokenizer.json, vocab.txt, merges.txt, *.model, tokenizer_config.json,
# special_tokens_map.json, added_tokens.json), config.json, modules.json, sentence_bert_config.json,
# config_sentence_transformers.json (prompts) and each module folder (1_Pooling, 2_Dense, …) — so a
# file nobody listed here still changes the fingerprint: a needless recompute beats a stale answer.
_NOT_VECTORS_DIRS = {".git", ".cache", ".huggingface", "onnx", "openvino", "coreml", "__pycache__", "runs"}
_NOT_VECTORS_SUFFIXES = {".md", ".onnx", ".onnx_data", ".msgpack", ".h5", ".ot", ".tflite", ".gguf", ".png", ".jpg",
                         ".jpeg", ".gif", ".svg", ".lock", ".tmp", ".pyc"}
_NOT_VECTORS_NAMES = {"LICENSE", "LICENSE.txt", "NOTICE", ".gitattributes", ".gitignore", "optimizer.pt",
                      "scheduler.pt", "trainer_state.json", "training_args.bin", "scaler.pt"}


def _changes_vectors(rel: Path) -> bool:
    if any(part in _NOT_VECTORS_DIRS for part in rel.parts[:-1]):
        return False
    name = rel.name
    return not (name in _NOT_VECTORS_NAMES or rel.suffix.lower() in _NOT_VECTORS_SUFFIXES
                or name.startswith("rng_state") or name.startswith("."))


def model_files(path: str | os.PathLike) -> list[Path]:
    """The files of a model directory that can change its vectors (see ``_changes_vectors``), sorted."""
    root = Path(path)
    return sorted(p for p in root.rglob("*") if p.is_file() and _changes_vectors(p.relative_to(root)))


def weights_digest_of_dir(path: str | os.PathLike) -> str | None:
    """Digest of every file of a model directory that can change its vectors (weights, tokenizer,
    configs, module folders; ``model_files``), or None if it holds no weights (``.safetensors`` / ``.bin``)."""
    from geomcheck.cache import file_digest

    root = Path(path)
    files = model_files(root)
    if not any(f.suffix in (".safetensors", ".bin", ".pt", ".pth") for f in files):
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(root).as_posix()}|{file_digest(f)}\n".encode())
    return "files:" + h.hexdigest()
