"""``Embedder``: a sentence-transformers pipeline with a fingerprint, batching and a cache.

``Embedder.encode(texts)`` returns exactly what ``SentenceTransformer.encode`` returns for
the same pipeline and prompt (float32, one row per text, in input order). On CUDA an
out-of-memory error halves the batch size and retries.

Texts are encoded in chunks of ``Embedder.chunk_size`` in input order (each chunk sorted by
length into batches): memory holds one chunk's tokens besides the output matrix, and with the
cache on each finished chunk is kept on disk (``geomcheck.cache.ChunkStore``), so a run killed
at 70 % resumes at 70 %. A progress bar with rate and ETA goes to stderr for large encodes
(``progress=``: True, False, or None for "from ``PROGRESS_MIN_TEXTS`` texts on").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geomcheck._json import jsonable
from geomcheck.errors import EmbeddingError, InvalidInputError
from geomcheck.models._chunks import PROGRESS_MIN_TEXTS, encode_chunked
from geomcheck.models.files import model_files, weights_digest_of_dir

__all__ = ["Embedder", "EmbeddedDataset", "TOKEN_BUDGETS", "CHUNK_TEXTS", "PROGRESS_MIN_TEXTS", "model_files",
           "weights_digest_of_dir"]  # the last two live in geomcheck.models.files

if TYPE_CHECKING:  # pragma: no cover
    from geomcheck.data import SequenceDataset
    from geomcheck.models.spec import ModelSpec

log = logging.getLogger("geomcheck")

# Bump when a change here changes the numbers encode() returns for the same pipeline.
_ENCODE_VERSION = 1
_VOLATILE_CONFIG_KEYS = {"_name_or_path", "transformers_version", "_commit_hash", "torch_dtype", "dtype"}


@dataclass(frozen=True, eq=False)
class EmbeddedDataset:
    """Embeddings of a dataset's texts: ``X[i]`` embeds ``texts[i]`` of family ``label_names[labels[i]]``."""

    X: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    texts: tuple[str, ...]
    model: str
    fingerprint: str
    n_truncated: int = 0  # texts longer than the model's max_seq_length: the model saw only their start
    longest_tokens: int = 0
    hint: str = ""  # the dataset's advice for a failing check (what else its texts may cluster by)
    class_word: str = "family"  # what the dataset calls its classes: "family" (sequences), "label" (your texts)
    source: str = ""  # the file the texts were read from (your own labelled texts), else ""
    n_tokens: int = 0  # tokens the model read, prompt and special tokens included, each text cut at max_seq_length

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        return f"EmbeddedDataset({self.X.shape[0]}x{self.X.shape[1]}, model={self.model!r})"


# Padded tokens one encode batch may hold (``Embedder.token_budget`` overrides): on a CPU, 16k tokens
# of SmolLM2-135M (30 layers, 576 wide) take ~1 GB of activations at once; a GPU holds far more.
TOKEN_BUDGETS: dict[str, int] = {"cpu": 16_384, "mps": 32_768, "cuda": 131_072}
# Texts a chunk holds (``Embedder.chunk_size`` overrides): what a killed run loses at most, and what is
# tokenized at once. 4,096 texts are ~10 s of MiniLM on a 2-core CPU, and a million texts make 245 chunk files.
CHUNK_TEXTS = 4_096


def default_prompt(model: Any) -> str:
    """The prompt a ``SentenceTransformer`` puts before every text on its own: ``prompts[default_prompt_name]``
    of its config_sentence_transformers.json, or ``""`` when it names none (most models; EmbeddingGemma's
    config holds prompts but names no default, so the paper embedded its texts without one)."""
    name = getattr(model, "default_prompt_name", None)
    return str((getattr(model, "prompts", None) or {}).get(name) or "") if name else ""


