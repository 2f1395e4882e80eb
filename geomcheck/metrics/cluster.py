"""Cluster-quality metrics of labelled embeddings: silhouette, Davies-Bouldin, Calinski-Harabasz, KMeans.

Pure functions in the style of ``sklearn.metrics.cluster`` that give sklearn's numbers.
The silhouette never holds the N x N distance matrix: it walks tiles of its upper
triangle (each distance computed once, half of sklearn's GEMM work), in numpy on CPU and
in torch on CUDA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from geomcheck.errors import InvalidInputError
from geomcheck.metrics._validation import as_matrix, as_xy
from geomcheck.metrics.geometry import GeometryReport

__all__ = [
    "silhouette",
    "silhouette_samples",
    "davies_bouldin",
    "calinski_harabasz",
    "kmeans_labels",
    "cluster_report",
    "METRICS",
    "PRECISIONS",
    "default_block_size",
]

METRICS = ("euclidean", "cosine")

# The distance matrix is visited in (rows x cols) tiles of the upper triangle, never whole:
# a 1024 x 1024 float64 tile (8 MiB) stays in L3 while it is reduced, and its GEMM already
# runs at full speed; a bigger tile only adds memory. CUDA wants larger launches.
_TILE_CPU = 1024
_TILE_CUDA = 4096
PRECISIONS = ("auto", "float64", "mixed")
# "mixed": a float32-GEMM tile is kept only if every pair in it has d^2 >= KAPPA times the
# mean of the two squared norms (after centring); there the float32 GEMM error (measured
# <= 4.3e-7 |x||y| at d = 1024, ~sqrt(d) growth) is <= ~2e-6 of d^2, typically ~1e-8, and
# it averages out over a cluster. Other tiles are recomputed in float64.
_KAPPA = 0.25
# Tests flip this to run the torch tile loop on CPU (normally numpy does CPU work: it is
# as fast for the GEMMs and much faster for elementwise work on a loaded 2-core machine).
_TORCH_ON_CPU = False
_AUTO_CUDA_MIN_N = 4096
# precision="auto" takes "mixed" from this many points on; below, the extra checks cost
# more than the float32 GEMMs save.
_AUTO_MIXED_MIN_N = 2048


def _import_torch() -> Any:
    """torch, or None where it is not installed (then only the numpy CPU path exists)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is installed in the test environment
        return None
    return torch


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise InvalidInputError(f"unknown metric {metric!r}; use one of {', '.join(repr(m) for m in METRICS)}")
    return metric


def _check_block_size(block_size: int | None) -> None:
    if block_size is not None and (
        isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1
    ):
        raise InvalidInputError(f"block_size must be a positive integer or None (automatic), got {block_size!r}")


def default_block_size(n: int, *, cuda: bool = False) -> int:
    """Rows per tile: 1024 on CPU, 4096 on CUDA (never more than ``n``)."""
    return int(max(1, min(_TILE_CUDA if cuda else _TILE_CPU, n)))


def _resolve_device(device: Any, n: int) -> Any:
    """A ``torch.device`` for the torch path (CUDA), or None for the numpy CPU path.

    "auto" takes CUDA only from ``_AUTO_CUDA_MIN_N`` points on: below, the transfers and
    launches cost more than the CPU needs (and torch is not even imported).
    """
    name = str(device)
    if name in ("auto", "cpu"):
        if name == "auto" and n >= _AUTO_CUDA_MIN_N:
            torch = _import_torch()
            if torch is not None and torch.cuda.is_available():
                return torch.device("cuda")
        if _TORCH_ON_CPU:
            return _import_torch().device("cpu")
        return None
    if not name.startswith("cuda"):
        raise InvalidInputError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda' (or 'cuda:N')")
    torch = _import_torch()
    if torch is None:
        raise InvalidInputError(f"device={device!r} needs torch, which is not installed; use device='cpu'")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise InvalidInputError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda' (or 'cuda:N')") from None
    if not torch.cuda.is_available():
        raise InvalidInputError(f"device={device!r} but CUDA is not available here; use device='auto' or 'cpu'")
    return dev


