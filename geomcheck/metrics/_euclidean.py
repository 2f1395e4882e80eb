"""Euclidean per-cluster distance sums ``S[i, c] = sum_{j in c} ||x_i - x_j||`` on the CPU, exact or for sampled rows.

Points are sorted by their labels (several labelings: lexicographically), so that the columns
of a tile fall into a few *segments* (runs of points with the same labels in every labeling).
A tile's distances then reduce to per-segment sums in one pass (``np.add.reduceat``, float64
accumulation) and a small ``(segments x clusters)`` map gives every labeling's sums; no
``N x k`` one-hot matrix and no ``N x N`` matrix is ever held.

Distances: ``||x||^2 + ||y||^2 - 2 x.y`` on centred data (centring removes the offset that makes
the expansion cancel), clamped at 0, square-rooted. With ``mixed`` a tile is computed with a
float32 GEMM and float32 arithmetic and kept only where every pair has ``d^2 >= KAPPA/2 (|x|^2 +
|y|^2)``: there the float32 GEMM error (measured <= 4.3e-7 |x||y| at d = 1024, ~sqrt(d) growth)
and the few float32 roundings of the sum are <= ~2e-6 of ``d^2``, i.e. <= 1e-6 of the distance;
the sums over a tile's segments are float64, so a(i) and b(i) carry that relative error at most
(typically ~1e-8: the roundings average out). Other tiles are recomputed in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["KAPPA", "Segments", "exact_sums", "sampled_sums"]

KAPPA = 0.25


class Segments:
    """Points sorted by several labelings (``order``), and the runs of equal labels in that order.

    ``seg_of[p]``: the segment of sorted position p; ``starts[s]``: its first position;
    ``A``: (segments x sum k) 0/1, segment -> its cluster in each labeling (column offset per labeling).
    """

    def __init__(self, codes_list: Sequence[np.ndarray]):
        self.ks = [int(c.max()) + 1 for c in codes_list]
        self.offsets = np.concatenate(([0], np.cumsum(self.ks)[:-1])).astype(int).tolist()
        n = codes_list[0].shape[0]
        self.order = np.lexsort(tuple(reversed(list(codes_list)))) if len(codes_list) > 1 else \
            np.argsort(codes_list[0], kind="stable")
        change = np.zeros(n, dtype=bool)
        change[0] = True
        for c in codes_list:
            s = c[self.order]
            change[1:] |= s[1:] != s[:-1]
        self.starts = np.flatnonzero(change)
        self.seg_of = np.cumsum(change) - 1
        self.A = np.zeros((self.starts.size, sum(self.ks)), dtype=np.float64)
        for c, off in zip(codes_list, self.offsets):
            self.A[np.arange(self.starts.size), off + c[self.order][self.starts]] = 1.0

    def column_sums(self, D: np.ndarray, c: int, f: int) -> np.ndarray:
        """``D[:, j]`` (columns = sorted positions c..f-1) summed per cluster: (rows x sum k), float64."""
        first, last = int(self.seg_of[c]), int(self.seg_of[f - 1])
        bounds = np.concatenate(([c], self.starts[first + 1:last + 1], [f])) - c
        if bounds.size <= 65:  # few runs: a sum per run is ~2x faster than reduceat along axis 1
            F = np.empty((D.shape[0], bounds.size - 1))
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
                D[:, a:b].sum(axis=1, dtype=np.float64, out=F[:, i])
        else:
            F = np.add.reduceat(D, bounds[:-1], axis=1, dtype=np.float64)
        return F @ self.A[first:last + 1]

    def row_sums(self, D: np.ndarray, s: int, e: int) -> np.ndarray:
        """``D[i, :]`` (rows = sorted positions s..e-1) summed per cluster, transposed: (cols x sum k)."""
        first, last = int(self.seg_of[s]), int(self.seg_of[e - 1])
        bounds = np.concatenate(([s], self.starts[first + 1:last + 1], [e])) - s
        if bounds.size <= 65:  # few runs: a plain sum per run is far faster than reduceat along axis 0
            R = np.stack([D[a:b].sum(axis=0, dtype=np.float64) for a, b in zip(bounds[:-1], bounds[1:])])
        else:
            R = np.add.reduceat(D, bounds[:-1], axis=0, dtype=np.float64)
        return R.T @ self.A[first:last + 1]


def _sq_dists(A: np.ndarray, sq_a: np.ndarray, B: np.ndarray, sq_b: np.ndarray) -> np.ndarray:
    """``|a|^2 + |b|^2 - 2 a.b`` for every row pair, in the dtype of the inputs (a fresh array)."""
    D = A @ B.T
    D *= -2.0
    D += sq_b
    D += sq_a[:, None]
    return D


def _centred(X: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Xc = np.asarray(X[order], dtype=np.float64)  # a fresh copy: centre in place
    Xc -= Xc.mean(axis=0)
    return Xc, np.einsum("ij,ij->i", Xc, Xc)


def _tiles(n: int, rows: int, cols: int):
    """Upper-triangle tiles ``(s, e, c, f)``: rows s..e-1 against columns c..f-1, c >= s."""
    for s in range(0, n, rows):
        e = min(s + rows, n)
        for c in range(s, n, cols):
            yield s, e, c, min(c + cols, n)


def exact_sums(X: np.ndarray, codes_list: Sequence[np.ndarray], rows: int, cols: int, mixed: bool,
               dup: Any, progress: Any) -> np.ndarray:
    """``S`` (n x sum k, original row order) over all pairs, each distance computed once (upper triangle).

    ``dup(Xc)``: ids shared by identical rows, or None (their distance is set to an exact 0).
    ``progress.advance(pairs)`` is told of each tile.
    """
    seg = Segments(codes_list)
    n = X.shape[0]
    Xc, sq = _centred(X, seg.order)
    ids = dup(Xc)
    S = np.zeros((n, seg.A.shape[1]), dtype=np.float64)
    sq32 = sq.astype(np.float32) if mixed else None
    # The GEMM of [-2 x, |x|^2, 1] and [y, 1, |y|^2] (float32) is |x|^2 + |y|^2 - 2 x.y: the two squared
    # norms are added by the same kernel, in the same float32 as two adds after it (-2 x is exact), so
    # no pass over the tile is needed for them.
    Xa = Ya = None
    if mixed:
        Xa = np.empty((n, Xc.shape[1] + 2), dtype=np.float32)
        Ya = np.empty_like(Xa)
        np.multiply(Xc, -2.0, out=Xa[:, :-2], casting="same_kind")
        Ya[:, :-2] = Xc
        Xa[:, -2], Xa[:, -1], Ya[:, -2], Ya[:, -1] = sq32, 1.0, 1.0, sq32
    h = 0.5 * KAPPA
    flat = np.empty(min(rows, n) * min(cols, n), dtype=np.float32) if mixed else None  # one tile, used again
    for s, e, c, f in _tiles(n, rows, cols):
        D, positive = None, False
        if Xa is not None:
            D = np.matmul(Xa[s:e], Ya[c:f].T, out=flat[:(e - s) * (f - c)].reshape(e - s, f - c))
            if c == s:
                np.fill_diagonal(D, np.inf)  # the diagonal is set to 0 below
            # Cheap sufficient test first; the exact per-pair test only where it fails.
            low = D.min()
            positive = low > 0  # then no clamp at 0 is needed
            if low < h * (sq32[s:e].max() + sq32[c:f].max()):
                bad = D - h * sq32[c:f] < h * sq32[s:e, None]
                if ids is not None:
                    bad &= ids[s:e, None] != ids[None, c:f]
                if bad.any():
                    D = None
        if D is None:
            D, positive = _sq_dists(Xc[s:e], sq[s:e], Xc[c:f], sq[c:f]), False
        if not positive:
            np.maximum(D, 0.0, out=D)
        if c == s:
            np.fill_diagonal(D, 0.0)
        if ids is not None:
            D[ids[s:e, None] == ids[None, c:f]] = 0.0
        np.sqrt(D, out=D)
        S[s:e] += seg.column_sums(D, c, f)
        # Columns past the row block get the transposed contribution (the square part of a
        # diagonal tile is symmetric and already counted from both sides above).
        lo = e - s if c == s else 0
        if c + lo < f:
            S[c + lo:f] += seg.row_sums(D[:, lo:], s, e)
        progress.advance((e - s) * (f - c))
    out = np.empty_like(S)
    out[seg.order] = S
    return out


def sampled_sums(X: np.ndarray, codes_list: Sequence[np.ndarray], rows_idx: np.ndarray, block: int, mixed: bool,
                 progress: Any) -> np.ndarray:
    """``S`` (len(rows_idx) x sum k): distance sums from the points ``rows_idx`` to every point (all N columns).

    Tiles as in ``exact_sums``; pairs whose distance the expansion cannot resolve (the point
    itself, copies, pairs closer than the float32 or float64 bound) are computed from their
    difference vectors in float64, so they come out exact (a copy at exactly 0).
    """
    seg = Segments(codes_list)
    n = X.shape[0]
    Xc, sq = _centred(X, seg.order)
    pos = np.empty(n, dtype=np.int64)
    pos[seg.order] = np.arange(n)
    rpos = pos[rows_idx]
    Xr, sqr = Xc[rpos], sq[rpos]
    X32 = Xc.astype(np.float32) if mixed else None
    Xr32 = Xr.astype(np.float32) if mixed else None
    S = np.zeros((rows_idx.size, seg.A.shape[1]), dtype=np.float64)
    cols = max(block, 1024)
    for s in range(0, rows_idx.size, block):
        e = min(s + block, rows_idx.size)
        for c in range(0, n, cols):
            f = min(c + cols, n)
            D, floor = None, 0.5 * KAPPA
            if X32 is not None:
                D = _sq_dists(Xr32[s:e], sqr[s:e].astype(np.float32), X32[c:f], sq[c:f].astype(np.float32))
                close = D < floor * (sqr[s:e, None] + sq[c:f])
                if np.count_nonzero(close) > close.size // 8:  # many close pairs: the whole tile in float64
                    D = None
            if D is None:
                D = _sq_dists(Xr[s:e], sqr[s:e], Xc[c:f], sq[c:f])
                floor = 1e-6  # float64 loses <= ~1e-10 of d^2 above this share of |x|^2 + |y|^2
                close = D < floor * (sqr[s:e, None] + sq[c:f])
            i, j = np.nonzero(close)
            if i.size:
                diff = Xr[s + i] - Xc[c + j]
                D[i, j] = np.einsum("ij,ij->i", diff, diff)
            np.maximum(D, 0.0, out=D)
            np.sqrt(D, out=D)
            S[s:e] += seg.column_sums(D, c, f)
            progress.advance((e - s) * (f - c))
    return S
