"""The Euclidean silhouette of a large set from a stratified sample of its points, with a confidence interval.

The silhouette is a mean over points, ``S = (1/N) sum_i s(i)``. Above ``exact_max`` points the
O(N^2 d) sum is out of reach, but each ``s(i)`` alone costs O(N d): it is computed *exactly*
(against all N points) for a sample of points drawn within each true class (stratified,
proportional allocation, at least 2 per class that has 2), and ``S`` is estimated by the
stratified mean ``sum_h (N_h / N) mean_h(s)``, which is unbiased for S. Its variance is
``sum_h (N_h / N)^2 (1 - m_h / N_h) var_h(s) / m_h`` (finite-population correction; Cochran
1977, *Sampling Techniques*, 3rd ed., section 5.3), and the interval is the normal one,
``estimate +- z SE``. Nothing is re-run: the interval comes from the per-point values, so the
cost is m N pair distances for m sampled points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = ["EXACT_MAX_N", "MIN_SAMPLE", "Estimate", "default_sample_size", "stratified_mean", "stratified_sample",
           "sampled_silhouettes"]

# Up to this many points the Euclidean silhouette is exact; above, a stratified sample of points (see
# default_sample_size). At d = 384 on a 2-core CPU the silhouette itself takes seconds here (bench/metrics.py
# prints it at 60k and 100k), but a baseline comparison at this size also runs two float64 passes and the
# mutual k-NN of every text: 142 s at 60k (bench/baseline_scale.py --n 60000), the slowest step this bounds.
EXACT_MAX_N = 60_000
MIN_SAMPLE = 1_000


def default_sample_size(n: int, exact_max: int = EXACT_MAX_N) -> int:
    """Points to sample above ``exact_max``: as many as the exact path at ``exact_max`` costs pair
    distances (``m N = exact_max^2 / 2``), so the time stays about the same, at least ``MIN_SAMPLE``."""
    return int(min(n, max(MIN_SAMPLE, math.ceil(exact_max * exact_max / (2 * n)))))


def stratified_sample(codes: np.ndarray, m: int, seed: int) -> np.ndarray:
    """Sorted indices of about ``m`` points drawn without replacement within each class of ``codes``:
    ``round(m N_h / N)`` of class h, at least ``min(2, N_h)``, at most ``N_h``."""
    rng = np.random.default_rng(seed)
    n = codes.shape[0]
    sizes = np.bincount(codes)
    want = np.clip(np.rint(m * sizes / n).astype(np.int64), np.minimum(2, sizes), sizes)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    picks = [order[s + rng.choice(size, size=w, replace=False)] for s, size, w in zip(starts, sizes, want) if w]
    return np.sort(np.concatenate(picks))


@dataclass(frozen=True)
class Estimate:
    """A stratified estimate of a mean: ``estimate``, its interval ``low``..``high`` at ``level``, ``se``."""

    estimate: float
    low: float
    high: float
    level: float
    se: float


def stratified_mean(values: np.ndarray, strata: np.ndarray, sizes: np.ndarray, level: float = 0.95) -> Estimate:
    """The stratified mean of ``values`` (sampled points, their stratum in ``strata``) over strata of
    ``sizes`` points each, with its normal interval (see the module docstring)."""
    N = float(sizes.sum())
    k = sizes.shape[0]
    m = np.bincount(strata, minlength=k).astype(np.float64)
    sums = np.bincount(strata, weights=values, minlength=k)
    means = np.divide(sums, m, out=np.zeros(k), where=m > 0)
    dev = np.bincount(strata, weights=(values - means[strata]) ** 2, minlength=k)
    var = np.divide(dev, m - 1, out=np.zeros(k), where=m > 1)
    w = sizes / N
    est = float(np.sum(w * means))
    fpc = np.divide(sizes - m, sizes, out=np.zeros(k), where=sizes > 0)
    se = float(math.sqrt(np.sum(np.divide(w * w * fpc * var, m, out=np.zeros(k), where=m > 0))))
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return Estimate(est, est - z * se, est + z * se, float(level), se)


def sampled_silhouettes(X: np.ndarray, codes_list: Sequence[np.ndarray], rows: np.ndarray, mixed: bool,
                        progress: Any, block: int = 1024) -> list[np.ndarray]:
    """Exact s(i) of the points ``rows`` (against all points) for each labeling: O(len(rows) N d)."""
    from geomcheck.metrics._cosine import _rows_silhouette
    from geomcheck.metrics._euclidean import sampled_sums

    S = sampled_sums(X, codes_list, rows, block, mixed, progress)
    out, off = [], 0
    for codes in codes_list:
        k = int(codes.max()) + 1
        sizes = np.bincount(codes, minlength=k).astype(np.float64)
        out.append(_rows_silhouette(S[:, off:off + k], codes[rows], sizes))
        off += k
    return out
