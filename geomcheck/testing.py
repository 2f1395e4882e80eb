"""Tiny real models built locally: a BERT-like encoder and a Qwen3-like decoder, for CPU tests.

``tiny_model("bert", path)`` / ``tiny_model("qwen3", path)`` write a complete
sentence-transformers directory (tokenizer trained here on integer-sequence text, a real
``transformers`` config with seeded random float32 weights in safetensors, the
Transformer → Pooling pipeline) that ``SentenceTransformer(path)`` loads offline. Nothing
is downloaded: the point is a model that behaves like the registry's real ones (same
classes, module names, tokenizer classes, pooling) at a few hundred kilobytes.

- ``"bert"``: ``BertModel`` + ``BertTokenizer`` (WordPiece, ``[CLS] … [SEP]``, right
  padding), mean pooling — like all-MiniLM-L6-v2.
- ``"qwen3"``: ``Qwen3Model`` + ``Qwen2Tokenizer`` (byte-level BPE with Qwen's
  pre-tokenizer, ``<|endoftext|>`` appended as EOS and used as pad, left padding),
  last-token pooling — like Qwen3-Embedding-0.6B.

``noisy_copy(src, out, scale)`` copies any model directory with Gaussian noise added to its
weight matrices: a known, graded damage for testing regression gates (``geomcheck.checks.baseline``).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import string
import tempfile
from collections.abc import Iterator
from typing import Any

from geomcheck.errors import InvalidInputError

__all__ = ["KINDS", "MAX_SEQ_LENGTH", "POOLING", "HIDDEN_SIZE", "hf_cache_layout", "noisy_copy", "tiny_model",
           "training_corpus"]

KINDS: tuple[str, ...] = ("bert", "qwen3")
POOLING: dict[str, str] = {"bert": "mean", "qwen3": "lasttoken"}
HIDDEN_SIZE = 64  # the embedding dimension of every tiny model
MAX_SEQ_LENGTH = 128
_BERT_BPE_VOCAB = 256  # learned pieces; the 5 BERT specials come on top
_QWEN_BPE_VOCAB = 320  # byte-level BPE starts from all 256 bytes + <|endoftext|>
_BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_QWEN_EOS = "<|endoftext|>"


def training_corpus() -> list[str]:
    """The tokenizer's training text: integer sequences ``"2, 3, 5, 7"`` from simple arithmetic.

    Consecutive runs, multiples of k, squares, cubes, triangular numbers, Fibonacci numbers
    and primes (sieve of Eratosthenes); deterministic, no I/O.
    """
    lines: list[str] = []

    def add(terms: Iterator[int] | list[int]) -> None:
        lines.append(", ".join(str(t) for t in terms))

    for start in range(0, 1000, 37):
        add(range(start, start + 20))
    for k in range(2, 40):
        add(k * i for i in range(1, 25))
    add(i * i for i in range(100))
    add(i**3 for i in range(40))
    add(i * (i + 1) // 2 for i in range(80))
    fib = [0, 1]
    while len(fib) < 60:
        fib.append(fib[-1] + fib[-2])
    add(fib)
    sieve = bytearray([1]) * 2000
    sieve[:2] = b"\x00\x00"
    for p in range(2, 45):
        if sieve[p]:
            sieve[p * p :: p] = bytearray(len(sieve[p * p :: p]))
    primes = [n for n, is_prime in enumerate(sieve) if is_prime]
    for i in range(0, len(primes), 30):
        add(primes[i : i + 30])
    return lines


def tiny_model(kind: str, path: str | os.PathLike[str], *, seed: int = 0) -> pathlib.Path:
    """Write a tiny sentence-transformers model of ``kind`` ("bert" or "qwen3") at ``path``; return the path.

    Same ``kind`` and ``seed`` give byte-identical files (weights, tokenizer, configs); another
    seed changes only the weights. The caller's torch RNG state is left untouched. ``path``
    must not exist or must be an empty directory.
    """
    if kind not in KINDS:
        raise InvalidInputError(
            f"unknown tiny model kind {kind!r}; valid kinds are {', '.join(repr(k) for k in KINDS)}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        out = pathlib.Path(path)
    except TypeError:
        raise InvalidInputError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(
            f"{str(out)!r} already exists and is not an empty directory; pass a new path so that "
            "files from an older model cannot mix with the new one."
        )

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights"/"Writing model shards" bars are noise here
    try:
        with tempfile.TemporaryDirectory(prefix="geomcheck-tiny-") as stage:
            tokenizer = _bert_tokenizer() if kind == "bert" else _qwen3_tokenizer()
            # fork_rng: the caller's global torch RNG must not depend on whether a model was built.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = _bert_model(tokenizer) if kind == "bert" else _qwen3_model(tokenizer)
            model.save_pretrained(stage, safe_serialization=True)
            tokenizer.save_pretrained(stage)

            # Loading the staged HF directory through Transformer (instead of wrapping the objects)
            # proves it loads, and writes exactly what SentenceTransformer(path) will read back.
            transformer = Transformer(stage)
            pooling = Pooling(HIDDEN_SIZE, pooling_mode=POOLING[kind])
            st_model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
            out.mkdir(parents=True, exist_ok=True)
            st_model.save(str(out), create_model_card=False)
            # AutoProcessor records its load arguments ("is_local", "local_files_only", which follow
            # HF_HUB_OFFLINE) in the tokenizer config; write the tokenizer as built instead.
            tokenizer.save_pretrained(str(out))
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
    return out


def noisy_copy(
    src_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    scale: float = 0.4,
    seed: int = 0,
) -> pathlib.Path:
    """Copy the model directory ``src_dir`` to ``out_dir`` with noise on its weight matrices; return ``out_dir``.

    Every file is copied; in each ``*.safetensors`` file every floating-point tensor with
    ``ndim >= 2`` becomes ``W + scale * std(W) * Z``, ``Z ~ N(0, 1)`` drawn elementwise
    (biases, LayerNorm vectors and integer buffers are kept). Tensors are visited in sorted
    file / key order from one ``torch.Generator`` seeded with ``seed``, so the same source,
    ``scale`` and ``seed`` give byte-identical weights; dtypes, shapes and file metadata are
    kept. ``scale=0`` gives an exact copy. ``out_dir`` must not exist or be empty.

    On all-MiniLM-L6-v2 and the paper dataset, scale 0.4 moves Davies-Bouldin (true labels)
    from 3.10 to 3.65 / 3.66 / 3.89 (seeds 0 / 1 / 2), the silhouette from -0.092 to -0.110 /
    -0.106 / -0.121, and gives a linear CKA to the clean model of 0.91 / 0.85 / 0.89
    (``bench/baseline_tolerances.py`` measures more).
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale >= 0 or scale == float("inf"):
        raise InvalidInputError(f"scale must be a finite number >= 0 (noise std in units of std(W)), got {scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    src, out = pathlib.Path(src_dir), pathlib.Path(out_dir)
    if not src.is_dir():
        raise InvalidInputError(f"{str(src)!r} is not a model directory")
    weights = sorted(p for p in src.rglob("*.safetensors") if p.is_file())
    if not weights:
        raise InvalidInputError(
            f"{str(src)!r} holds no *.safetensors weights; noisy_copy reads safetensors only "
            "(convert .bin weights with save_pretrained(..., safe_serialization=True))"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(f"{str(out)!r} already exists and is not an empty directory; pass a new path")

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, out, dirs_exist_ok=True,
                    ignore=lambda _dir, names: [n for n in names if n.endswith(".safetensors")])
    gen = torch.Generator().manual_seed(seed)
    for path in weights:
        tensors: dict[str, Any] = {}
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
            for key in sorted(f.keys()):
                t = f.get_tensor(key)
                if t.ndim >= 2 and t.is_floating_point() and scale > 0:
                    w = t.to(torch.float32)
                    noise = torch.randn(w.shape, generator=gen, dtype=torch.float32)
                    t = (w + (scale * float(w.std())) * noise).to(t.dtype)
                tensors[key] = t.contiguous()
        dest = out / path.relative_to(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(dest), metadata=metadata)
    return out


def _bert_tokenizer() -> Any:
    """A WordPiece ``BertTokenizer`` whose vocabulary is learned by BPE on :func:`training_corpus`.

    WordPiece vocabularies are learned with BPE merges over word pieces (what
    ``tokenizers.trainers.WordPieceTrainer`` does); see Wu et al. 2016, arXiv:1609.08144.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertTokenizer

    # WordPieceTrainer gives "##x" pieces ids in hash-map order, so its vocabulary changes from
    # run to run (ties at the cut-off), which would change embeddings for the same seed. So train
    # plain BPE, whose alphabet is sorted, on words where every non-initial character is a
    # distinct private-use symbol, then spell those symbols back as "##" pieces.
    initial = string.digits + string.ascii_lowercase
    cont = {c: chr(0xE000 + i) for i, c in enumerate(initial)}
    back = {v: k for k, v in cont.items()}
    splitter = pre_tokenizers.BertPreTokenizer()  # BertTokenizer's own pre-tokenizer

    def marked(line: str) -> str:
        words = (w for w, _ in splitter.pre_tokenize_str(line.lower()))
        return " ".join(w[0] + "".join(cont.get(c, c) for c in w[1:]) for w in words)

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=_BERT_BPE_VOCAB,
        # Letters, punctuation and their "##" forms, so any ASCII prompt avoids [UNK].
        initial_alphabet=list(initial + string.punctuation) + list(cont.values()),
        show_progress=False,
    )
    backend.train_from_iterator((marked(line) for line in training_corpus()), trainer)

    vocab = {token: i for i, token in enumerate(_BERT_SPECIALS)}
    for piece, _ in sorted(backend.get_vocab().items(), key=lambda kv: kv[1]):
        word = "".join(back.get(c, c) for c in piece)
        vocab.setdefault("##" + word if piece[0] in back else word, len(vocab))
    return BertTokenizer(vocab=vocab, model_max_length=MAX_SEQ_LENGTH)


def _qwen3_tokenizer() -> Any:
    """A byte-level BPE ``Qwen2Tokenizer`` trained on :func:`training_corpus`, appending EOS, left padding."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    # Qwen2Tokenizer rebuilds its normalizer/pre-tokenizer on load and keeps only vocab+merges,
    # so train under that same pipeline. Its regex isolates every digit (as real Qwen does),
    # so numbers are spelled digit by digit and on this corpus the trainer learns no merges.
    backend = Tokenizer(models.BPE())
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=_QWEN_BPE_VOCAB,
        special_tokens=[_QWEN_EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte: no text is unencodable
        show_progress=False,
    )
    backend.train_from_iterator(training_corpus(), trainer)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in _bpe_merges(backend)]
    return Qwen2Tokenizer(
        vocab=backend.get_vocab(),
        merges=merges,
        eos_token=_QWEN_EOS,
        pad_token=_QWEN_EOS,
        # Like Qwen3-Embedding: EOS closes every text, so last-token pooling reads the EOS state.
        add_eos_token=True,
        padding_side="left",
        model_max_length=MAX_SEQ_LENGTH,
    )


