"""Similarity of two embedding spaces of the same texts: linear CKA, mutual k-NN, Procrustes.

Row i of ``X`` and row i of ``Y`` embed the same text (e.g. a base model and its merge);
the two spaces may have different dimensions. Everything is computed in float64, chunk by chunk:
float32 embeddings are read as they are (a float64 copy of a million embeddings would take 3 GB),
and no N x N or N x d float64 temporary is held where N is large.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geomcheck.errors import InvalidInputError
from geomcheck.metrics._validation import as_matrix

__all__ = ["linear_cka", "mutual_knn", "procrustes_distance", "KNN_METRICS"]

KNN_METRICS = ("cosine", "euclidean")

# mutual_knn: query rows x candidate columns of the similarity tile it holds at once (64 MiB of float64);
# enough rows per tile that the GEMM runs at full speed.
_KNN_ROWS = 1024
_KNN_COLS = 8192
# Rows of X converted to float64 at once by the O(N d) passes.
_CHUNK = 8192


def _pair(X: Any, Y: Any, what: str, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Both spaces as float64 (or float32, as given) matrices with the same number of rows (EmbeddedDatasets
    accepted)."""
    tx, ty = getattr(X, "texts", None), getattr(Y, "texts", None)
    if tx is not None and ty is not None and tuple(tx) != tuple(ty):
        i = next((i for i, (a, b) in enumerate(zip(tx, ty)) if a != b), min(len(tx), len(ty)))
        raise InvalidInputError(
            f"{what}: the two embedded datasets hold different texts (first difference at row {i}); "
            f"embed the same dataset with both models"
        )
    X = as_matrix(X.X if hasattr(X, "X") else X, what=f"{what}: X", float32_ok=True)
    Y = as_matrix(Y.X if hasattr(Y, "X") else Y, what=f"{what}: Y", float32_ok=True)
    if X.shape[0] != Y.shape[0]:
        raise InvalidInputError(
            f"{what}: X has {X.shape[0]} rows but Y has {Y.shape[0]}; row i of both must embed the "
            f"same text, so embed the same texts with both models"
        )
    if X.shape[0] < min_rows:
        raise InvalidInputError(f"{what}: needs at least {min_rows} samples, got {X.shape[0]}")
    return X, Y


def _centred_unit(A: np.ndarray, what: str, name: str) -> np.ndarray:
    """Columns centred, then scaled to unit Frobenius norm (float64); a constant input is an error."""
    C = np.asarray(A, dtype=np.float64)
    C = C - C.mean(axis=0)
    _check_variance(float(np.sum(C * C)), A, what, name)
    return C / np.linalg.norm(C)


def _check_variance(centred_sq: float, A: np.ndarray, what: str, name: str) -> None:
    # Relative test: a constant matrix centres to rounding noise, not to exact zeros.
    total = float(sum(np.sum(np.square(A[a:a + _CHUNK], dtype=np.float64)) for a in range(0, A.shape[0], _CHUNK)))
    if not np.sqrt(centred_sq) > 1e-12 * max(np.sqrt(total), np.finfo(np.float64).tiny):
        raise InvalidInputError(
            f"{what}: all rows of {name} are identical (zero variance), so the similarity is "
            f"undefined; check that the model produced distinct embeddings"
        )


def _column_mean(A: np.ndarray) -> np.ndarray:
    return sum(A[a:a + _CHUNK].sum(axis=0, dtype=np.float64) for a in range(0, A.shape[0], _CHUNK)) / A.shape[0]


