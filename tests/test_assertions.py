"""assert_* helpers: they pass on good geometry, fail on bad, and the failure explains itself."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import davies_bouldin_score, silhouette_score

from geomcheck.assertions import (
    assert_clusters_by_family,
    assert_davies_bouldin_below,
    assert_merge_preserves_base,
    assert_no_adapter_dominance,
    assert_no_regression,
    assert_silhouette_above,
)
from geomcheck.errors import GeometryAssertionError, InvalidInputError
from geomcheck.metrics.geometry import GeometryReport
from geomcheck.models.embedder import EmbeddedDataset


def blobs(spread: float, n_per: int = 8, k: int = 4, d: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 5
    X = np.concatenate([c + spread * rng.normal(size=(n_per, d)) for c in centers])
    return X, np.repeat(np.arange(k), n_per)


def emb(X, y, model="toy-model"):
    k = int(y.max()) + 1
    names = ("prime", "odd", "even", "recaman", "composite", "consecutive")[:k]
    return EmbeddedDataset(X, y, names, tuple(str(i) for i in range(len(y))), model, "fp")


def test_silhouette_above_passes_and_returns_sklearns_value():
    X, y = blobs(0.5)
    assert assert_silhouette_above(X, y, 0.3) == pytest.approx(silhouette_score(X, y), rel=1e-6)
    assert assert_silhouette_above(emb(X, y), 0.3) == pytest.approx(silhouette_score(X, y), rel=1e-6)


def test_silhouette_failure_message_names_everything():
    X, y = blobs(6.0)
    value = silhouette_score(X, y)
    with pytest.raises(GeometryAssertionError) as info:
        assert_silhouette_above(emb(X, y, "my-lora"), 0.5)
    msg = str(info.value)
    assert f"{value:+.4f}" in msg and "+0.5000" in msg and "my-lora" in msg and "32 texts / 4 families" in msg
    assert "Worst families: " in msg and "t-SNE" in msg
    assert isinstance(info.value, AssertionError)
    assert info.value.value == pytest.approx(value) and info.value.threshold == 0.5 and info.value.model == "my-lora"


def test_silhouette_worst_families_are_the_worst():
    from sklearn.metrics import silhouette_samples

    X, y = blobs(2.0, seed=3)
    X[y == 2] += np.random.default_rng(9).normal(size=(8, 12)) * 6  # spread family 2 out
    s = silhouette_samples(X, y)
    worst = min(range(4), key=lambda c: s[y == c].mean())
    names = ("prime", "odd", "even", "recaman")
    with pytest.raises(GeometryAssertionError, match=f"Worst families: {names[worst]} "):
        assert_silhouette_above(emb(X, y), 0.99)


def test_silhouette_with_confidence_judges_the_lower_bound():
    X, y = blobs(3.0, n_per=6)
    value = silhouette_score(X, y)
    assert_silhouette_above(X, y, value - 0.5, confidence=0.95, n_boot=200)
    with pytest.raises(GeometryAssertionError, match=r"95% CI .*its lower bound is not above") as info:
        assert_silhouette_above(X, y, value - 1e-3, confidence=0.95, n_boot=200)
    low, high = info.value.interval
    assert low < value - 1e-3 < high


def test_silhouette_cosine_metric():
    X, y = blobs(1.0)
    v = assert_silhouette_above(X, y, -1.0, metric="cosine")
    assert v == pytest.approx(silhouette_score(X, y, metric="cosine"), rel=1e-6)


def test_davies_bouldin_below():
    X, y = blobs(0.5)
    db = davies_bouldin_score(X, y)
    assert assert_davies_bouldin_below(X, y, db + 0.01) == pytest.approx(db, rel=1e-6)
    with pytest.raises(GeometryAssertionError, match=f"Davies–Bouldin .* = {db:.4f}; it is not below the threshold"):
        assert_davies_bouldin_below(emb(X, y), db - 0.01)


def test_clusters_by_family_catches_grouping_by_another_property():
    # Two families, each split between two far-apart "magnitude" groups: KMeans finds the
    # magnitudes (high silhouette), the family labels cut across them (silhouette < 0).
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(10, 5)) * 0.3 + off for off in (0, 20, 0.5, 20.5)])
    y = np.repeat([0, 0, 1, 1], 10)
    with pytest.raises(GeometryAssertionError, match="clusters by something other than the family") as info:
        assert_clusters_by_family(emb(X, y))
    assert info.value.value > 0.5
    Xg, yg = blobs(0.5)
    rep = assert_clusters_by_family(Xg, yg)
    assert rep.silhouette_true == pytest.approx(silhouette_score(Xg, yg), rel=1e-6)


def test_merge_preserves_base_on_arrays_and_embedders(tmp_path, monkeypatch):
    from geomcheck.models import load_model
    from geomcheck.sequences import paper_dataset
    from geomcheck.testing import tiny_model

    X, y = blobs(1.0)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(12, 12)))
    vals = assert_merge_preserves_base(3 * X @ q, X, min_cka=0.99, min_mutual_knn=0.99, max_silhouette_drop=1e-9,
                                       dataset=emb(X, y))
    assert vals["cka"] == pytest.approx(1.0) and vals["mutual_knn"] == 1.0
    noise = np.random.default_rng(2).normal(size=X.shape)
    with pytest.raises(GeometryAssertionError, match=r"does not keep the geometry of .*linear CKA 0\.\d{4} < 0\.9000"):
        assert_merge_preserves_base(noise, X)

    monkeypatch.setenv("GEOMCHECK_CACHE_DIR", str(tmp_path / "c"))
    path = tiny_model("bert", tmp_path / "m")
    a, b = load_model(str(path), device="cpu"), load_model(str(path), device="cpu")
    ds = paper_dataset(per_family=2, length=8)
    assert assert_merge_preserves_base(a, b, ds, min_cka=0.999, max_silhouette_drop=1e-6)["cka"] == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="pass the dataset"):
        assert_merge_preserves_base(a, b)


def test_adapter_dominance():
    X, y = blobs(1.0)
    A = np.random.default_rng(5).normal(size=X.shape)
    # merged == base: r = d(M, base) / (…) with d(M, base) = 1 - CKA(X, X), which is 0 up to float64 rounding
    # of the CKA sums (a few ulps of 1 per term summed: n·d·eps, about 1e-13 for these 32 × 12 blobs)
    X = np.asarray(X, dtype=np.float64)
    assert assert_no_adapter_dominance(X, X, A) == pytest.approx(0.0, abs=X.size * np.finfo(np.float64).eps)
    with pytest.raises(GeometryAssertionError, match=r"dominates .* r = 1\.000"):
        assert_no_adapter_dominance(A, X, A)  # merged == adapter
    assert assert_no_adapter_dominance(A, X, A, weight=1.0) == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="weight"):
        assert_no_adapter_dominance(X, X, A, weight=1.5)


def _report(**changes):
    base = dict(silhouette_true=0.1, davies_bouldin_true=2.0, calinski_harabasz_true=5.0, silhouette_kmeans=0.2,
                davies_bouldin_kmeans=1.5, ari=0.3, nmi=0.4, v_measure=0.4, per_family_silhouette={"prime": 0.0},
                n=24, dim=8, n_clusters=6)
    return GeometryReport(**{**base, **changes})


def test_no_regression():
    assert_no_regression(_report(silhouette_true=0.09), _report())  # within 0.02
    assert_no_regression(_report(silhouette_true=0.5, davies_bouldin_true=1.0), _report())  # better
    with pytest.raises(GeometryAssertionError, match=r"silhouette_true 0\.1000 -> 0\.0500 \(worse by 0\.0500"):
        assert_no_regression(_report(silhouette_true=0.05), _report())
    with pytest.raises(GeometryAssertionError, match="davies_bouldin_true 2.0000 -> 2.5000"):
        assert_no_regression(_report(davies_bouldin_true=2.5), _report())
    assert_no_regression(_report(ari=0.0), _report())  # ari not gated by default
    with pytest.raises(GeometryAssertionError, match="ari"):
        assert_no_regression(_report(ari=0.0), _report(), tolerances={"ari": 0.1})
    with pytest.raises(InvalidInputError, match="unknown fields"):
        assert_no_regression(_report(), _report(), tolerances={"speed": 1})


def test_call_forms_are_checked():
    X, y = blobs(1.0)
    with pytest.raises(InvalidInputError, match="with an array pass labels and threshold"):
        assert_silhouette_above(X, 0.1)
    with pytest.raises(InvalidInputError, match="with an EmbeddedDataset pass 1 more"):
        assert_silhouette_above(emb(X, y), y, 0.1)
    with pytest.raises(InvalidInputError, match="confidence"):
        assert_silhouette_above(X, y, 0.1, confidence=95)


def test_uncalibrated_intervals_are_refused():
    X, y = blobs(1.0)
    with pytest.raises(TypeError):
        assert_davies_bouldin_below(X, y, 5.0, confidence=0.95)  # no such option: DB intervals undercover
    with pytest.raises(InvalidInputError, match="euclidean silhouette only"):
        assert_silhouette_above(X, y, 0.1, metric="cosine", confidence=0.9)


@pytest.mark.parametrize("call", [
    lambda X, y, Y: assert_silhouette_above(X, y, float("nan")),
    lambda X, y, Y: assert_davies_bouldin_below(X, y, float("inf")),
    lambda X, y, Y: assert_clusters_by_family(X, y, margin=float("nan")),
    lambda X, y, Y: assert_merge_preserves_base(X, Y, min_cka=float("nan")),
    lambda X, y, Y: assert_merge_preserves_base(X, Y, min_cka=None, min_mutual_knn=float("nan")),
    lambda X, y, Y: assert_no_adapter_dominance(X, Y, Y, margin=float("nan")),
    lambda X, y, Y: assert_silhouette_above(X, y, 0.0, confidence=float("nan")),
    lambda X, y, Y: assert_silhouette_above(X, y, "high"),
])
def test_a_non_finite_threshold_is_an_input_error_not_a_pass(call):
    rng = np.random.default_rng(0)
    X, Y, y = rng.normal(size=(12, 4)), rng.normal(size=(12, 4)), np.repeat([0, 1, 2], 4)
    with pytest.raises(InvalidInputError, match="must be a finite number|must lie in"):
        call(X, y, Y)
