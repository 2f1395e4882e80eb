"""Cluster-quality metrics of labelled embeddings: silhouette, Davies-Bouldin, Calinski-Harabasz, KMeans.

Pure functions in the style of ``sklearn.metrics.cluster`` that give sklearn's numbers.
Each checks its inputs first (``_validation``), then computes (``_kernels``). The
silhouette never holds the N x N distance matrix: it walks tiles of its upper triangle
(each distance computed once, half of sklearn's GEMM work), in numpy on CPU and in torch
on CUDA.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from geomcheck.metrics._kernels import (
    METRICS,
    PRECISIONS,
    centroids,
    default_block_size,
    is_low_precision,
    silhouettes,
    torch_device,
    use_mixed,
    within,
)
from geomcheck.metrics._progress import Progress, heartbeat
from geomcheck.metrics._validation import (
    as_matrix,
    as_xy,
    check_block_size,
    check_device,
    check_int,
    check_metric,
    check_precision,
)
from geomcheck.metrics.geometry import KMEANS_SEED, GeometryReport

__all__ = [
    "silhouette",
    "silhouette_samples",
    "davies_bouldin",
    "calinski_harabasz",
    "kmeans_labels",
    "cluster_report",
    "KMEANS_SEED",
    "KMEANS_RESTARTS",
    "METRICS",
    "PRECISIONS",
    "default_block_size",
]


def silhouette_samples(
    X: Any,
    labels: Any = None,
    *,
    metric: str = "euclidean",
    block_size: int | None = None,
    device: Any = "auto",
    precision: str = "auto",
    progress: bool | None = None,
) -> np.ndarray:
    """Silhouette coefficient of each sample, ``s(i) = (b(i) - a(i)) / max(a(i), b(i))``.

    a(i): mean distance to the other members of i's cluster; b(i): smallest mean distance
    to the members of another cluster; s(i) = 0 for a cluster of one (Rousseeuw 1987, J.
    Comput. Appl. Math. 20:53-65; same numbers as ``sklearn.metrics.silhouette_samples``).
    ``metric``: "euclidean" or "cosine" (1 - cos; exact O(N k d) formula, ignores the
    arguments below). Euclidean walks tiles of ``block_size`` rows (None: 512 on CPU, 4096
    on CUDA) in numpy, or in torch on ``device`` "cuda" ("auto": CUDA when available and
    N >= 4096, "cpu": numpy).
    ``precision``: "float64" (every distance in float64), "mixed" (float32 GEMMs, float64
    where pairs are close, float64 sums: ~1.5-2x faster on CPU, agrees to ~1e-9 on typical
    data), or "auto": mixed for float32/float16 input (its own precision is float32, and
    sklearn rounds its distances to float32 too) from 2048 points on, except on GPUs with
    full-rate float64 (A100, H100: compute capability x.0); float64 otherwise. ``X`` may be
    an ``EmbeddedDataset``. ``progress``: a line with rate and ETA on stderr while it runs
    past a few seconds (None: when stderr is a terminal; see ``geomcheck.metrics._progress``).
    """
    check_metric(metric)
    check_block_size(block_size)
    check_precision(precision)
    device = check_device(device)
    low = is_low_precision(X)
    X, codes, _ = as_xy(X, labels, what="silhouette", float32_ok=True)  # float32 stays: the kernels read chunks
    n = X.shape[0]
    dev = torch_device(device, n) if metric == "euclidean" else None  # cosine sums run in numpy
    with Progress(f"geomcheck: {metric} silhouette of {n:,} points", 0, progress, unit="pairs"
                  if metric == "euclidean" else "points") as prog:
        return silhouettes(X, [codes], metric, block_size, dev, use_mixed(precision, low, n, dev), prog)[0]


def silhouette(X: Any, labels: Any = None, **options: Any) -> float:
    """Mean silhouette coefficient over all samples, in [-1, 1] (higher: tighter, better separated).

    The mean of ``silhouette_samples`` (``options``: its ``metric``, ``block_size``,
    ``device``, ``precision``); equals ``sklearn.metrics.silhouette_score``.
    """
    return float(np.mean(silhouette_samples(X, labels, **options)))


def davies_bouldin(X: Any, labels: Any = None) -> float:
    """Davies-Bouldin index (lower is better): mean over clusters of max_{j != i} (s_i + s_j) / d(c_i, c_j).

    s_i: mean distance of cluster i's points to its centroid c_i (Davies & Bouldin 1979,
    IEEE TPAMI 1(2):224-227; same number as ``sklearn.metrics.davies_bouldin_score``).
    """
    X, codes, _ = as_xy(X, labels, what="davies_bouldin", float32_ok=True)
    sizes, cents = centroids(X, codes)
    k = sizes.shape[0]
    intra = within(X, codes, cents)[0] / sizes  # O(N d) in chunks: exact at any N
    # Row by row: O(k d) memory even when k is large.
    cdist = np.stack([np.linalg.norm(cents - cents[i], axis=1) for i in range(k)])
    # sklearn's conventions: all-zero spreads or coinciding centroids score 0.
    if np.allclose(intra, 0) or np.allclose(cdist, 0):
        return 0.0
    cdist[cdist == 0] = np.inf
    scores = np.max((intra[:, None] + intra[None, :]) / cdist, axis=1)
    return float(np.mean(scores))


def calinski_harabasz(X: Any, labels: Any = None) -> float:
    """Calinski-Harabasz index (higher is better): [B / (k - 1)] / [W / (n - k)].

    B: between-cluster dispersion sum_c n_c ||c_c - mean||^2; W: within-cluster sum of
    squared distances to the centroids (Calinski & Harabasz 1974, Commun. Stat. 3(1):1-27;
    same number as ``sklearn.metrics.calinski_harabasz_score``, 1.0 when W = 0).
    """
    X, codes, _ = as_xy(X, labels, what="calinski_harabasz", float32_ok=True)
    n = X.shape[0]
    sizes, cents = centroids(X, codes)
    k = sizes.shape[0]
    mean = (sizes @ cents) / n
    extra = float(np.sum(sizes * np.sum((cents - mean) ** 2, axis=1)))
    intra = float(np.sum(within(X, codes, cents)[1]))
    return 1.0 if intra == 0.0 else extra * (n - k) / (intra * (k - 1.0))


KMEANS_RESTARTS = 10  # the paper's n_init

# n x k past which KMeans runs one k-means++ start, not ten: 2,000 labels of 2 texts (n x k = 8e6) took
# > 12 minutes with ten starts on a 2-core CPU, and 143 s with one (bench/faults.py)
KMEANS_FULL_RESTARTS_LIMIT = 1_000_000
_KMEANS_FLOAT64_MAX = 2**26


def kmeans_restarts(n: int, n_clusters: int) -> int:
    """How many k-means++ starts ``cluster_report`` runs: the protocol's 10, or 1 above n x k = 1e6."""
    return KMEANS_RESTARTS if n * n_clusters <= KMEANS_FULL_RESTARTS_LIMIT else 1


