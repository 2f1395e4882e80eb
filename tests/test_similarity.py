"""Similarity of two spaces: CKA vs the HSIC formula, mutual k-NN vs brute force, Procrustes vs scipy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import procrustes as scipy_procrustes
from scipy.stats import special_ortho_group

from geomcheck.models.embedder import EmbeddedDataset
from geomcheck.errors import InvalidInputError
from geomcheck.metrics import linear_cka, mutual_knn, procrustes_distance


def _rotation(d: int, seed: int) -> np.ndarray:
    return special_ortho_group.rvs(d, random_state=seed) if d > 1 else np.array([[-1.0]])


def _naive_cka(X, Y):
    """HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), K = XX^T, L = YY^T, H = I - 11^T / n (N x N)."""
    n = X.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = X @ X.T, Y @ Y.T

    def hsic(A, B):
        return np.trace(A @ H @ B @ H)

    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


# --- linear CKA ---------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 60), st.integers(1, 40), st.integers(1, 40))
def test_cka_equals_the_hsic_formula(seed, n, dx, dy):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dx))
    Y = X[:, :1] * rng.normal() + rng.normal(size=(n, dy))  # partly related
    ours = linear_cka(X, Y)
    assert ours == pytest.approx(_naive_cka(X, Y), rel=1e-9, abs=1e-12)
    assert ours == pytest.approx(linear_cka(Y, X), rel=1e-12)
    assert 0.0 <= ours <= 1.0


@pytest.mark.parametrize("n, d", [(200, 5), (8, 50)])  # feature-space form / Gram form
def test_cka_invariances(n, d):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, d))
    assert linear_cka(X, X) == pytest.approx(1.0, abs=1e-12)
    Y = 3.7 * X @ _rotation(d, 2) + 5.0  # rotation, isotropic scale, shift
    assert linear_cka(X, Y) == pytest.approx(1.0, abs=1e-12)
    Z = rng.normal(size=(n, d + 3))
    assert linear_cka(X, Z) == pytest.approx(_naive_cka(X, Z), rel=1e-9)
    # not invariant to anisotropic scaling
    W = X * np.r_[10.0, np.ones(d - 1)]
    assert linear_cka(X, W) < 0.999


def test_cka_of_unrelated_spaces_is_small():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(2000, 10)), rng.normal(size=(2000, 12))
    assert linear_cka(X, Y) < 0.05


def test_cka_by_hand():
    # X = [0, 1, 2] and Y = [0, 1, 4] (one column each): CKA = corr(X, Y)^2.
    X, Y = np.array([[0.0], [1.0], [2.0]]), np.array([[0.0], [1.0], [4.0]])
    assert linear_cka(X, Y) == pytest.approx(np.corrcoef(X[:, 0], Y[:, 0])[0, 1] ** 2, rel=1e-12)
    assert linear_cka(X, Y) == pytest.approx(12 / 13, rel=1e-12)  # centred: (-1, 0, 1), (-5, -2, 7)/3: 4^2 / (2 * 26/3)


# --- mutual k-NN ----------------------------------------------------------------------------------


def _brute_knn(Z, k, metric):
    if metric == "cosine":
        U = Z / np.linalg.norm(Z, axis=1, keepdims=True)
        key = -(U @ U.T)
    else:
        key = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(key, np.inf)
    return [set(np.argsort(row, kind="stable")[:k]) for row in key]


@settings(deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 80), st.integers(1, 20), st.sampled_from(["cosine", "euclidean"]))
def test_mutual_knn_equals_brute_force_over_all_points_and_over_some(seed, n, d, metric):
    # some: what a comparison above exact_max measures, sampled texts' neighbourhoods among all of them
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = X + rng.normal(scale=0.5, size=(n, d))
    k = int(rng.integers(1, n))
    rows = np.sort(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False))
    a, b = _brute_knn(X, k, metric), _brute_knn(Y, k, metric)
    shared = np.array([len(p & q) / k for p, q in zip(a, b)])
    assert mutual_knn(X, Y, k, metric=metric) == pytest.approx(shared.mean(), abs=1e-12)
    assert mutual_knn(X, Y, k, metric=metric, rows=rows) == pytest.approx(shared[rows].mean(), abs=1e-12)


@pytest.mark.parametrize("rows", [np.array([], dtype=int), np.array([0, 9]), np.array([-1]), np.array([[0]]),
                                  np.array([0.5])])
def test_mutual_knn_refuses_rows_that_are_not_point_indices(rows):
    X = np.random.default_rng(0).normal(size=(9, 3))
    with pytest.raises(InvalidInputError, match=r"rows must be a non-empty 1-D array of point indices in \[0, 9\)"):
        mutual_knn(X, X, 2, rows=rows)


def test_mutual_knn_identical_and_transformed_spaces_score_one():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 16))
    assert mutual_knn(X, X) == 1.0
    assert mutual_knn(X, 2.5 * X @ _rotation(16, 5), k=7) == 1.0
    # cosine ignores each row's length; euclidean does not
    scaled = X * rng.uniform(0.5, 2.0, size=(300, 1))
    assert mutual_knn(X, scaled) == 1.0
    assert mutual_knn(X, scaled, metric="euclidean") < 1.0


def test_mutual_knn_of_unrelated_spaces_is_chance():
    rng = np.random.default_rng(6)
    n, k = 500, 10
    X, Y = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    # |overlap| of two random k-subsets of the n - 1 others has mean k^2 / (n - 1); sd of the mean ~0.002
    assert mutual_knn(X, Y, k) == pytest.approx(k / (n - 1), abs=0.01)


def test_mutual_knn_by_hand():
    # 1-D, k = 1. X = 0, 1, 5, 6: neighbours 1, 0, 3, 2. Y = 0, 1, 5, 100: neighbours 1, 0, 1, 2.
    X = np.array([[0.0], [1.0], [5.0], [6.0]])
    Y = np.array([[0.0], [1.0], [5.0], [100.0]])
    assert mutual_knn(X, Y, 1, metric="euclidean") == pytest.approx(3 / 4)
    # Ties go to the lower index: in X = 0, 1, -1 point 0 is 1 from both others -> picks 1;
    # in Y = 0, 1.5, -1 it picks 2. Points 1 and 2 pick 0 in both: 2/3.
    X = np.array([[0.0], [1.0], [-1.0]])
    Y = np.array([[0.0], [1.5], [-1.0]])
    assert mutual_knn(X, Y, 1, metric="euclidean") == pytest.approx(2 / 3)


# --- Procrustes -------------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 60), st.integers(1, 30))
def test_procrustes_equals_scipy(seed, n, d):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = X @ rng.normal(size=(d, d)) + rng.normal(size=(n, d))
    assert procrustes_distance(X, Y) == pytest.approx(scipy_procrustes(X, Y)[2], rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("n, dx, dy", [(50, 4, 9), (6, 20, 3), (5, 30, 40)])
def test_procrustes_different_dims_is_scipy_on_zero_padding(n, dx, dy):
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(n, dx)), rng.normal(size=(n, dy))
    d = max(dx, dy)
    Xp, Yp = np.zeros((n, d)), np.zeros((n, d))
    Xp[:, :dx], Yp[:, :dy] = X, Y
    expected = scipy_procrustes(Xp, Yp)[2]
    assert procrustes_distance(X, Y) == pytest.approx(expected, rel=1e-7, abs=1e-12)
    assert procrustes_distance(Y, X) == pytest.approx(expected, rel=1e-7, abs=1e-12)


def test_procrustes_of_a_rotated_scaled_copy_is_zero():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(100, 12))
    assert procrustes_distance(X, 0.3 * X @ _rotation(12, 9) - 4.0) == pytest.approx(0.0, abs=1e-12)
    assert 0.5 < procrustes_distance(X, rng.normal(size=(100, 12))) <= 1.0


# --- bad input ----------------------------------------------------------------------------------------

A = np.random.default_rng(10).normal(size=(12, 4))


def _emb(X, texts):
    return EmbeddedDataset(X, np.zeros(len(X), dtype=int), ("f",), tuple(texts), "m", "fp")


@pytest.mark.parametrize("fn", [linear_cka, mutual_knn, procrustes_distance])
@pytest.mark.parametrize(
    "X, Y, match",
    [
        (A, A[:-1], "X has 12 rows but Y has 11"),
        (A[:, 0], A, "1-D array"),
        (A, np.zeros((0, 4)), "empty"),
        (np.where(np.eye(12, 4) > 0, np.inf, A), A, r"4 of 12 rows contain NaN or inf \(first bad row: 0\)"),
        (A, np.where(np.arange(12)[:, None] == 7, np.nan, A), r"first bad row: 7"),
        (A[:1], A[:1], "at least 2 samples"),
    ],
)
def test_bad_input_raises_a_helpful_error(fn, X, Y, match):
    with pytest.raises(InvalidInputError, match=match):
        fn(X, Y)


@pytest.mark.parametrize("fn", [linear_cka, procrustes_distance])
def test_constant_space_is_an_error(fn):
    with pytest.raises(InvalidInputError, match="zero variance"):
        fn(A, np.ones((12, 3)))


@pytest.mark.parametrize("k", [0, 12, 13, -1, 2.5, True])
def test_mutual_knn_bad_k(k):
    with pytest.raises(InvalidInputError, match="1 <= k <= 11"):
        mutual_knn(A, A, k)


def test_mutual_knn_bad_metric():
    with pytest.raises(InvalidInputError, match="unknown metric"):
        mutual_knn(A, A, 3, metric="manhattan")


def test_embedded_datasets_must_hold_the_same_texts():
    texts = [f"t{i}" for i in range(12)]
    a, b = _emb(A, texts), _emb(A @ _rotation(4, 1), texts)
    assert linear_cka(a, b) == pytest.approx(1.0, abs=1e-12)
    assert mutual_knn(a, b, 3) == 1.0
    other = _emb(A, texts[:5] + ["x"] + texts[6:])
    with pytest.raises(InvalidInputError, match="different texts.*row 5"):
        linear_cka(a, other)


def test_mutual_knn_shows_progress_only_when_asked(monkeypatch, capsys):
    from geomcheck.metrics import _progress

    monkeypatch.setattr(_progress, "_QUIET_FOR", 0.0)
    monkeypatch.setattr(_progress, "_EVERY", 0.0)
    X = np.random.default_rng(0).normal(size=(50, 4))
    quiet = mutual_knn(X, X + 0.01, 3, progress=False)
    assert capsys.readouterr().err == ""
    assert mutual_knn(X, X + 0.01, 3, progress=True, rows=np.arange(10)) <= 1.0 and quiet <= 1.0
    err = capsys.readouterr().err
    assert "geomcheck: mutual 3-NN of 10 points among 50, two spaces: 100%" in err and err.endswith("\n")