def _check_device(device: Any) -> None:
    """Validate ``device`` without using it (the cosine path needs no device)."""
    name = str(device)
    if name not in ("auto", "cpu") and not name.startswith("cuda"):
        raise InvalidInputError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda' (or 'cuda:N')")


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise InvalidInputError(
            f"unknown precision {precision!r}; use one of {', '.join(repr(p) for p in PRECISIONS)}"
        )
    return precision


def _use_mixed(precision: str, low_precision_input: bool, n: int, dev: Any) -> bool:
    """Resolve ``precision`` to mixed (True) or float64 (False); see ``silhouette_samples``."""
    if precision != "auto":
        return precision == "mixed"
    if not low_precision_input or n < _AUTO_MIXED_MIN_N:
        return False
    if dev is not None and dev.type == "cuda":
        # P100, V100, A100, H100, B200 (compute capability 6.0 ... 10.0) run float64 at half
        # the float32 rate or better: mixed saves nothing there. Consumer cards run 1/32-1/64.
        import torch

        major, minor = torch.cuda.get_device_capability(dev)
        return not (minor == 0 and major >= 6)
    return True


def _is_low_precision(X: Any) -> bool:
    """True for float32 / float16 / bfloat16 arrays or tensors (an EmbeddedDataset's ``.X`` too)."""
    if hasattr(X, "X") and hasattr(X, "labels"):
        X = X.X
    return str(getattr(X, "dtype", "")).replace("torch.", "") in ("float32", "float16", "bfloat16")