def kmeans_labels(X: Any, n_clusters: int, *, n_init: int = KMEANS_RESTARTS, seed: int = KMEANS_SEED) -> np.ndarray:
    """KMeans cluster labels (int64) of the rows of ``X``.

    ``sklearn.cluster.KMeans(n_clusters, n_init=n_init, random_state=seed).fit_predict(X)``
    (k-means++ seeding, Lloyd iterations; Arthur & Vassilvitskii 2007). The defaults are the
    paper's (``n_init=10``, ``random_state=42``). ``X`` may be an ``EmbeddedDataset``.
    """
    if hasattr(X, "X") and hasattr(X, "labels"):
        X = X.X
    # float64 as always up to 2^26 numbers (512 MB); a larger float32 X stays float32 (sklearn's KMeans
    # runs in it) rather than take a float64 copy of 3 GB per million 384-d embeddings
    big = getattr(X, "size", 0) > _KMEANS_FLOAT64_MAX
    X = as_matrix(X, what="kmeans_labels: X", float32_ok=big)
    n_clusters = check_int(n_clusters, "n_clusters", 1, X.shape[0],
                           f" (KMeans needs at most one cluster per sample; X has {X.shape[0]} rows)")
    n_init = check_int(n_init, "n_init", 1)
    seed = check_int(seed, "seed", 0, 2**32 - 1)
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit_predict(X).astype(np.int64)


