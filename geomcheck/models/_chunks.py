"""The chunk loop of ``Embedder.encode``: chunks of an interrupted run read back, the others encoded and kept,
one progress bar with rate and ETA over them all (stderr)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from geomcheck.errors import EmbeddingError

__all__ = ["encode_chunked", "PROGRESS_MIN_TEXTS"]

PROGRESS_MIN_TEXTS = 2_000  # progress=None shows a bar from this many texts (to embed) on

log = logging.getLogger("geomcheck")


def encode_chunked(emb: Any, texts: list[str], chunks: Any, progress: bool | None) -> np.ndarray:
    """``Embedder._encode``'s loop over the chunks of ``texts`` (``emb``: the ``Embedder``): each read from
    ``chunks`` (a ``geomcheck.cache.ChunkStore``, or None) where an interrupted run left it, else encoded by
    ``emb._encode_uncached`` and kept there."""
    n, step = len(texts), emb.chunk_size
    X = np.empty((n, emb.dim), dtype=np.float32)
    todo = []
    for a in range(0, n, step):
        b = min(a + step, n)
        got = chunks.get(a, b) if chunks is not None else None
        if got is not None and got.shape[1] == emb.dim and got.dtype == np.float32:
            X[a:b] = got
            if emb._cut is not None and emb.max_seq_length:  # what the encoded ones would have counted
                emb._note_cut(emb.token_lengths(texts[a:b], cut=False))
        else:
            todo.append((a, b))
    emb.last_resumed = n - sum(b - a for a, b in todo)
    show = emb.progress if progress is None else progress
    if show is None:
        show = n - emb.last_resumed >= PROGRESS_MIN_TEXTS
    if emb.last_resumed:
        log.warning("geomcheck: %s: resuming an interrupted encode: %s of %s texts read from its chunks in %s",
                    emb.name, f"{emb.last_resumed:,}", f"{n:,}", chunks.folder)
    bar = _bar(n, emb.last_resumed, emb.name) if show else None
    try:
        for a, b in todo:
            part = emb._encode_uncached(texts[a:b], progress=bar.update if bar is not None else None)
            finite = np.isfinite(part).all(axis=1)
            if not finite.all():  # never kept: a NaN chunk would be served to the next run
                i = a + int(np.flatnonzero(~finite)[0])
                where = "" if b - a == n else f" (of texts {a:,}–{b - 1:,})"
                raise EmbeddingError(
                    f"{emb.name} returned NaN/inf for {int((~finite).sum())} of {b - a} texts{where}, first "
                    f"text {i}: {texts[i][:80]!r}{'…' if len(texts[i]) > 80 else ''}; with dtype={emb.dtype} "
                    f"try dtype='float32', and check the model's weights"
                )
            X[a:b] = part
            if chunks is not None:
                try:
                    chunks.put(a, b, part)
                except OSError as exc:  # a full disk: the run goes on, it just cannot resume
                    log.warning("geomcheck: could not keep a finished chunk in the cache (%s)", exc)
                    chunks = None
    finally:
        if bar is not None:
            bar.close()
    return X


def _bar(total: int, done: int, name: str) -> Any:
    """A tqdm bar on stderr counting texts, with rate and ETA; ``done`` texts (resumed) count from the start
    without entering the rate."""
    import sys

    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, initial=done, desc=f"{name}: embedding", unit=" texts", unit_scale=True,
                file=sys.stderr, dynamic_ncols=tty, mininterval=0.2 if tty else 10.0, smoothing=0.1)
