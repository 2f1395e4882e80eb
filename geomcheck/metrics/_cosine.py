"""The exact cosine silhouette in O(N k d), in chunks of rows: no N x k matrix, no float64 copy of X.

With ``u = x / ||x||`` (zero rows stay 0, as sklearn) and ``z_i = ||u_i||^2`` in {0, 1}:
``1 - u_i.u_j = 1 - (z_i + z_j)/2 + ||u_i - u_j||^2 / 2``, and over a cluster c of size n_c
with mean m_c, ``sum_{j in c} ||u_i - u_j||^2 = n_c ||u_i - m_c||^2 + spread_c`` (spread_c =
``sum_{j in c} ||u_j - m_c||^2``). So every a(i) and b(i) follows from the cluster means and
spreads, in two passes over X:

1. cluster sums of u, counts of non-zero rows, and ``sum ||u_j - p_c||^2`` about a pivot p_c (a
   member of c), from which ``spread_c = sum ||u_j - p_c||^2 - n_c ||m_c - p_c||^2`` loses at most
   about a bit (the pivot is a typical member, not the origin: no catastrophic cancellation for
   tight clusters, where ``sum ||u_j||^2 - n_c ||m_c||^2`` would lose everything);
2. ``q_ic = ||v_i - w_c||^2`` with v, w centred on the mean direction (so nearly parallel
   embeddings, tiny cosine distances, keep their digits), one GEMM per chunk, then s(i).

Rows are visited in label order (chunks gathered from X, float32 or float64 as given), every
sum is float64. A cluster whose members all point in exactly one direction is at distance
exactly 0 from that direction (sklearn's 0/0 -> 0), not at the formula's rounding noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CHUNK", "cosine_silhouettes"]

CHUNK = 4096  # rows per chunk: a float64 chunk of 384 dims is 12 MiB, the q block 4096 x k


class _Buffers:
    """Chunk-sized arrays used again and again: a fresh 12 MB array a chunk costs its page faults each time."""

    def __init__(self, X: np.ndarray, chunk: int):
        self.x = np.empty((chunk, X.shape[1]))
        self.raw = np.empty((chunk, X.shape[1]), dtype=X.dtype)


def _unit(X: np.ndarray, idx: np.ndarray | slice, buf: _Buffers | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` (indices or a slice) of X as float64 unit vectors (zero rows stay 0) and which are non-zero;
    in ``buf`` when given (the result is a view of it, valid until the next call)."""
    if buf is None:
        x = X[idx].astype(np.float64, copy=isinstance(idx, slice))  # a fresh float64 array: scaled in place
    else:
        m = idx.stop - idx.start if isinstance(idx, slice) else idx.size
        x = buf.x[:m]
        if isinstance(idx, slice):
            np.copyto(x, X[idx])
        else:
            np.copyto(x, np.take(X, idx, axis=0, out=buf.raw[:m]))
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    z = norms > 0.0
    norms[~z] = 1.0
    x /= norms[:, None]  # divided, not scaled by 1/norm: a 1-d x comes out exactly +-1, as sklearn's
    return x, z