def linear_cka(X: Any, Y: Any) -> float:
    """Linear centred kernel alignment of two representations of the same N samples, in [0, 1].

    CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) with column-centred X, Y
    (Kornblith et al. 2019, ICML, "Similarity of Neural Network Representations Revisited";
    equals HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with linear kernels K = XX^T, L = YY^T).
    Invariant to orthogonal transforms and isotropic scaling of either space; X and Y may
    have different dimensions. Uses the d x d feature-space form, or the N x N Gram form
    when N is the smaller side, whichever is cheaper.
    """
    X, Y = _pair(X, Y, "linear_cka")
    n, dx, dy = X.shape[0], X.shape[1], Y.shape[1]
    if n * (dx * dy + dx * dx + dy * dy) <= n * n * (dx + dy + 3):
        # d x d form, the centred Gram matrices summed over chunks of rows (float64): O(chunk d) memory
        mx, my = _column_mean(X), _column_mean(Y)
        gxy, gxx, gyy = np.zeros((dy, dx)), np.zeros((dx, dx)), np.zeros((dy, dy))
        for a in range(0, n, _CHUNK):
            cx = np.asarray(X[a:a + _CHUNK], dtype=np.float64) - mx
            cy = np.asarray(Y[a:a + _CHUNK], dtype=np.float64) - my
            gxy += cy.T @ cx
            gxx += cx.T @ cx
            gyy += cy.T @ cy
        _check_variance(float(np.trace(gxx)), X, "linear_cka", "X")
        _check_variance(float(np.trace(gyy)), Y, "linear_cka", "Y")
        hsic = np.sum(gxy ** 2)  # CKA is scale-free: no need to scale X, Y to unit norm first
        norm_x, norm_y = np.linalg.norm(gxx), np.linalg.norm(gyy)
    else:
        X = _centred_unit(X, "linear_cka", "X")
        Y = _centred_unit(Y, "linear_cka", "Y")
        K, L = X @ X.T, Y @ Y.T
        hsic = np.sum(K * L)
        norm_x, norm_y = np.linalg.norm(K), np.linalg.norm(L)
    return float(min(max(hsic / (norm_x * norm_y), 0.0), 1.0))


