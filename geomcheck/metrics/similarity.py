"""Similarity of two embedding spaces of the same texts: linear CKA, mutual k-NN, Procrustes.

Row i of ``X`` and row i of ``Y`` embed the same text (e.g. a base model and its merge);
the two spaces may have different dimensions. Everything is computed in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geomcheck.errors import InvalidInputError
from geomcheck.metrics._validation import as_matrix

__all__ = ["linear_cka", "mutual_knn", "procrustes_distance", "KNN_METRICS"]

KNN_METRICS = ("cosine", "euclidean")

# Rows of the (block x N) similarity matrix mutual_knn holds at once: ~32 MiB of float64.
_KNN_BLOCK_ENTRIES = 4 * 2**20


def _pair(X: Any, Y: Any, what: str, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Both spaces as float64 matrices with the same number of rows (EmbeddedDatasets accepted)."""
    tx, ty = getattr(X, "texts", None), getattr(Y, "texts", None)
    if tx is not None and ty is not None and tuple(tx) != tuple(ty):
        i = next((i for i, (a, b) in enumerate(zip(tx, ty)) if a != b), min(len(tx), len(ty)))
        raise InvalidInputError(
            f"{what}: the two embedded datasets hold different texts (first difference at row {i}); "
            f"embed the same dataset with both models"
        )
    X = as_matrix(X.X if hasattr(X, "X") else X, what=f"{what}: X")
    Y = as_matrix(Y.X if hasattr(Y, "X") else Y, what=f"{what}: Y")
    if X.shape[0] != Y.shape[0]:
        raise InvalidInputError(
            f"{what}: X has {X.shape[0]} rows but Y has {Y.shape[0]}; row i of both must embed the "
            f"same text, so embed the same texts with both models"
        )
    if X.shape[0] < min_rows:
        raise InvalidInputError(f"{what}: needs at least {min_rows} samples, got {X.shape[0]}")
    return X, Y


def _centred_unit(A: np.ndarray, what: str, name: str) -> np.ndarray:
    """Columns centred, then scaled to unit Frobenius norm; a constant input is an error."""
    C = A - A.mean(axis=0)
    norm = np.linalg.norm(C)
    # Relative test: a constant matrix centres to rounding noise, not to exact zeros.
    if not norm > 1e-12 * max(np.linalg.norm(A), np.finfo(np.float64).tiny):
        raise InvalidInputError(
            f"{what}: all rows of {name} are identical (zero variance), so the similarity is "
            f"undefined; check that the model produced distinct embeddings"
        )
    return C / norm


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
    X = _centred_unit(X, "linear_cka", "X")
    Y = _centred_unit(Y, "linear_cka", "Y")
    n, dx, dy = X.shape[0], X.shape[1], Y.shape[1]
    if n * (dx * dy + dx * dx + dy * dy) <= n * n * (dx + dy + 3):
        hsic = np.sum((Y.T @ X) ** 2)
        norm_x = np.linalg.norm(X.T @ X)
        norm_y = np.linalg.norm(Y.T @ Y)
    else:
        K, L = X @ X.T, Y @ Y.T
        hsic = np.sum(K * L)
        norm_x, norm_y = np.linalg.norm(K), np.linalg.norm(L)
    return float(min(max(hsic / (norm_x * norm_y), 0.0), 1.0))


def _knn_mask(Z: np.ndarray, sq: np.ndarray | None, s: int, e: int, k: int) -> np.ndarray:
    """Boolean (e - s, N) mask of the k nearest neighbours of rows s..e-1, the row itself excluded.

    Nearest = largest ``z_i . z_j`` (cosine on unit rows) or largest ``2 z_i . z_j - ||z_j||^2``
    (euclidean: the same order as smallest ||z_i - z_j||). Ties at the k-th place go to the
    lower index, so the result is deterministic.
    """
    n = Z.shape[0]
    sim = Z[s:e] @ Z.T
    if sq is not None:
        sim *= 2.0
        sim -= sq
    rows = np.arange(e - s)
    sim[rows, s + rows] = -np.inf
    kth = np.partition(sim, n - k, axis=1)[:, n - k][:, None]
    above = sim > kth
    tie = sim == kth
    need = k - above.sum(axis=1, keepdims=True)
    return above | (tie & (np.cumsum(tie, axis=1) <= need))


def mutual_knn(X: Any, Y: Any, k: int = 10, *, metric: str = "cosine") -> float:
    """Mutual k-nearest-neighbour alignment: mean over i of |kNN_X(i) ∩ kNN_Y(i)| / k, in [0, 1].

    Huh et al. 2024, ICML, "The Platonic Representation Hypothesis" (their ``mutual_knn``:
    neighbours by inner product of L2-normalised features, i.e. ``metric="cosine"``, the
    point itself excluded). ``metric="euclidean"`` ranks by Euclidean distance instead.
    1 for identical spaces, about k / (N - 1) for unrelated ones. Ties are broken towards
    the lower row index. Needs 1 <= k <= N - 1.
    """
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
    prepared = []
    for Z in (X, Y):
        if metric == "cosine":
            norms = np.linalg.norm(Z, axis=1)
            norms[norms == 0.0] = 1.0
            prepared.append((Z / norms[:, None], None))
        else:
            prepared.append((Z, np.einsum("ij,ij->i", Z, Z)))
    B = max(1, min(n, _KNN_BLOCK_ENTRIES // n))
    shared = 0
    for s in range(0, n, B):
        e = min(s + B, n)
        mx = _knn_mask(prepared[0][0], prepared[0][1], s, e, k)
        my = _knn_mask(prepared[1][0], prepared[1][1], s, e, k)
        shared += int(np.count_nonzero(mx & my))
    return shared / (n * k)


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