def cluster_report(
    X: Any,
    labels: Any = None,
    *,
    n_clusters: int | None = None,
    seed: int = KMEANS_SEED,
    metric: str = "euclidean",
    label_names: Sequence[str] | None = None,
    precision: str = "auto",
    exact_max: int | None = None,
    sample_size: int | None = None,
    progress: bool | None = None,
) -> GeometryReport:
    """The paper's Table 2 numbers (and a few more) for one labelled embedding set.

    Silhouette (with ``metric``), Davies-Bouldin and Calinski-Harabasz with the true labels;
    silhouette and Davies-Bouldin with ``KMeans(n_clusters, n_init=10, random_state=seed)``
    labels, the paper's protocol with the default ``seed=42`` (``n_clusters`` defaults to the number of true classes; one start instead of ten above
    n x k = 1e6, with a warning and ``kmeans_n_init`` in the report); ARI, NMI and V-measure
    of KMeans against the true labels (``sklearn.metrics``); mean silhouette per family,
    keyed by ``label_names[label]`` (the dataset's names for an ``EmbeddedDataset``) or
    ``str(label)``. KMeans metrics are NaN when KMeans finds fewer than two distinct clusters.
    ``precision`` as in ``silhouette_samples``.

    Size: the cosine silhouette, Davies-Bouldin and Calinski-Harabasz are exact at any N
    (O(N k d)). The Euclidean silhouette is exact (O(N^2 d)) up to ``exact_max`` points (None:
    ``EXACT_MAX_N``, 11 s on a 2-core CPU); above, it is estimated from a stratified
    sample of ``sample_size`` points (None: ``default_sample_size``), each point's silhouette
    exact against all N, and the report says so: ``silhouette_sample`` is the sample size (0:
    exact), ``intervals`` holds the 95% intervals of both silhouettes, and the per-family
    values are the sample's means (``geomcheck.metrics._sampled``). ``progress``: lines with
    rate and ETA on stderr for the steps that take a while (None: when stderr is a terminal).
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score

    from geomcheck.metrics import _sampled

    check_metric(metric)
    check_precision(precision)
    low = is_low_precision(X)
    X, codes, names = as_xy(X, labels, what="cluster_report", label_names=label_names, float32_ok=True)
    n, dim = X.shape
    exact_max = _sampled.EXACT_MAX_N if exact_max is None else check_int(exact_max, "exact_max", 2)
    k_true = int(codes.max()) + 1
    if n_clusters is None:
        n_clusters = k_true
    n_clusters = check_int(n_clusters, "n_clusters", 2, n - 1,
                           f" (silhouette of the KMeans labels needs 2 <= n_clusters <= n_samples - 1 = {n - 1})")
    seed = check_int(seed, "seed", 0, 2**32 - 1)
    sampled = metric == "euclidean" and n > exact_max
    if sample_size is not None:
        sample_size = check_int(sample_size, "sample_size", 2 * k_true, n, f" (at least 2 per class, {k_true} classes)")
    n_init = kmeans_restarts(n, n_clusters)
    if n_init < KMEANS_RESTARTS:  # said where the run shows it; the report records n_init
        warnings.warn(f"geomcheck: KMeans with {n_clusters:,} clusters on {n:,} points: {n_init} k-means++ start "
                      f"instead of the protocol's {KMEANS_RESTARTS} (n x k above {KMEANS_FULL_RESTARTS_LIMIT:,}); "
                      f"each start is ~{n * n_clusters * dim * 2 / 1e9:.0f} GFLOP an iteration", stacklevel=2)
    with heartbeat(f"geomcheck: KMeans, {n_clusters} clusters, {n_init} start(s), on {n:,} x {dim}",
                   progress if n * n_clusters * dim > 1e9 else False):
        km = kmeans_labels(X, n_clusters, n_init=n_init, seed=seed)
    # KMeans can leave clusters empty (duplicate points): re-encode to 0..k'-1.
    _, km_codes = np.unique(km, return_inverse=True)
    km_codes = km_codes.reshape(-1).astype(np.int64)
    k_km = int(km_codes.max()) + 1
    km_ok = 2 <= k_km <= n - 1
    codes_list = [codes, km_codes] if km_ok else [codes]

    dev = torch_device("auto", n) if metric == "euclidean" else None
    mixed = use_mixed(precision, low, n, dev)
    intervals: dict[str, tuple[float, float]] = {}
    if sampled:
        m = sample_size or _sampled.default_sample_size(n, exact_max)
        rows = _sampled.stratified_sample(codes, m, seed)
        what = f"geomcheck: euclidean silhouette of {rows.size:,} sampled points against {n:,}"
        with Progress(what, float(rows.size) * n, progress, unit="pairs") as prog:
            sils = _sampled.sampled_silhouettes(X, codes_list, rows, use_mixed(precision, low, n, None), prog)
        sizes = np.bincount(codes, minlength=k_true).astype(np.float64)
        ests = [_sampled.stratified_mean(s, codes[rows], sizes) for s in sils]
        values = [e.estimate for e in ests]
        intervals["silhouette_true"] = (ests[0].low, ests[0].high)
        if km_ok:
            intervals["silhouette_kmeans"] = (ests[1].low, ests[1].high)
        strata = codes[rows]
    else:
        with Progress(f"geomcheck: {metric} silhouette of {n:,} points", 0, progress,
                      unit="pairs" if metric == "euclidean" else "points") as prog:
            sils = silhouettes(X, codes_list, metric, None, dev, mixed, prog)
        values = [float(np.mean(s)) for s in sils]
        strata = codes
    fam = np.bincount(strata, weights=sils[0], minlength=k_true) / np.bincount(strata, minlength=k_true)
    per_family = {(names[c] if names is not None else str(c)): float(fam[c]) for c in range(k_true)}
    # davies_bouldin and calinski_harabasz check X again: O(N d), little next to KMeans.
    return GeometryReport(
        silhouette_true=values[0],
        davies_bouldin_true=davies_bouldin(X, codes),
        calinski_harabasz_true=calinski_harabasz(X, codes),
        silhouette_kmeans=values[1] if km_ok else math.nan,
        davies_bouldin_kmeans=davies_bouldin(X, km_codes) if km_ok else math.nan,
        ari=float(adjusted_rand_score(codes, km)),
        nmi=float(normalized_mutual_info_score(codes, km)),
        v_measure=float(v_measure_score(codes, km)),
        per_family_silhouette=per_family,
        n=int(n),
        dim=int(dim),
        n_clusters=int(n_clusters),
        metric=metric,
        seed=int(seed),
        intervals=intervals,
        kmeans_n_init=int(n_init),
        silhouette_sample=int(rows.size) if sampled else 0,
    )
