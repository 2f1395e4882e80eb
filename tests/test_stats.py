"""geomcheck.metrics.stats: interval coverage against a population silhouette, permutation p-values, inputs.

The population silhouette of Gaussian classes N(mu_k, sigma_k^2 I) is computed from a
closed form: ||x - Y|| / sigma for Y ~ N(mu, sigma^2 I_d) is a noncentral chi with d degrees
of freedom and noncentrality lam = ||x - mu||^2 / sigma^2, whose mean is
sqrt(2) Gamma((d+1)/2) / Gamma(d/2) 1F1(-1/2; d/2; -lam/2). So a(x) and b(x) are exact for
each x and only the outer mean over x is Monte Carlo (30,000 points, error ~ 1e-3). The
closed form is checked against sklearn's silhouette_score on 6 x 1000 sampled points.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.metrics import davies_bouldin_score, silhouette_score

from geomcheck.metrics import stats
from geomcheck.errors import GeomcheckError, InvalidInputError

K = 6


@dataclass(frozen=True)
class Scenario:
    """Six isotropic Gaussian classes; ``seed`` fixes the class means (the population)."""

    name: str
    per_class: int
    dim: int
    spread: float
    sigmas: tuple[float, ...]
    seed: int

    @functools.cached_property
    def means(self) -> np.ndarray:
        return np.random.default_rng(self.seed).normal(size=(K, self.dim)) * self.spread

    def sample(self, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        X = np.concatenate([m + s * rng.normal(size=(per_class, self.dim)) for m, s in zip(self.means, self.sigmas)])
        return X, np.repeat(np.arange(K), per_class)


HETERO = (0.8, 0.9, 1.0, 1.0, 1.1, 1.2)
# The paper's regime (6 families x 4 texts), a MiniLM-like negative one, and a larger n.
PAPER_POS = Scenario("6x4 d=32 pop~+0.05", 4, 32, 0.6, HETERO, 5)
PAPER_NEG = Scenario("6x4 d=32 pop~-0.10", 4, 32, 0.2, (0.6, 0.8, 1.0, 1.0, 1.2, 1.4), 2)
LARGER = Scenario("6x20 d=16 pop~+0.01", 20, 16, 0.5, HETERO, 0)


def _expected_distance(x: np.ndarray, mu: np.ndarray, sigma: float) -> np.ndarray:
    """E||x - Y|| for Y ~ N(mu, sigma^2 I_d): sigma * mean of a noncentral chi (closed form)."""
    from scipy.special import gammaln, hyp1f1

    d = x.shape[-1]
    lam = ((x - mu) ** 2).sum(axis=-1) / sigma**2
    return sigma * math.sqrt(2) * math.exp(gammaln((d + 1) / 2) - gammaln(d / 2)) * hyp1f1(-0.5, d / 2, -lam / 2)


@functools.lru_cache(maxsize=None)
def population_silhouette(sc: Scenario, n_outer: int = 5000) -> float:
    """Silhouette of the class distributions themselves (equal class weights)."""
    rng = np.random.default_rng(12345)
    per_class = []
    for k in range(K):
        x = sc.means[k] + sc.sigmas[k] * rng.normal(size=(n_outer, sc.dim))
        E = np.stack([_expected_distance(x, sc.means[j], sc.sigmas[j]) for j in range(K)], axis=1)
        a = E[:, k].copy()
        E[:, k] = np.inf
        b = E.min(axis=1)
        per_class.append(np.mean((b - a) / np.maximum(a, b)))
    return float(np.mean(per_class))


def test_closed_form_population_matches_a_large_sample():
    for sc in (PAPER_POS, PAPER_NEG):
        X, y = sc.sample(1000, seed=7)
        assert silhouette_score(X, y) == pytest.approx(population_silhouette(sc), abs=0.005)
    assert -0.15 < population_silhouette(PAPER_NEG) < -0.05 < 0.0 < population_silhouette(PAPER_POS) < 0.1


# ---- the fast replicate routine against sklearn and against the definition ----------------------


def _dedup_silhouette_by_definition(D: np.ndarray, y: np.ndarray, idx: np.ndarray) -> float:
    """Silhouette of the resample ``idx``: a(i) over same-cluster copies of *other* originals."""
    s = []
    for p, i in enumerate(idx):
        same = [q for q in idx[y == y[p]] if q != i]
        a = np.mean(D[i, same])
        b = min(np.mean(D[i, idx[y == c]]) for c in set(y.tolist()) - {y[p]})
        s.append((b - a) / max(a, b))
    return float(np.mean(s))


def test_batch_silhouette_matches_sklearn_and_definition():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), [3, 4, 5, 6, 7])
    X = rng.normal(size=(y.size, 8)) + 0.8 * np.eye(5, 8)[y]
    D = stats._distances(X)
    n = y.size
    plain = stats._batch_silhouette(D, y[None], np.ones((1, n)), dedup=True)[0]
    assert plain == pytest.approx(silhouette_score(X, y), rel=1e-12)
    assert plain == pytest.approx(silhouette_score(D, y, metric="precomputed"), rel=1e-12)
    assert stats.resolve_metric("silhouette")[0](X, y) == pytest.approx(plain, rel=1e-10)  # geomcheck.metrics
    assert stats.bootstrap_ci(X, y, n_boot=100, level=0.5).estimate == pytest.approx(plain, rel=1e-12)

    idx = stats.stratified_draws(y, 20, np.random.default_rng(1), distinct=True)
    w = np.zeros(idx.shape)
    np.add.at(w, (np.arange(20)[:, None], idx), 1.0)
    naive = stats._batch_silhouette(D, np.broadcast_to(y, idx.shape), w, dedup=False)
    dedup = stats._batch_silhouette(D, np.broadcast_to(y, idx.shape), w, dedup=True)
    for r in range(20):
        # sklearn puts copies at ~1e-8, not 0 (it expands ||x - y||^2), hence rel=1e-6.
        assert naive[r] == pytest.approx(silhouette_score(X[idx[r]], y), rel=1e-6)
        assert dedup[r] == pytest.approx(_dedup_silhouette_by_definition(D, y, idx[r]), rel=1e-10, abs=1e-12)
        assert (y[idx[r]] == y).all()  # stratified: every position keeps its cluster
        for k in range(5):  # no cluster resample made of one point only
            assert len(set(idx[r][y == k].tolist())) >= 2
    assert (naive > dedup).mean() > 0.9  # tied copies at distance 0 inflate the naive silhouette


# ---- coverage: the point of the module -------------------------------------------------------------

LEVEL = 0.90
N_SEEDS = 200
TOL = 3 * math.sqrt(LEVEL * (1 - LEVEL) / N_SEEDS)  # 3 binomial standard errors: 0.064


@pytest.mark.parametrize(
    ("sc", "n_boot"), [(PAPER_POS, 1000), (PAPER_NEG, 1000), (LARGER, 500)], ids=lambda v: getattr(v, "name", str(v))
)
def test_coverage_near_nominal_and_naive_bootstrap_fails(sc, n_boot):
    pop = population_silhouette(sc)
    ours = naive = 0
    t0 = time.perf_counter()
    for s in range(N_SEEDS):
        X, y = sc.sample(sc.per_class, seed=1000 + s)
        iv = stats.bootstrap_ci(X, y, "silhouette", n_boot=n_boot, level=LEVEL, seed=s)
        low, high = stats.bootstrap_ci(X, y, "silhouette", n_boot=n_boot, level=LEVEL, seed=s,
                                       method="plugin", interval="percentile")
        ours += pop in iv
        naive += low <= pop <= high
    ours, naive = ours / N_SEEDS, naive / N_SEEDS
    print(f"\n{sc.name}: population {pop:+.4f}; {LEVEL:.0%} coverage over {N_SEEDS} datasets: "
          f"dedup-basic {ours:.3f}, naive-percentile {naive:.3f} ({time.perf_counter() - t0:.1f}s)")
    assert abs(ours - LEVEL) <= TOL
    assert naive < LEVEL - TOL


# ---- the Interval and the API -------------------------------------------------------------------


def _blobs(per_class: int = 4, sep: float = 1.5, seed: int = 0, k: int = K, dim: int = 32):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), per_class)
    return rng.normal(size=(y.size, dim)) + sep * np.eye(k, dim)[y], y


def test_same_seed_same_interval_and_interval_behaves_like_a_pair():
    X, y = _blobs()
    a = stats.bootstrap_ci(X, y, "silhouette", n_boot=400, seed=3, level=0.9)
    b = stats.bootstrap_ci(X, y, "silhouette", n_boot=400, seed=3, level=0.9)
    c = stats.bootstrap_ci(X, y, "silhouette", n_boot=400, seed=4, level=0.9)
    assert a == b and a != c
    low, high = a
    assert (low, high) == tuple(a) == (a[0], a[1]) == (a.low, a.high)
    assert a.width == pytest.approx(high - low) and a.level == 0.9 and a.n_boot == 400
    assert a.estimate == pytest.approx(silhouette_score(X, y), rel=1e-10)
    assert "tied copies" in a.method


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("sep", [0.5, 1.5, 4.0])
def test_interval_contains_the_estimate(seed, sep):
    X, y = _blobs(sep=sep, seed=seed)
    iv = stats.bootstrap_ci(X, y, "silhouette", n_boot=500, seed=seed)
    assert iv.estimate in iv and -1 <= iv.low < iv.high <= 1


def test_dataset_object_in_place_of_arrays():
    from geomcheck.models.embedder import EmbeddedDataset

    X, y = _blobs()
    emb = EmbeddedDataset(X=X, labels=y, label_names=tuple("abcdef"), texts=tuple(map(str, range(24))),
                          model="toy", fingerprint="0")
    ref = stats.bootstrap_ci(X, y, "silhouette", n_boot=200)
    assert stats.bootstrap_ci(emb, None, "silhouette", n_boot=200) == ref
    assert stats.bootstrap_ci(emb, metric="silhouette", n_boot=200) == ref
    assert stats.bootstrap_ci(emb, "silhouette", n_boot=200) == ref
    assert stats.permutation_pvalue(emb, "silhouette", n_perm=99) == stats.permutation_pvalue(X, y, n_perm=99)
    with pytest.raises(InvalidInputError, match="not both"):
        stats.bootstrap_ci(emb, y, "silhouette")


def test_names_resolve_to_geomcheck_metrics_first(monkeypatch):
    import sys
    import types

    fake = types.ModuleType("geomcheck.metrics")
    fake.silhouette = lambda X, labels: 0.25
    fake.calinski_harabasz = lambda X, labels: 7.0
    monkeypatch.setitem(sys.modules, "geomcheck.metrics", fake)
    fn, name, greater = stats.resolve_metric("Silhouette_score")
    assert (fn(None, None), name, greater) == (0.25, "silhouette", True)
    assert stats.bootstrap_ci(*_blobs(), "ch", n_boot=200).estimate == 7.0
    fn, name, greater = stats.resolve_metric("davies-bouldin")  # not in the fake: sklearn's
    assert fn is davies_bouldin_score and greater is False


def test_other_metrics_and_callables():
    X, y = _blobs(sep=3.0)
    for name, ref in [("davies_bouldin", davies_bouldin_score), ("calinski_harabasz", None)]:
        iv = stats.bootstrap_ci(X, y, name, n_boot=200, seed=1)
        assert "plug-in" in iv.method and 0 <= iv.low < iv.high
        if ref is not None:
            assert iv.estimate == pytest.approx(ref(X, y), rel=1e-10)
    iv = stats.bootstrap_ci(X, y, lambda A, b: float(A[:, 0].mean()), n_boot=200)
    assert iv.estimate in iv


# ---- permutation p-values ---------------------------------------------------------------------------


def test_pvalue_small_for_separated_clusters_with_the_right_direction():
    X, y = _blobs(sep=4.0)
    assert stats.permutation_pvalue(X, y, "silhouette", n_perm=999) == pytest.approx(1 / 1000)
    assert stats.permutation_pvalue(X, y, "calinski_harabasz", n_perm=199) == pytest.approx(1 / 200)
    # Davies-Bouldin: lower is better, so "better than chance" is the lower tail.
    assert stats.permutation_pvalue(X, y, "davies_bouldin", n_perm=199) == pytest.approx(1 / 200)
    assert stats.permutation_pvalue(X, y, davies_bouldin_score, n_perm=199) == pytest.approx(1 / 200)
    assert stats.permutation_pvalue(X, y, "davies_bouldin", n_perm=199, alternative="greater") == 1.0
    assert stats.permutation_pvalue(X, y, "silhouette", n_perm=199, alternative="two-sided") == pytest.approx(2 / 200)
    db = lambda A, b: davies_bouldin_score(A, b)  # noqa: E731 - a callable with no name to go by
    with pytest.raises(InvalidInputError, match="greater_is_better"):
        stats.permutation_pvalue(X, y, db, n_perm=99)
    assert stats.permutation_pvalue(X, y, db, n_perm=99, greater_is_better=False) == pytest.approx(1 / 100)


def test_pvalue_generic_path_matches_fast_silhouette_path():
    X, y = _blobs(sep=0.7)
    fast = stats.permutation_pvalue(X, y, "silhouette", n_perm=199, seed=2)
    slow = stats.permutation_pvalue(X, y, silhouette_score, n_perm=199, seed=2)
    assert fast == slow and 0 < fast < 1


def test_pvalue_is_uniform_under_the_null():
    n_sets, n_perm, alpha = 200, 199, 0.1
    hits = 0
    for s in range(n_sets):
        rng = np.random.default_rng(s)
        X, y = rng.normal(size=(24, 32)), np.repeat(np.arange(K), 4)  # labels carry no information
        hits += stats.permutation_pvalue(X, y, "silhouette", n_perm=n_perm, seed=s) <= alpha
    # P(p <= 0.1) = 20/200 exactly for the (count+1)/(n_perm+1) estimator under exchangeability.
    assert abs(hits / n_sets - alpha) <= 3 * math.sqrt(alpha * (1 - alpha) / n_sets)


def test_pvalue_deterministic():
    X, y = _blobs(sep=0.5)
    assert stats.permutation_pvalue(X, y, n_perm=199, seed=5) == stats.permutation_pvalue(X, y, n_perm=199, seed=5)


# ---- bad inputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_boot": 0}, "n_boot must be a positive integer"),
        ({"n_boot": 2.5}, "n_boot must be a positive integer"),
        ({"level": 1.0}, "level must be strictly between 0 and 1"),
        ({"level": 0}, "level must be strictly between 0 and 1"),
        ({"method": "magic"}, "method must be"),
        ({"interval": "bca"}, "interval must be"),
        ({"metric": "silhuette"}, "did you mean 'silhouette'"),
        ({"metric": 3}, "metric must be a name"),
        ({"metric": "davies_bouldin", "method": "dedup"}, "silhouette only"),
    ],
)
def test_bad_arguments(kwargs, match):
    X, y = _blobs()
    with pytest.raises(InvalidInputError, match=match):
        stats.bootstrap_ci(X, y, **kwargs)


def test_bad_data():
    X, y = _blobs()
    Xn = X.copy()
    Xn[3, 2] = np.nan
    cases = [
        ((X[:, 0], y), "2-D array"),
        ((Xn, y), "NaN or inf .* row 3"),
        ((X, y[:-1]), "one label per row"),
        ((X, np.zeros(24)), "at least 2 clusters"),
        ((X, np.r_[y[:-1], 9]), r"at least \d+ points.*9 \(1\)"),
        ((np.array([["a"] * 3] * 24)[:, :3], y), "numeric"),
        ((X, None), "labels are missing"),
    ]
    for args, match in cases:
        with pytest.raises(InvalidInputError, match=match):
            stats.bootstrap_ci(*args, n_boot=200)
        with pytest.raises(GeomcheckError, match=match):
            stats.permutation_pvalue(*args, n_perm=99)
    with pytest.raises(InvalidInputError, match="n_perm must be a positive integer"):
        stats.permutation_pvalue(X, y, n_perm=0)
    with pytest.raises(InvalidInputError, match="alternative must be"):
        stats.permutation_pvalue(X, y, alternative="bigger")


def test_two_points_per_cluster():
    X, y = _blobs(per_class=2)
    with pytest.raises(InvalidInputError, match="at least 3 points"):
        stats.bootstrap_ci(X, y, "silhouette")  # the dedup bootstrap has nothing to resample
    assert stats.bootstrap_ci(X, y, "davies_bouldin", n_boot=200).n_boot == 200
    assert 0 < stats.permutation_pvalue(X, y, n_perm=99) <= 1


def test_too_few_replicates_warn():
    X, y = _blobs()
    with pytest.warns(UserWarning, match="n_boot >= 200"):
        stats.bootstrap_ci(X, y, n_boot=50, level=0.95)
    with pytest.warns(UserWarning, match="n_perm"):
        stats.permutation_pvalue(X, y, n_perm=9)


def test_bootstrap_of_a_large_set_is_refused_before_its_distance_matrix(monkeypatch):
    import geomcheck.metrics.stats as stats

    monkeypatch.setattr(stats, "_MAX_BOOT_N", 50)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.arange(60) % 3
    with pytest.raises(InvalidInputError, match=r"60 x 60 distance matrix.*cluster_report\(X, labels, exact_max"):
        stats.bootstrap_ci(X, y, "silhouette", n_boot=200)
