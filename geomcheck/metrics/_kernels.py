"""Silhouette kernels: per-cluster distance sums, and the device and precision they run at.

Everything a silhouette needs reduces to ``S[i, c] = sum_{j in c} d(x_i, x_j)``:
``silhouettes`` builds S for several labelings at once and reduces it as sklearn does.
Euclidean sums walk tiles of the upper triangle of the distance matrix (never N x N), in
numpy on CPU or torch on CUDA; cosine sums have a closed form. ``torch_device`` and
``use_mixed`` turn ``device=`` and ``precision=`` into what the tile loop runs on;
``centroids`` serves Davies-Bouldin and Calinski-Harabasz. Callers check inputs first
(``geomcheck.metrics._validation``): nothing here validates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from geomcheck._device import resolve_device
from geomcheck.metrics import _cosine, _euclidean
from geomcheck.errors import InvalidInputError

__all__ = [
    "METRICS",
    "PRECISIONS",
    "centroids",
    "default_block_size",
    "within",
    "is_low_precision",
    "silhouettes",
    "torch_device",
    "use_mixed",
]

METRICS = ("euclidean", "cosine")
PRECISIONS = ("auto", "float64", "mixed")

# The distance matrix is visited in (rows x cols) tiles of the upper triangle, never whole:
# a 1024 x 1024 float64 tile (8 MiB) stays in L3 while it is reduced, and its GEMM already
# runs at full speed; a bigger tile only adds memory. CUDA wants larger launches.
_TILE_CPU = 512  # with 4096 columns: 10% faster than 1024 at 10k (less of the diagonal tiles computed twice)
_TILE_CUDA = 4096
_COLS_CPU = 4096
# "mixed": a float32-GEMM tile is kept only if every pair in it has d^2 >= KAPPA times the
# mean of the two squared norms (after centring); there the float32 GEMM error (measured
# <= 4.3e-7 |x||y| at d = 1024, ~sqrt(d) growth) is <= ~2e-6 of d^2, typically ~1e-8, and
# it averages out over a cluster. Other tiles are recomputed in float64.
_KAPPA = 0.25
# Tests flip this to run the torch tile loop on CPU (normally numpy does CPU work: it is
# as fast for the GEMMs and much faster for elementwise work on a loaded 2-core machine).
_TORCH_ON_CPU = False
# device="auto" takes CUDA from this many points on (see torch_device).
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


def default_block_size(n: int, *, cuda: bool = False) -> int:
    """Rows per tile: 512 on CPU, 4096 on CUDA (never more than ``n``)."""
    return int(max(1, min(_TILE_CUDA if cuda else _TILE_CPU, n)))


def torch_device(device: str, n: int) -> Any:
    """The torch device for the Euclidean tile loop on ``n`` points, or None for numpy on the CPU.

    ``device`` is a checked name (``_validation.check_device``); ``geomcheck._device.resolve_device``
    resolves it, so a missing CUDA gets its advice. "auto" takes CUDA only from
    ``_AUTO_CUDA_MIN_N`` points on: below, the transfers and launches cost more than the CPU
    needs (and torch is not even imported).
    """
    if device == "auto":
        small = n < _AUTO_CUDA_MIN_N or _import_torch() is None
        device = "cpu" if small else resolve_device("auto", allow_mps=False)
    elif device != "cpu":
        if _import_torch() is None:
            raise InvalidInputError(f"device={device!r} needs torch, which is not installed; use device='cpu'")
        device = resolve_device(device, allow_mps=False)
    if device == "cpu":
        return _import_torch().device("cpu") if _TORCH_ON_CPU else None
    return _import_torch().device(device)


def use_mixed(precision: str, low_precision_input: bool, n: int, dev: Any) -> bool:
    """Whether the Euclidean tiles take float32 GEMMs ("mixed", True) or float64 ones (False).

    "auto" is mixed for float32/float16 input from ``_AUTO_MIXED_MIN_N`` points on, except
    on GPUs with full-rate float64; see ``silhouette_samples``.
    """
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


def is_low_precision(X: Any) -> bool:
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


def _tile_sizes(n: int, block_size: int | None, cuda: bool) -> tuple[int, int]:
    """(rows, columns) of a tile: ``block_size`` rows (default ``default_block_size``) against
    ``_COLS_CPU`` columns on the CPU (a wider float32 GEMM runs ~1.5x faster on two cores than a
    square 1024 one, measured), ``rows`` on CUDA."""
    rows = int(block_size) if block_size is not None else default_block_size(n, cuda=cuda)
    rows = max(1, min(rows, n))
    return rows, max(rows, default_block_size(n, cuda=cuda) if cuda else _COLS_CPU)


def _sums_torch(
    Xc: np.ndarray, sq: np.ndarray, H: np.ndarray, rows: int, cols: int, dup: np.ndarray | None, mixed: bool,
    dev: Any, progress: Any,
) -> np.ndarray:
    """The tile loop of ``_euclidean.exact_sums`` in torch with one-hot sums, for CUDA."""
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
                progress.advance((e - s) * (f - c))
    finally:
        torch.set_float32_matmul_precision(saved)
    return S.cpu().numpy()


def _silhouette_from_sums(S: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per-sample silhouette from the per-cluster distance sums, exactly as sklearn's reduction."""
    return _cosine._rows_silhouette(S, codes, np.bincount(codes).astype(np.float64))