class Embedder:
    """Turns texts into vectors with one model.

    Attributes: ``name`` (alias or path), ``spec`` (its ``ModelSpec`` or None), ``device``,
    ``dtype`` ("float32" / "bfloat16" / "float16"), ``dim``, ``prompt``, ``batch_size``,
    ``token_budget``. ``prompt`` is put before every text; None (default) takes the model's own
    default prompt (``default_prompt``: none for most models), ``""`` none at all. A batch holds at most ``batch_size`` texts and at most ``token_budget``
    tokens counted with padding (texts sorted by length, longest first; default
    ``TOKEN_BUDGETS`` of the device): memory is bounded by tokens, not by texts, so a few
    texts of thousands of tokens never meet 63 others in one batch.
    ``weights_digest`` says where the weights came from (file digests); when None the
    fingerprint hashes the tensors themselves (for in-memory models such as merges).
    """

    def __init__(
        self,
        model: Any,
        *,
        name: str,
        spec: ModelSpec | None = None,
        prompt: str | None = None,
        batch_size: int = 64,
        weights_digest: str | None = None,
        cache: bool = True,
        cache_root: str | os.PathLike | None = None,
        progress: bool | None = None,
        source_path: str | os.PathLike | None = None,
        token_budget: int | None = None,
        chunk_size: int = CHUNK_TEXTS,
    ):
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        if token_budget is not None and (not isinstance(token_budget, int) or token_budget < 1):
            raise InvalidInputError(f"token_budget must be a positive integer or None, got {token_budget!r}")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidInputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.model = model
        self.chunk_size = chunk_size
        self.name = name
        self.spec = spec
        self.prompt = default_prompt(model) if prompt is None else str(prompt)
        self.batch_size = int(batch_size)
        self.token_budget = token_budget  # None: TOKEN_BUDGETS of the device
        self.last_batch_size: int | None = None  # what the last encode settled on after OOM back-off
        self.last_batches: list[tuple[int, int]] = []  # (texts, padded length) of each batch of the last encode
        self.last_encoded = 0  # texts the model encoded in the last encode (0: all from the cache)
        self.last_resumed = 0  # texts of the last encode read from an interrupted run's chunks
        self._cut: list[int] | None = None  # while encoding: [texts past max_seq_length, longest] (truncation())
        self._weights_digest = weights_digest
        self._fingerprint: str | None = None
        self.cache = cache
        self._cache_root = cache_root
        self.progress = progress
        # The directory the weights were read from; None for models built in memory.
        self.source_path = Path(source_path) if source_path is not None else None
        # Checkpoint tensors the architecture does not use or lacks that no pipeline module needs
        # (an MLM head, BERT's pooler): allowed, and named in ``info()`` (load_model fills it).
        self.dropped_weights: tuple[str, ...] = ()
        self.trust_remote_code = False  # whether the user let this model's own code run (load_model)
        # what load_model changed in the tokenizer to make it behave as the model's files say (e.g. EOS appended)
        self.tokenizer_fixes: tuple[str, ...] = ()

    # --- description -------------------------------------------------------------------
    @property
    def device(self) -> str:
        return str(self.model.device)

    @property
    def dtype(self) -> str:
        import torch

        p = next(self.model.parameters(), None)
        return str(p.dtype if p is not None else torch.float32).replace("torch.", "")

    @property
    def dim(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_seq_length(self) -> int | None:
        return getattr(self.model, "max_seq_length", None)

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, dim={self.dim}, device={self.device}, dtype={self.dtype})"

    def info(self) -> dict[str, Any]:
        """What a report says of the model: name, registry HF id (None when unknown), fingerprint, source, device,
        dtype, dim, limits, prompt."""
        return {"name": self.name, "hf_id": self.spec.hf_id if self.spec is not None else None,
                "fingerprint": self.fingerprint, "source": str(self.source_path),
                "device": self.device, "dtype": self.dtype, "dim": self.dim, "max_seq_length": self.max_seq_length,
                "prompt": self.prompt, "batch_size": self.batch_size, "dropped_weights": list(self.dropped_weights)}

    def describe(self) -> dict[str, Any]:
        """Everything besides the weights that changes what ``encode`` returns."""
        modules = []
        for m in self.model:
            cfg = {}
            if hasattr(m, "get_config_dict"):
                cfg = m.get_config_dict()
            auto = getattr(m, "auto_model", None) or getattr(m, "model", None)
            hf_cfg = getattr(auto, "config", None)
            if hf_cfg is not None and hasattr(hf_cfg, "to_dict"):
                cfg = {**cfg, "hf_config": {k: v for k, v in hf_cfg.to_dict().items() if k not in _VOLATILE_CONFIG_KEYS}}
            modules.append({"type": type(m).__name__, "config": jsonable(cfg)})
        out = {
            "encode_version": _ENCODE_VERSION,
            "modules": modules,
            "max_seq_length": self.max_seq_length,
            "prompt": self.prompt,
            "dtype": self.dtype,
            "device_type": self.device.split(":")[0],
        }
        if self.tokenizer_fixes:  # only then: every other model keeps its fingerprint (and its cached vectors)
            out["tokenizer_fixes"] = list(self.tokenizer_fixes)
        return out

    def weights_digest(self) -> str:
        """sha256 over the weights: from file digests where known, else over the tensors."""
        if self._weights_digest is None:
            import torch

            h = hashlib.sha256()
            for key, tensor in sorted(self.model.state_dict().items()):
                t = tensor.detach().contiguous().cpu()
                h.update(f"{key}|{tuple(t.shape)}|{t.dtype}|".encode())
                h.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
            self._weights_digest = "tensors:" + h.hexdigest()
        return self._weights_digest

    @property
    def fingerprint(self) -> str:
        """A stable hash of everything that changes the output; computed once."""
        if self._fingerprint is None:
            payload = json.dumps({"weights": self.weights_digest(), **self.describe()}, sort_keys=True)
            self._fingerprint = hashlib.sha256(payload.encode()).hexdigest()[:32]
        return self._fingerprint

    # --- encoding ----------------------------------------------------------------------
    def _check_texts(self, texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            raise InvalidInputError("encode expects a list of texts, got one string; wrap it: encode([text])")
        texts = list(texts)
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise InvalidInputError(f"encode expects strings; item {bad} is {type(texts[bad]).__name__}")
        for i, t in enumerate(texts):
            try:
                t.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate: no tokenizer or digest can take it
                raise InvalidInputError(
                    f"text {i} is not valid Unicode: {exc.reason} at character {exc.start} "
                    f"({t[max(0, exc.start - 20):exc.start + 20]!r}); decode the source with errors='replace' "
                    f"or remove the character") from None
        return texts

    def token_lengths(self, texts: Sequence[str], *, cut: bool = True) -> np.ndarray:
        """Tokens of each text (prompt and special tokens included), cut at ``max_seq_length`` as the
        model sees them unless ``cut=False``; zeros when the pipeline has no tokenizer."""
        tokenizer, limit = getattr(self.model, "tokenizer", None), self.max_seq_length
        n = np.zeros(len(texts), dtype=np.int64)
        if tokenizer is None:
            return n
        step = self.chunk_size  # the token ids of one chunk at a time: a million texts' ids would take gigabytes
        for a in range(0, len(texts), step):
            ids = tokenizer([self.prompt + t for t in texts[a:a + step]], add_special_tokens=True, truncation=False,
                            verbose=False)["input_ids"]
            n[a:a + len(ids)] = [len(x) for x in ids]
        return np.minimum(n, limit) if (limit and cut) else n

    def _batches(self, lengths: np.ndarray, bs: int, budget: int) -> list[np.ndarray]:
        """Indices of each batch: longest texts first, at most ``bs`` texts and ``budget`` padded tokens
        (a text longer than the budget goes alone)."""
        order = np.argsort(-lengths, kind="stable")
        out, start = [], 0
        while start < len(order):
            longest = max(int(lengths[order[start]]), 1)
            size = max(1, min(bs, budget // longest))
            out.append(order[start:start + size])
            start += size
        return out

    def _encode_uncached(self, texts: list[str], progress: Any = None) -> np.ndarray:
        """One chunk: ``texts`` sorted by length into batches (``_batches``), OOM back-off on CUDA.
        ``progress(n)`` is told of every batch of ``n`` texts."""
        import torch

        bs = self.last_batch_size or self.batch_size
        budget = self.token_budget or TOKEN_BUDGETS.get(self.model.device.type, TOKEN_BUDGETS["cpu"])
        full = self.token_lengths(texts, cut=False)
        self._note_cut(full)
        limit = self.max_seq_length
        lengths = np.minimum(full, limit) if limit else full
        while True:
            batches = self._batches(lengths, bs, budget)
            X = np.zeros((len(texts), self.dim), dtype=np.float32)
            told = 0
            try:
                with torch.inference_mode():
                    for idx in batches:
                        X[idx] = self.model.encode([texts[i] for i in idx], batch_size=len(idx),
                                                   prompt=self.prompt, convert_to_numpy=True,
                                                   show_progress_bar=False)
                        if progress is not None:
                            progress(len(idx))
                            told += len(idx)
                break
            except torch.cuda.OutOfMemoryError:
                if bs == 1 and budget <= int(lengths.max(initial=1)):
                    raise EmbeddingError(
                        f"{self.name}: CUDA out of memory even for one text of {int(lengths.max())} tokens; use a "
                        f"smaller max_seq_length, dtype='bfloat16', or a GPU with more memory"
                    ) from None
                torch.cuda.empty_cache()
                bs, budget = max(1, bs // 2), max(1, budget // 2)
                if progress is not None and told:
                    progress(-told)  # the chunk starts over
                log.warning("geomcheck: %s: CUDA out of memory, retrying with batch size %d and %d tokens a batch",
                            self.name, bs, budget)
        self.last_batch_size = bs  # the next chunk of this encode starts from what worked
        self.last_batches += [(len(idx), int(lengths[idx].max(initial=0))) for idx in batches]
        self.last_encoded += len(texts)
        return X

    def _note_cut(self, full: np.ndarray) -> None:
        """Count texts past ``max_seq_length`` (``truncation``) from their uncut token lengths."""
        limit = self.max_seq_length
        if self._cut is not None and limit and getattr(self.model, "tokenizer", None) is not None:
            self._cut[0] += int((full > limit).sum())
            self._cut[1] = max(self._cut[1], int(full.max(initial=0)))

    def encode(self, texts: Sequence[str], *, cache: bool | None = None, progress: bool | None = None) -> np.ndarray:
        """Embeddings of ``texts``, shape (N, dim), float32, rows in input order.

        ``progress``: a bar with rate and ETA on stderr (None: ``self.progress``, else from
        ``PROGRESS_MIN_TEXTS`` texts to embed on). With the cache on, a set of more than ``chunk_size``
        texts keeps each finished chunk on disk until the whole is written, and an encode that finds
        chunks of an interrupted run of the same model and texts encodes only the others."""
        return self._encode(texts, cache, progress)[0]

    def _encode(self, texts: Sequence[str], cache: bool | None,
                progress: bool | None) -> tuple[np.ndarray, tuple[int, int] | None]:
        """(``encode``'s matrix, ``truncation(texts)`` where it came for free: from the tokenizing, or the
        cache entry; else None)."""
        texts = self._check_texts(texts)
        # Each call starts again from the configured size: a batch of very long texts that
        # needed a small batch says nothing about the next call's texts.
        self.last_batch_size, self.last_batches, self.last_encoded, self.last_resumed = None, [], 0, 0
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), (0, 0)
        use_cache = self.cache if cache is None else cache
        store = digest = None
        if use_cache:
            from geomcheck.cache import EmbeddingCache, texts_digest

            store, digest = EmbeddingCache(self._cache_root), texts_digest(texts)
            hit = store.entry(self.fingerprint, texts, digest=digest)
            if hit is not None:
                cut = hit[1].get("truncation")
                return hit[0], (int(cut[0]), int(cut[1])) if isinstance(cut, list) and len(cut) == 2 else None
        chunks = store.chunks(self.fingerprint, texts, digest=digest) if store is not None and \
            len(texts) > self.chunk_size else None
        self._cut = [0, 0]
        try:
            X = encode_chunked(self, texts, chunks, progress)
            cut = (self._cut[0], self._cut[1])
        finally:
            self._cut = None
        if store is not None:
            try:
                store.put(self.fingerprint, texts, X, digest=digest, model=self.name, truncation=list(cut))
            except OSError as exc:  # a read-only or full cache must not fail the run
                log.warning("geomcheck: could not write the embedding cache (%s)", exc)
            else:
                if chunks is not None:
                    chunks.remove()
        return X, cut

    def embed(self, dataset: SequenceDataset, *, cache: bool | None = None,
              progress: bool | None = None) -> EmbeddedDataset:
        """Embed a dataset (a ``SequenceDataset``, a ``TextDataset``, anything with ``texts``, ``labels`` and
        ``label_names``): ``EmbeddedDataset(X, labels, label_names, texts, model, fingerprint, …)``."""
        X, cut = self._encode(dataset.texts, cache, progress)
        if cut is None or len(dataset.texts) <= TOKEN_COUNT_MAX_TEXTS:
            n_cut, longest, n_tokens = self._token_stats(dataset.texts)
        else:  # a large set read from the cache: its truncation was recorded, its token count is not re-counted
            (n_cut, longest), n_tokens = cut, 0
        # once per model and texts in a process, not once per test; a variant ("minilm+soup") shares its
        # base's tokenizer and limit, so it is the same news
        family = self.name.split("+", 1)[0]
        if n_cut:
            from geomcheck.cache import texts_digest

            announce = (family, self.max_seq_length, texts_digest(dataset.texts))
        if n_cut and announce not in _ANNOUNCED:
            _ANNOUNCED.add(announce)
            warnings.warn(f"geomcheck: {n_cut} of {len(dataset.texts)} texts are longer than {family}'s "
                          f"max_seq_length of {self.max_seq_length} tokens (the longest has {longest:,}): the model "
                          f"embeds only their first {self.max_seq_length} tokens", stacklevel=2)
        return EmbeddedDataset(X, dataset.labels, tuple(dataset.label_names), tuple(dataset.texts),
                               self.name, self.fingerprint, n_cut, longest, str(getattr(dataset, "hint", "")),
                               str(getattr(dataset, "class_word", "family")), str(getattr(dataset, "source", "") or ""),
                               n_tokens)

    def truncation(self, texts: Sequence[str]) -> tuple[int, int]:
        """(how many of ``texts`` exceed ``max_seq_length`` tokens, the longest's token count); (0, 0) if unknown."""
        return self._token_stats(texts)[:2]

    def _token_stats(self, texts: Sequence[str]) -> tuple[int, int, int]:
        """``truncation`` and the tokens the model reads in all (each text cut at ``max_seq_length``); zeros
        when the pipeline has no tokenizer."""
        if getattr(self.model, "tokenizer", None) is None or not texts:
            return 0, 0, 0
        limit = self.max_seq_length
        lengths = self.token_lengths(texts, cut=False)
        if not limit:
            return 0, 0, int(lengths.sum())
        return int((lengths > limit).sum()), int(lengths.max(initial=0)), int(np.minimum(lengths, limit).sum())


TOKEN_COUNT_MAX_TEXTS = 20_000  # above, a cached set's token count is not recounted (EmbeddedDataset.n_tokens 0)
_ANNOUNCED: set[tuple[Any, ...]] = set()  # (model, limit, texts digest) whose cut texts were announced