def _top_k(score: np.ndarray, k: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(columns + ``offset``, scores) of each row's ``k`` largest scores (ties at the k-th place go to the
    lower column), rows in ascending column order."""
    c = score.shape[1]
    k = min(k, c)
    kth = np.partition(score, c - k, axis=1)[:, c - k][:, None]
    mask = score > kth
    tie = score == kth
    need = k - mask.sum(axis=1)
    many = np.flatnonzero(tie.sum(axis=1) > need)  # rows with more ties than places: the lowest columns win
    mask |= tie
    if many.size:
        mask[many] &= ~tie[many] | (np.cumsum(tie[many], axis=1) <= need[many, None])
    r, j = np.nonzero(mask)
    return (j + offset).reshape(-1, k), score[r, j].reshape(-1, k)


def _knn(Z: np.ndarray, scale: np.ndarray, cosine: bool, idx: np.ndarray, k: int, progress: Any) -> np.ndarray:
    """(len(idx), k) indices of the k nearest neighbours of the rows ``idx`` of ``Z`` among all rows, each
    row itself excluded. Nearest = largest ``z_i . z_j`` of rows divided by their norms ``scale``
    (cosine) or largest ``2 z_i . z_j - ||z_j||^2`` (``scale`` the squared norms; euclidean: the same
    order as smallest ||z_i - z_j||). Ties go to the lower index, so the result is deterministic.
    Column tiles keep only their own k best; the k best of those are the k best of all."""
    n = Z.shape[0]
    Q = np.asarray(Z[idx], dtype=np.float64)
    if cosine:
        Q /= scale[idx, None]
    best_i = np.empty((idx.size, 0), dtype=np.int64)
    best_v = np.empty((idx.size, 0))
    for c in range(0, n, _KNN_COLS):
        f = min(c + _KNN_COLS, n)
        C = np.asarray(Z[c:f], dtype=np.float64)
        if cosine:
            C = C / scale[c:f, None]
        score = Q @ C.T
        if not cosine:
            score *= 2.0
            score -= scale[c:f]
        own = np.flatnonzero((idx >= c) & (idx < f))
        score[own, idx[own] - c] = -np.inf
        ti, tv = _top_k(score, k, c)
        cand_i, cand_v = np.concatenate([best_i, ti], axis=1), np.concatenate([best_v, tv], axis=1)
        order = np.lexsort((cand_i, -cand_v), axis=1)[:, :k]  # by score, then the lower index
        best_i = np.take_along_axis(cand_i, order, axis=1)
        best_v = np.take_along_axis(cand_v, order, axis=1)
        progress.advance(float(idx.size) * (f - c))
    return best_i


def mutual_knn(X: Any, Y: Any, k: int = 10, *, metric: str = "cosine", rows: Any = None,
               progress: bool | None = None) -> float:
    """Mutual k-nearest-neighbour alignment: mean over i of |kNN_X(i) ∩ kNN_Y(i)| / k, in [0, 1].

    Huh et al. 2024, ICML, "The Platonic Representation Hypothesis" (their ``mutual_knn``:
    neighbours by inner product of L2-normalised features, i.e. ``metric="cosine"``, the
    point itself excluded). ``metric="euclidean"`` ranks by Euclidean distance instead.
    1 for identical spaces, about k / (N - 1) for unrelated ones. Ties are broken towards
    the lower row index. Needs 1 <= k <= N - 1. ``rows``: the mean over these points only
    (their neighbours among all N; O(len(rows) N d)), e.g. a sample standing for a large set.
    ``progress``: a line with rate and ETA on stderr while it runs past a few seconds (None: when
    stderr is a terminal; ``geomcheck.metrics._progress``).
    """
    from geomcheck.metrics._progress import Progress

    if metric not in KNN_METRICS:
        raise InvalidInputError(f"mutual_knn: unknown metric {metric!r}; use 'cosine' or 'euclidean'")
    X, Y = _pair(X, Y, "mutual_knn")
    n = X.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n - 1:
        raise InvalidInputError(
            f"mutual_knn: k={k!r} is out of range; each point has only {n - 1} other points, so "
            f"use an integer 1 <= k <= {n - 1} (the paper uses k=10 with thousands of samples)"
        )
    k = int(k)
    if rows is None:
        idx = np.arange(n)
    else:
        idx = np.asarray(rows)
        if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= n:
            raise InvalidInputError(f"mutual_knn: rows must be a non-empty 1-D array of point indices in [0, {n})")
    cosine = metric == "cosine"
    scales = []
    for Z in (X, Y):
        sq = np.concatenate([np.einsum("ij,ij->i", *(np.asarray(Z[a:a + _CHUNK], dtype=np.float64),) * 2)
                             for a in range(0, n, _CHUNK)])
        if cosine:
            sq = np.sqrt(sq)
            sq[sq == 0.0] = 1.0
        scales.append(sq)
    shared = 0
    what = f"geomcheck: mutual {k}-NN of {idx.size:,} points among {n:,}, two spaces"
    with Progress(what, 2.0 * idx.size * n, progress, unit="pairs") as prog:
        for s in range(0, idx.size, _KNN_ROWS):
            block = idx[s:s + _KNN_ROWS]
            nx, ny = _knn(X, scales[0], cosine, block, k, prog), _knn(Y, scales[1], cosine, block, k, prog)
            shared += int(np.count_nonzero(nx[:, :, None] == ny[:, None, :]))
    return shared / (idx.size * k)


def procrustes_distance(X: Any, Y: Any) -> float:
    """Orthogonal Procrustes disparity of two spaces after centring and scaling each to unit norm, in [0, 1].

    disparity = min over orthogonal R and scale s of ||X~ - s Y~ R||_F^2 = 1 - (sum of the
    singular values of X~^T Y~)^2, with X~, Y~ column-centred and of unit Frobenius norm
    (Gower 1975, Psychometrika 40:33-51). Equals ``scipy.spatial.procrustes(X, Y)[2]`` when
    the dimensions match; otherwise the smaller space is padded with zero columns, which
    leaves the singular values unchanged. Symmetric in X and Y; 0 for a rotated, scaled,
    shifted copy.
    """
    X, Y = _pair(X, Y, "procrustes_distance")
    X = _centred_unit(X, "procrustes_distance", "X")
    Y = _centred_unit(Y, "procrustes_distance", "Y")
    n = X.shape[0]
    # sigma(X^T Y) = sigma(A B^T) where X^T = Q_a A, Y^T = Q_b B with orthonormal Q: with
    # N < d the QR factors shrink the SVD from d_x x d_y to at most N x N.
    A = np.linalg.qr(X.T, mode="r") if n < X.shape[1] else X.T
    Bm = np.linalg.qr(Y.T, mode="r") if n < Y.shape[1] else Y.T
    nuclear = float(np.sum(np.linalg.svd(A @ Bm.T, compute_uv=False)))
    return float(min(max(1.0 - nuclear * nuclear, 0.0), 1.0))