def silhouettes(
    X: np.ndarray, codes_list: Sequence[np.ndarray], metric: str, block_size: int | None, dev: Any,
    mixed: bool = False, progress: Any = None,
) -> list[np.ndarray]:
    """silhouette_samples for several labelings of the same X, sharing one pass over the distances.

    Cosine: the exact O(N k d) formula (``_cosine``), in chunks. Euclidean: one set of
    per-cluster sums ``S[i, c]`` for all labelings (``_euclidean`` on the CPU, the torch tile
    loop on CUDA), each reduced to ``s(i) = (b(i) - a(i)) / max(a(i), b(i))`` as sklearn does.
    ``progress``: a ``_progress.Progress`` told of the work done (None: silent).
    """
    from geomcheck.metrics._progress import Progress

    n = X.shape[0]
    prog = progress if progress is not None else Progress("", 0, False)
    if metric == "cosine":
        prog.total = prog.total or 2.0 * n
        return _cosine.cosine_silhouettes(X, codes_list, prog)
    cuda = dev is not None and dev.type == "cuda"
    rows, cols = _tile_sizes(n, block_size, cuda)
    prog.total = prog.total or float(sum((e - s) * (f - c) for s, e, c, f in _tiles(n, rows, cols)))
    if dev is None:
        S = _euclidean.exact_sums(X, codes_list, rows, cols, mixed, _duplicate_ids, prog)
        offsets = np.concatenate(([0], np.cumsum([int(c.max()) + 1 for c in codes_list])[:-1])).astype(int)
    else:
        H, offsets = _one_hot(codes_list)
        S = _euclidean_cluster_sums_torch(np.asarray(X, dtype=np.float64), H, rows, cols, dev, mixed,
                                          codes_list[0], prog)
    out = []
    for codes, off in zip(codes_list, offsets):
        k = int(codes.max()) + 1
        out.append(_silhouette_from_sums(S[:, off:off + k], codes))
    return out


def _euclidean_cluster_sums_torch(X: np.ndarray, H: np.ndarray, rows: int, cols: int, dev: Any, mixed: bool,
                                  order: np.ndarray, progress: Any) -> np.ndarray:
    """``S[i, c] = sum_{j in c} ||x_i - x_j||`` by the torch tile loop (H: one-hot clusters)."""
    perm = np.argsort(order, kind="stable")
    Xc, H = X[perm], H[perm]  # fresh copies: centre in place
    dup = _duplicate_ids(Xc)
    Xc -= Xc.mean(axis=0)
    sq = np.einsum("ij,ij->i", Xc, Xc)
    S = _sums_torch(Xc, sq, H, rows, cols, dup, mixed, dev, progress)
    out = np.empty_like(S)
    out[perm] = S
    return out


_CHUNK = 8192  # rows per chunk of the O(N d) passes (centroids, spreads): float64 work stays ~25 MB


def centroids(X: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster sizes, cluster means) of the codes 0..k-1: float64 sums over label-sorted chunks of X
    (float32 or float64), O(N d) without a sorted copy of X."""
    k = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=k)
    order = np.argsort(codes, kind="stable")
    sums = np.zeros((k, X.shape[1]))
    for a in range(0, order.size, _CHUNK):
        idx = order[a:a + _CHUNK]
        c = codes[idx]
        starts = np.flatnonzero(np.concatenate(([True], c[1:] != c[:-1])))
        sums[c[starts]] += np.add.reduceat(X[idx], starts, axis=0, dtype=np.float64)
    return sizes.astype(np.float64), sums / sizes[:, None]


def within(X: np.ndarray, codes: np.ndarray, cents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: the sum of the distances of its points to its centroid, and of their squares (float64, chunked)."""
    k = cents.shape[0]
    dist, sq = np.zeros(k), np.zeros(k)
    for a in range(0, X.shape[0], _CHUNK):
        c = codes[a:a + _CHUNK]
        r = np.asarray(X[a:a + _CHUNK], dtype=np.float64) - cents[c]
        r2 = np.einsum("ij,ij->i", r, r)
        sq += np.bincount(c, weights=r2, minlength=k)
        dist += np.bincount(c, weights=np.sqrt(r2), minlength=k)
    return dist, sq
