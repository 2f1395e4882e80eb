"""Small tensor helpers the methods share: weighted sums, accurate dot products, rows, work dtypes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from geomcheck.errors import MergeError

_CHUNK = 1 << 18  # elements per partial sum


def weighted_sum(tensors: Iterable[torch.Tensor], weights: Sequence[float], *, normalize: bool = False) -> torch.Tensor:
    """Σ w_i·x_i, divided by Σ w_i when ``normalize`` (a MergeError when the weights sum to 0).

    A new tensor (the inputs are never modified, they may be read-only file mappings);
    ``tensors`` may be a generator, so that each x_i (e.g. a task vector) exists only while it
    is added.
    """
    total = sum(weights)
    if normalize and abs(total) < 1e-12:
        raise MergeError("the weights sum to 0, so they cannot be normalised; change the weights or pass "
                         "normalize=False.")
    scale = 1.0 / total if normalize else 1.0
    out: torch.Tensor | None = None
    for x, w in zip(tensors, weights):
        if out is None:
            out = torch.mul(x, w * scale)
        else:
            out.add_(x, alpha=w * scale)
    assert out is not None, "weighted_sum of no tensors"
    return out


@contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one intra-op thread for a while: BLAS dot products split by thread change the sum's rounding."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def flat_stats(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    """(‖a‖², ‖b‖², ⟨a, b⟩) over all entries, accurate and reproducible.

    Each 2^18-entry chunk is copied into fresh float64 buffers (exact products of float32
    values; the buffers' alignment is fixed, so the sum does not depend on where the tensor
    sits in memory — a file mapping starts tensors at any 8-byte offset) and reduced on one
    thread, so the result is bit-for-bit the same in memory, streamed from a file, and for
    any torch thread setting. One sweep reads each chunk pair from memory once.
    """
    x, y = a.reshape(-1), b.reshape(-1)
    n = x.numel()
    aa = bb = ab = 0.0
    with _one_thread():
        bx = torch.empty(min(n, _CHUNK), dtype=torch.float64)
        by = torch.empty_like(bx)
        for i in range(0, n, _CHUNK):
            m = min(_CHUNK, n - i)
            u, v = bx[:m].copy_(x[i : i + m]), by[:m].copy_(y[i : i + m])
            aa += float(torch.dot(u, u))
            bb += float(torch.dot(v, v))
            ab += float(torch.dot(u, v))
    return aa, bb, ab


def flat_dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """⟨a, b⟩ over all entries, as a Python float (reproducible, see :func:`flat_stats`)."""
    x, y = a.reshape(-1), b.reshape(-1)
    n = x.numel()
    total = 0.0
    with _one_thread():
        bx = torch.empty(min(n, _CHUNK), dtype=torch.float64)
        by = torch.empty_like(bx)
        for i in range(0, n, _CHUNK):
            m = min(_CHUNK, n - i)
            total += float(torch.dot(bx[:m].copy_(x[i : i + m]), by[:m].copy_(y[i : i + m])))
    return total


def flat_norm(a: torch.Tensor) -> float:
    """‖a‖₂ over all entries (see :func:`flat_stats`)."""
    return max(flat_dot(a, a), 0.0) ** 0.5


def as_rows(x: torch.Tensor) -> torch.Tensor:
    """View a tensor as (rows, features): rows = the leading axis; a 0-D/1-D tensor is one row."""
    if x.dim() <= 1:
        return x.reshape(1, -1)
    return x.reshape(x.shape[0], -1)


def work_dtype(*tensors: Any) -> torch.dtype:
    """float64 when any input is float64, else float32 (bf16/fp16 are computed in float32)."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def seed_for(seed: int, name: str, index: int) -> int:
    """A 63-bit torch seed for (user seed, tensor name, model index), stable across runs and processes."""
    import hashlib

    digest = hashlib.blake2b(f"{seed}\0{name}\0{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