def _bpe_merges(backend: Any) -> list[Any]:
    """The merges of a trained ``tokenizers`` BPE model (only its JSON exposes them)."""
    import json

    return list(json.loads(backend.to_str())["model"]["merges"])


def _bert_model(tokenizer: Any) -> Any:
    """A 2-layer ``BertModel`` (hidden 64, 4 heads) with random float32 weights from the current torch seed."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=2 * HIDDEN_SIZE,
        max_position_embeddings=512,
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    config.dtype = torch.float32
    return BertModel(config).to(torch.float32).eval()


def _qwen3_model(tokenizer: Any) -> Any:
    """A 2-layer ``Qwen3Model`` (hidden 64, 4 query / 2 KV heads) with random float32 weights."""
    import torch
    from transformers import Qwen3Config, Qwen3Model

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=2 * HIDDEN_SIZE,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=HIDDEN_SIZE // 4,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config.dtype = torch.float32
    return Qwen3Model(config).to(torch.float32).eval()


def hf_cache_layout(root: str | os.PathLike[str], repo_id: str, model_dir: str | os.PathLike[str],
                    rev: str = "0123456789abcdef0123456789abcdef01234567") -> pathlib.Path:
    """A Hugging Face hub cache: models--org--name/{blobs,refs/main,snapshots/<rev>} with links to blobs."""
    import hashlib

    root, model_dir = pathlib.Path(root), pathlib.Path(model_dir)
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(rev)
    (repo / "blobs").mkdir()
    snap = repo / "snapshots" / rev
    for f in model_dir.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            dest = snap / f.relative_to(model_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(blob)
    return snap