def cosine_silhouettes(X: np.ndarray, codes_list: Sequence[np.ndarray], progress: Any,
                       chunk: int | None = None) -> list[np.ndarray]:
    """Per-sample cosine silhouettes for each labeling of ``X`` (float32 or float64, any order)."""
    chunk = chunk or CHUNK
    n, d = X.shape
    ks = [int(c.max()) + 1 for c in codes_list]
    offs = np.concatenate(([0], np.cumsum(ks)[:-1])).astype(int)
    K = int(sum(ks))
    order = np.lexsort(tuple(reversed(list(codes_list)))) if len(codes_list) > 1 else \
        np.argsort(codes_list[0], kind="stable")
    cols = [off + c for c, off in zip(codes_list, offs)]  # each point's column in each labeling
    sizes = np.zeros(K)
    for c in cols:
        sizes += np.bincount(c, minlength=K)
    # pivots: the first member of each cluster in each labeling
    pivot_rows = np.empty(K, dtype=np.int64)
    for c in cols:
        first = np.unique(c, return_index=True)
        pivot_rows[first[0]] = first[1]
    P, _ = _unit(X, pivot_rows)

    # pass 1: sums of u, non-zero counts, squared distances to the pivots
    T = np.zeros((K, d))
    Z = np.zeros(K)
    dev = np.zeros(K)
    buf = _Buffers(X, min(chunk, n))
    for a in range(0, n, chunk):
        idx = order[a:a + chunk]
        u, z = _unit(X, idx, buf)
        cl = [c[idx] for c in cols]
        change = np.zeros(idx.size, dtype=bool)  # runs of the sorted chunk share every label
        change[0] = True
        for c in cl:
            change[1:] |= c[1:] != c[:-1]
        starts = np.flatnonzero(change)
        if starts.size <= 64:
            F = np.stack([u[s:t].sum(axis=0) for s, t in zip(starts, np.append(starts[1:], idx.size))])
        else:
            F = np.add.reduceat(u, starts, axis=0)
        for c in cl:
            np.add.at(T, c[starts], F)
            Z += np.bincount(c, weights=z, minlength=K)
        for c in cl[1:]:  # other labelings (KMeans): squared distances to their pivots, row by row
            r = u - P[c]
            dev += np.bincount(c, weights=np.einsum("ij,ij->i", r, r), minlength=K)
        # the primary labeling's clusters run by run (in place: u is done with)
        c0 = cl[0]
        bounds = np.append(starts, idx.size)
        for s, t in zip(bounds[:-1], bounds[1:]):
            u[s:t] -= P[c0[s]]
        dev += np.bincount(c0, weights=np.einsum("ij,ij->i", u, u), minlength=K)
        progress.advance(idx.size)
    M = T / sizes[:, None]  # cluster means of u
    mu = T[offs[0]:offs[0] + ks[0]].sum(axis=0) / n  # the mean direction
    R = M - P
    spread = np.maximum(dev - sizes * np.einsum("ij,ij->i", R, R), 0.0)
    W = M - mu
    ww = np.einsum("ij,ij->i", W, W)
    # clusters whose members all point exactly the pivot's (non-zero) way
    pure = np.flatnonzero((dev == 0.0) & (Z == sizes))
    pure_dirs = {P[c].tobytes(): [] for c in pure}
    for c in pure:
        pure_dirs[P[c].tobytes()].append(int(c))

    out = [np.empty(n) for _ in codes_list]
    for a in range(0, n, chunk):  # in X's own order: contiguous slices, no gather
        idx = slice(a, min(a + chunk, n))
        u, z = _unit(X, idx, buf)
        m = u.shape[0]
        zf = z.astype(np.float64)
        v = u
        v -= mu
        q = v @ W.T
        q *= -2.0
        q += np.einsum("ij,ij->i", v, v)[:, None]
        q += ww
        np.maximum(q, 0.0, out=q)
        S = sizes * (1.0 - 0.5 * zf[:, None]) - 0.5 * Z
        S += 0.5 * (sizes * q + spread)
        rows = np.arange(m)
        for c in cols:
            S[rows, c[idx]] -= 1.0 - zf  # a point's own term 1 - z_i
        np.maximum(S, 0.0, out=S)
        if pure.size:
            qp = q[:, pure]
            cand = np.unique(np.nonzero(qp <= 1e-12 * (1.0 + ww[pure]))[0])
            if cand.size:
                uc, _ = _unit(X, a + cand)
                for i, row in zip(cand, uc):
                    hit = pure_dirs.get(row.tobytes())
                    if hit:
                        S[i, hit] = 0.0
        for out_l, c, k, off in zip(out, codes_list, ks, offs):
            out_l[idx] = _rows_silhouette(S[:, off:off + k], c[idx], sizes[off:off + k])
        progress.advance(m)
    return out


def _rows_silhouette(S: np.ndarray, codes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """s(i) of rows with per-cluster distance sums ``S`` (to whole clusters of ``sizes``), as sklearn reduces
    (the one reduction: the Euclidean kernels' ``_silhouette_from_sums`` calls it too)."""
    rows = np.arange(codes.size)
    intra = S[rows, codes]
    mean_to = S / sizes
    mean_to[rows, codes] = np.inf
    b = mean_to.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = intra / (sizes[codes] - 1.0)
        s = (b - a) / np.maximum(a, b)
    # Singletons (0/0) and a = b = 0 give NaN; sklearn defines both as 0.
    return np.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0)