def _one_hot(codes_list: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Side-by-side one-hot matrices of several labelings: (N, sum k) float64, and the offsets."""
    n = codes_list[0].shape[0]
    ks = [int(c.max()) + 1 for c in codes_list]
    H = np.zeros((n, sum(ks)), dtype=np.float64)
    offsets, off = [], 0
    for c, k in zip(codes_list, ks):
        H[np.arange(n), off + c] = 1.0
        offsets.append(off)
        off += k
    return H, offsets


def _duplicate_ids(X: np.ndarray) -> np.ndarray | None:
    """Ids shared exactly by identical rows (ids 0..m-1), or None when all rows differ.

    Rows are bucketed by a hash of their bytes and checked for equality within a bucket:
    O(N d), where ``np.unique(axis=0)`` would lexsort all d columns.
    """
    X = np.ascontiguousarray(X)
    h = np.fromiter((hash(row.tobytes()) for row in X), dtype=np.int64, count=X.shape[0])
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    if first.shape[0] == X.shape[0]:
        return None
    ids = inv.astype(np.int64)
    # A hash collision between different rows is astronomically rare, but must not merge them.
    rep = first[inv]
    idx = np.flatnonzero(rep != np.arange(X.shape[0]))
    if not np.all(X[idx] == X[rep[idx]]):
        _, exact = np.unique(X, axis=0, return_inverse=True)
        ids = exact.reshape(-1).astype(np.int64)
        if ids.max() + 1 == X.shape[0]:
            return None
    return ids


def _tiles(n: int, rows: int, cols: int):
    """Upper-triangle tiles ``(s, e, c, f)``: rows s..e-1 against columns c..f-1, c >= s."""
    for s in range(0, n, rows):
        e = min(s + rows, n)
        for c in range(s, n, cols):
            yield s, e, c, min(c + cols, n)


def _euclidean_cluster_sums(
    X: np.ndarray, H: np.ndarray, block_size: int | None, dev: Any, mixed: bool, order: np.ndarray
) -> np.ndarray:
    """``S[i, c] = sum_{j in c} ||x_i - x_j||`` (H: one-hot clusters), never holding an N x N matrix.

    Tiles D = dist(X_I, X_J) of the upper triangle (J starting at I) serve both sides: the
    rows of I get D @ H_J and the rows of J get D^T @ H_I, so each distance is computed
    once. Squared distances are ||x||^2 + ||y||^2 - 2 x.y on centred data (centring removes
    the offset that makes the expansion cancel), clamped at 0; the diagonal and identical
    rows get an exact 0. float64 throughout, or with ``mixed`` a float32 GEMM per tile,
    kept only where no pair is close enough for its rounding to matter (see ``_KAPPA``).
    Rows are sorted by ``order`` (the labels) so that the close within-cluster pairs share
    few tiles. ``dev``: a torch device, or None for numpy.
    """
    n = X.shape[0]
    perm = np.argsort(order, kind="stable")
    Xc, H = X[perm], H[perm]  # fresh copies: centre in place
    dup = _duplicate_ids(Xc)
    Xc -= Xc.mean(axis=0)
    sq = np.einsum("ij,ij->i", Xc, Xc)
    cuda = dev is not None and dev.type == "cuda"
    rows = int(block_size) if block_size is not None else default_block_size(n, cuda=cuda)
    rows = max(1, min(rows, n))
    cols = max(rows, default_block_size(n, cuda=cuda))
    if dev is None:
        S = _sums_numpy(Xc, sq, H, rows, cols, dup, mixed)
    else:
        S = _sums_torch(Xc, sq, H, rows, cols, dup, mixed, dev)
    out = np.empty_like(S)
    out[perm] = S
    return out


def _sums_numpy(
    Xc: np.ndarray, sq: np.ndarray, H: np.ndarray, rows: int, cols: int, dup: np.ndarray | None, mixed: bool
) -> np.ndarray:
    n = Xc.shape[0]
    S = np.zeros((n, H.shape[1]), dtype=np.float64)
    X32 = Xc.astype(np.float32) if mixed else None
    h = 0.5 * _KAPPA
    for s, e, c, f in _tiles(n, rows, cols):
        D = None
        if X32 is not None:
            D = np.multiply(X32[s:e] @ X32[c:f].T, -2.0, dtype=np.float64)
            D += sq[c:f]
            D += sq[s:e, None]
            if c == s:
                np.fill_diagonal(D, np.inf)  # the diagonal is set to 0 below
            # Cheap sufficient test first; the exact per-pair test only where it fails.
            if D.min() < h * (sq[s:e].max() + sq[c:f].max()):
                bad = D - h * sq[c:f] < h * sq[s:e, None]
                if dup is not None:
                    bad &= dup[s:e, None] != dup[None, c:f]
                if bad.any():
                    D = None
        if D is None:
            D = Xc[s:e] @ Xc[c:f].T
            D *= -2.0
            D += sq[c:f]
            D += sq[s:e, None]
        np.maximum(D, 0.0, out=D)
        if c == s:
            np.fill_diagonal(D, 0.0)
        if dup is not None:
            D[dup[s:e, None] == dup[None, c:f]] = 0.0
        np.sqrt(D, out=D)
        S[s:e] += D @ H[c:f]
        # Columns past the row block get the transposed contribution (the square part of a
        # diagonal tile is symmetric and already counted from both sides above).
        lo = e - s if c == s else 0
        if c + lo < f:
            S[c + lo:f] += D[:, lo:].T @ H[s:e]
    return S


def _sums_torch(
    Xc: np.ndarray, sq: np.ndarray, H: np.ndarray, rows: int, cols: int, dup: np.ndarray | None, mixed: bool,
    dev: Any,
) -> np.ndarray:
    """The loop of ``_sums_numpy`` in torch (same arithmetic), for CUDA."""
    import torch

    f64 = torch.float64
    Xt = torch.from_numpy(Xc).to(dev, f64)
    X32 = Xt.float() if mixed else None
    sqt = torch.from_numpy(sq).to(dev, f64)
    Ht = torch.from_numpy(H).to(dev, f64)
    dupt = torch.from_numpy(dup).to(dev) if dup is not None else None
    S = torch.zeros((Xc.shape[0], H.shape[1]), dtype=f64, device=dev)
    h = 0.5 * _KAPPA
    # TF32 (10-bit mantissa) would void the float32 error bound: force full float32 GEMMs.
    saved = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.inference_mode():
            for s, e, c, f in _tiles(Xc.shape[0], rows, cols):
                D = None
                if X32 is not None:
                    D = torch.add(sqt[c:f].unsqueeze(0), X32[s:e] @ X32[c:f].T, alpha=-2.0)
                    D.add_(sqt[s:e].unsqueeze(1))
                    if c == s:
                        D.diagonal().fill_(torch.inf)
                    if float(D.min()) < h * float(sqt[s:e].max() + sqt[c:f].max()):
                        bad = (D - h * sqt[c:f].unsqueeze(0)) < h * sqt[s:e].unsqueeze(1)
                        if dupt is not None:
                            bad &= dupt[s:e].unsqueeze(1) != dupt[c:f].unsqueeze(0)
                        if bool(bad.any()):
                            D = None
                if D is None:
                    D = torch.addmm(sqt[c:f].unsqueeze(0), Xt[s:e], Xt[c:f].T, beta=1.0, alpha=-2.0)
                    D.add_(sqt[s:e].unsqueeze(1))
                D.clamp_(min=0.0)
                if c == s:
                    D.diagonal().zero_()
                if dupt is not None:
                    D.masked_fill_(dupt[s:e].unsqueeze(1) == dupt[c:f].unsqueeze(0), 0.0)
                D.sqrt_()
                S[s:e] += D @ Ht[c:f]
                lo = e - s if c == s else 0
                if c + lo < f:
                    S[c + lo:f] += D[:, lo:].T @ Ht[s:e]
    finally:
        torch.set_float32_matmul_precision(saved)
    return S.cpu().numpy()


def _cosine_cluster_sums(X: np.ndarray, H: np.ndarray, codes_list: Sequence[np.ndarray]) -> np.ndarray:
    """``S[i, c] = sum_{j in c, j != i} (1 - u_i . u_j)`` with u = x / ||x|| (zero rows stay 0, as sklearn).

    With z_i = ||u_i||^2 in {0, 1}: 1 - u_i.u_j = 1 - (z_i + z_j)/2 + ||u_i - u_j||^2 / 2, and
    sum_{j in c} ||u_i - u_j||^2 = |c| ||u_i - m_c||^2 + sum_{j in c} ||u_j - m_c||^2 (m_c: the
    cluster's mean), so the whole sum costs O(N k d) instead of O(N^2 d). Differences are taken
    after subtracting the overall mean direction, so nearly parallel embeddings (tiny cosine
    distances) do not cancel catastrophically, unlike the direct 1 - u.v.
    """
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    z = (norms > 0.0).astype(np.float64)
    norms[norms == 0.0] = 1.0
    U = X / norms[:, None]
    V = U - U.mean(axis=0)
    sizes = H.sum(axis=0)
    W = (H.T @ V) / sizes[:, None]  # (K, d): cluster means of V
    q = np.einsum("ij,ij->i", V, V)[:, None] + np.einsum("ij,ij->i", W, W)[None, :] - 2.0 * (V @ W.T)
    np.maximum(q, 0.0, out=q)
    spread = np.zeros_like(sizes)  # sum_{j in c} ||v_j - w_c||^2, from exact differences
    off = 0
    for codes in codes_list:
        k = int(codes.max()) + 1
        R = V - W[off + codes]
        spread[off:off + k] = np.bincount(codes, weights=np.einsum("ij,ij->i", R, R), minlength=k)
        off += k
    S = sizes[None, :] * (1.0 - 0.5 * z[:, None]) - 0.5 * (z @ H)[None, :]
    S += 0.5 * (sizes[None, :] * q + spread[None, :])
    # Remove each point's own term 1 - z_i (0, or 1 for a zero row) from its clusters.
    S -= H * (1.0 - z)[:, None]
    np.maximum(S, 0.0, out=S)
    # A cluster made only of copies of u_i is at distance exactly 0 from i; the formula
    # above leaves rounding noise there, which would turn sklearn's 0/0 -> 0 into +-1.
    dup = _duplicate_ids(U)
    if dup is not None:
        by_id = np.argsort(dup, kind="stable")
        sorted_ids = dup[by_id]
        off = 0
        for codes in codes_list:
            k = int(codes.max()) + 1
            lo = np.full(k, np.iinfo(np.int64).max)
            hi = np.full(k, -1)
            np.minimum.at(lo, codes, dup)
            np.maximum.at(hi, codes, dup)
            for c in np.flatnonzero(lo == hi):  # "pure" clusters: one distinct direction
                a, b = np.searchsorted(sorted_ids, [lo[c], lo[c] + 1])
                S[by_id[a:b], off + c] = 0.0
            off += k
    return S


def _silhouette_from_sums(S: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per-sample silhouette from the per-cluster distance sums, exactly as sklearn's reduction."""
    n = codes.shape[0]
    sizes = np.bincount(codes).astype(np.float64)
    rows = np.arange(n)
    intra = S[rows, codes].copy()
    mean_to = S / sizes
    mean_to[rows, codes] = np.inf
    b = mean_to.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = intra / (sizes[codes] - 1.0)
        s = (b - a) / np.maximum(a, b)
    # Singletons (0/0) and a = b = 0 give NaN; sklearn defines both as 0.
    return np.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0)


def _silhouettes(
    X: np.ndarray, codes_list: Sequence[np.ndarray], metric: str, block_size: int | None, dev: Any,
    mixed: bool = False,
) -> list[np.ndarray]:
    """silhouette_samples for several labelings of the same X, sharing one pass over the distances."""
    H, offsets = _one_hot(codes_list)
    if metric == "cosine":
        S = _cosine_cluster_sums(X, H, codes_list)
    else:
        S = _euclidean_cluster_sums(X, H, block_size, dev, mixed, codes_list[0])
    out = []
    for codes, off in zip(codes_list, offsets):
        k = int(codes.max()) + 1
        out.append(_silhouette_from_sums(S[:, off:off + k], codes))
    return out


def silhouette_samples(
    X: Any,
    labels: Any = None,
    *,
    metric: str = "euclidean",
    block_size: int | None = None,
    device: Any = "auto",
    precision: str = "auto",
) -> np.ndarray:
    """Silhouette coefficient of each sample, ``s(i) = (b(i) - a(i)) / max(a(i), b(i))``.

    a(i): mean distance to the other members of i's cluster; b(i): smallest mean distance
    to the members of another cluster; s(i) = 0 for a cluster of one (Rousseeuw 1987, J.
    Comput. Appl. Math. 20:53-65; same numbers as ``sklearn.metrics.silhouette_samples``).
    ``metric``: "euclidean" or "cosine" (1 - cos; exact O(N k d) formula, ignores the
    arguments below). Euclidean walks tiles of ``block_size`` rows (None: 1024 on CPU, 4096
    on CUDA) in numpy, or in torch on ``device`` "cuda" ("auto": CUDA when available and
    N >= 4096, "cpu": numpy).
    ``precision``: "float64" (every distance in float64), "mixed" (float32 GEMMs, float64
    where pairs are close, float64 sums: ~1.5-2x faster on CPU, agrees to ~1e-9 on typical
    data), or "auto": mixed for float32/float16 input (its own precision is float32, and
    sklearn rounds its distances to float32 too) from 2048 points on, except on GPUs with
    full-rate float64 (A100, H100: compute capability x.0); float64 otherwise. ``X`` may be
    an ``EmbeddedDataset``.
    """
    _check_metric(metric)
    _check_block_size(block_size)
    _check_precision(precision)
    low = _is_low_precision(X)
    X, codes, _ = as_xy(X, labels, what="silhouette")
    dev = _resolve_device(device, X.shape[0]) if metric == "euclidean" else _check_device(device)
    return _silhouettes(X, [codes], metric, block_size, dev, _use_mixed(precision, low, X.shape[0], dev))[0]


def silhouette(
    X: Any,
    labels: Any = None,
    *,
    metric: str = "euclidean",
    block_size: int | None = None,
    device: Any = "auto",
    precision: str = "auto",
) -> float:
    """Mean silhouette coefficient over all samples, in [-1, 1] (higher: tighter, better separated).

    The mean of ``silhouette_samples`` (same arguments); equals ``sklearn.metrics.silhouette_score``.
    """
    return float(np.mean(silhouette_samples(X, labels, metric=metric, block_size=block_size, device=device,
                                            precision=precision)))


def _centroids(X: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster sizes, cluster means), O(N d) via one sort."""
    k = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=k)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    sums = np.add.reduceat(X[order], starts, axis=0)
    return sizes.astype(np.float64), sums / sizes[:, None]


def _davies_bouldin(X: np.ndarray, codes: np.ndarray) -> float:
    sizes, centroids = _centroids(X, codes)
    k = sizes.shape[0]
    intra = np.bincount(codes, weights=np.linalg.norm(X - centroids[codes], axis=1), minlength=k) / sizes
    # Row by row: O(k d) memory even when k is large.
    cdist = np.stack([np.linalg.norm(centroids - centroids[i], axis=1) for i in range(k)])
    # sklearn's conventions: all-zero spreads or coinciding centroids score 0.
    if np.allclose(intra, 0) or np.allclose(cdist, 0):
        return 0.0
    cdist[cdist == 0] = np.inf
    scores = np.max((intra[:, None] + intra[None, :]) / cdist, axis=1)
    return float(np.mean(scores))


def davies_bouldin(X: Any, labels: Any = None) -> float:
    """Davies-Bouldin index (lower is better): mean over clusters of max_{j != i} (s_i + s_j) / d(c_i, c_j).

    s_i: mean distance of cluster i's points to its centroid c_i (Davies & Bouldin 1979,
    IEEE TPAMI 1(2):224-227; same number as ``sklearn.metrics.davies_bouldin_score``).
    """
    X, codes, _ = as_xy(X, labels, what="davies_bouldin")
    return _davies_bouldin(X, codes)


def _calinski_harabasz(X: np.ndarray, codes: np.ndarray) -> float:
    n = X.shape[0]
    sizes, centroids = _centroids(X, codes)
    k = sizes.shape[0]
    mean = X.mean(axis=0)
    extra = float(np.sum(sizes * np.sum((centroids - mean) ** 2, axis=1)))
    intra = float(np.sum((X - centroids[codes]) ** 2))
    return 1.0 if intra == 0.0 else extra * (n - k) / (intra * (k - 1.0))


def calinski_harabasz(X: Any, labels: Any = None) -> float:
    """Calinski-Harabasz index (higher is better): [B / (k - 1)] / [W / (n - k)].

    B: between-cluster dispersion sum_c n_c ||c_c - mean||^2; W: within-cluster sum of
    squared distances to the centroids (Calinski & Harabasz 1974, Commun. Stat. 3(1):1-27;
    same number as ``sklearn.metrics.calinski_harabasz_score``, 1.0 when W = 0).
    """
    X, codes, _ = as_xy(X, labels, what="calinski_harabasz")
    return _calinski_harabasz(X, codes)


def _check_int(value: Any, name: str, lo: int, hi: int | None = None, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name} must be an integer, got {value!r}{hint}")
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo} <= {name} <= {hi}" if hi is not None else f"{name} >= {lo}"
        raise InvalidInputError(f"{name}={value} is out of range: need {rng}{hint}")
    return int(value)


def _kmeans(X: np.ndarray, n_clusters: int, n_init: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed)
    return km.fit_predict(X).astype(np.int64)


def kmeans_labels(X: Any, n_clusters: int, *, n_init: int = 10, seed: int = 0) -> np.ndarray:
    """KMeans cluster labels (int64) of the rows of ``X``.

    ``sklearn.cluster.KMeans(n_clusters, n_init=n_init, random_state=seed).fit_predict(X)``
    (k-means++ seeding, Lloyd iterations; Arthur & Vassilvitskii 2007). ``X`` may be an
    ``EmbeddedDataset``.
    """
    if hasattr(X, "X") and hasattr(X, "labels"):
        X = X.X
    X = as_matrix(X, what="kmeans_labels: X")
    n_clusters = _check_int(n_clusters, "n_clusters", 1, X.shape[0],
                            f" (KMeans needs at most one cluster per sample; X has {X.shape[0]} rows)")
    n_init = _check_int(n_init, "n_init", 1)
    seed = _check_int(seed, "seed", 0, 2**32 - 1)
    return _kmeans(X, n_clusters, n_init, seed)


def cluster_report(
    X: Any,
    labels: Any = None,
    *,
    n_clusters: int | None = None,
    seed: int = 0,
    metric: str = "euclidean",
    label_names: Sequence[str] | None = None,
    precision: str = "auto",
) -> GeometryReport:
    """The paper's Table 2 numbers (and a few more) for one labelled embedding set.

    Silhouette (with ``metric``), Davies-Bouldin and Calinski-Harabasz with the true labels;
    silhouette and Davies-Bouldin with ``KMeans(n_clusters, n_init=10, random_state=seed)``
    labels (``n_clusters`` defaults to the number of true classes); ARI, NMI and V-measure
    of KMeans against the true labels (``sklearn.metrics``); mean silhouette per family,
    keyed by ``label_names[label]`` (the dataset's names for an ``EmbeddedDataset``) or
    ``str(label)``. KMeans metrics are NaN when KMeans finds fewer than two distinct clusters.
    ``precision`` as in ``silhouette_samples``.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score

    _check_metric(metric)
    _check_precision(precision)
    low = _is_low_precision(X)
    X, codes, names = as_xy(X, labels, what="cluster_report", label_names=label_names)
    n, dim = X.shape
    k_true = int(codes.max()) + 1
    if n_clusters is None:
        n_clusters = k_true
    n_clusters = _check_int(n_clusters, "n_clusters", 2, n - 1,
                            f" (silhouette of the KMeans labels needs 2 <= n_clusters <= n_samples - 1 = {n - 1})")
    seed = _check_int(seed, "seed", 0, 2**32 - 1)
    km = _kmeans(X, n_clusters, 10, seed)
    # KMeans can leave clusters empty (duplicate points): re-encode to 0..k'-1.
    _, km_codes = np.unique(km, return_inverse=True)
    km_codes = km_codes.reshape(-1).astype(np.int64)
    k_km = int(km_codes.max()) + 1
    km_ok = 2 <= k_km <= n - 1

    dev = _resolve_device("auto", n) if metric == "euclidean" else None
    sils = _silhouettes(X, [codes, km_codes] if km_ok else [codes], metric, None, dev,
                        _use_mixed(precision, low, n, dev))
    s_true = sils[0]
    per_family = {}
    for c in range(k_true):
        key = names[c] if names is not None else str(c)
        per_family[key] = float(np.mean(s_true[codes == c]))
    return GeometryReport(
        silhouette_true=float(np.mean(s_true)),
        davies_bouldin_true=_davies_bouldin(X, codes),
        calinski_harabasz_true=_calinski_harabasz(X, codes),
        silhouette_kmeans=float(np.mean(sils[1])) if km_ok else math.nan,
        davies_bouldin_kmeans=_davies_bouldin(X, km_codes) if km_ok else math.nan,
        ari=float(adjusted_rand_score(codes, km)),
        nmi=float(normalized_mutual_info_score(codes, km)),
        v_measure=float(v_measure_score(codes, km)),
        per_family_silhouette=per_family,
        n=int(n),
        dim=int(dim),
        n_clusters=int(n_clusters),
        metric=metric,
        seed=int(seed),
    )

