"""Metrics at scale: chunked cosine and tiled Euclidean against sklearn, the sampled Euclidean path (exact
per-text values, its interval's coverage, the flag in reports and tables), progress lines, thinned pictures."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import silhouette_samples as sk_silhouette_samples

from geomcheck.metrics import _cosine, _kernels, _progress, _sampled, cluster_report, silhouette, silhouette_samples
from geomcheck.metrics._progress import Progress

RTOL, ATOL = 1e-6, 1e-9


def _data(seed, n, d, k, *, scale=1.0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(k), rng.integers(0, k, size=n - k)])
    X = rng.normal(scale=2.0, size=(k, d))[y] + scale * rng.normal(size=(n, d))
    return X, y


def _cosine_reference(X, y):
    U = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-300)
    return sk_silhouette_samples(cdist(U, U, "sqeuclidean") / 2, y, metric="precomputed")


def test_chunked_cosine_equals_sklearn_across_chunks_for_two_labelings(monkeypatch):
    # chunks of 7 rows cut through clusters; copies, a pure cluster, a singleton, zero rows and a second
    # labeling (KMeans-like) all go through the pass-1 / pass-2 bookkeeping
    X, y = _data(0, 140, 6, 5)
    X[10:14] = X[10]  # copies inside a cluster
    y2 = (np.arange(140) * 7) % 4
    X[[20, 21, 22]] = X[23]  # one direction: with its own label, a pure cluster
    y = y.copy()
    y[[20, 21, 22, 23]] = 5
    y[30] = 6  # a singleton
    X[[40, 41]] = 0.0  # zero rows: distance 1 to everything (sklearn)
    monkeypatch.setattr(_cosine, "CHUNK", 7)
    s1, s2 = _kernels.silhouettes(X.astype(np.float32), [y, y2], "cosine", None, None)
    X64 = X.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(s1, sk_silhouette_samples(X64, y, metric="cosine"), rtol=RTOL, atol=1e-7)
    np.testing.assert_allclose(s2, sk_silhouette_samples(X64, y2, metric="cosine"), rtol=RTOL, atol=1e-7)
    assert s1[30] == 0.0 and np.all(s1[[20, 21, 22, 23]] == 1.0)  # singleton 0; a pure cluster: a = 0 exactly


def test_float32_input_is_read_without_a_float64_copy(monkeypatch):
    # the kernels read float32 chunks: no N x d float64 array (5 MB here), no copy of X at all
    import tracemalloc

    monkeypatch.setattr(_cosine, "CHUNK", 1024)
    X, y = _data(1, 20_000, 32, 6)
    X32 = X.astype(np.float32)
    tracemalloc.start()
    ours = silhouette(X32, y, metric="cosine")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < X32.nbytes, f"peak {peak / 1e6:.1f} MB for X of {X32.nbytes / 1e6:.1f} MB"
    assert ours == pytest.approx(silhouette(X32.astype(np.float64), y, metric="cosine"), rel=1e-12)


def test_euclidean_tiles_narrower_than_the_data_with_two_labelings(monkeypatch):
    # column blocks of 16 (not the 4096 of real runs): runs of labels cut by tiles, copies zeroed exactly
    monkeypatch.setattr(_kernels, "_COLS_CPU", 16)
    X, y = _data(2, 90, 5, 4)
    X[5:9] = X[5]
    y2 = np.arange(90) % 3
    for precision in ("float64", "mixed"):
        s1, s2 = _kernels.silhouettes(X, [y, y2], "euclidean", 8, None, precision == "mixed")
        tol = 8 * float(np.finfo(np.float32).eps) if precision == "mixed" else ATOL
        D = cdist(X, X)
        np.testing.assert_allclose(s1, sk_silhouette_samples(D, y, metric="precomputed"), rtol=RTOL, atol=tol)
        np.testing.assert_allclose(s2, sk_silhouette_samples(D, y2, metric="precomputed"), rtol=RTOL, atol=tol)


# --- the sampled Euclidean path ------------------------------------------------------------------


def test_sampled_rows_get_their_exact_silhouettes():
    X, y = _data(3, 600, 8, 5)
    X[100:103] = X[100]  # copies: at distance exactly 0 from each other
    exact = sk_silhouette_samples(cdist(X, X), y, metric="precomputed")
    rows = _sampled.stratified_sample(y, 120, seed=0)
    for X_, mixed, tol in ((X, False, 1e-12), (X.astype(np.float32), True, 8 * float(np.finfo(np.float32).eps))):
        got = _sampled.sampled_silhouettes(X_, [y], rows, mixed, Progress("", 1, False), block=32)[0]
        ref = exact if X_.dtype == np.float64 else sk_silhouette_samples(cdist(*(2 * [X_.astype(np.float64)])), y,
                                                                         metric="precomputed")
        np.testing.assert_allclose(got, ref[rows], rtol=RTOL, atol=tol)
    counts = np.bincount(y[rows], minlength=5)
    assert counts.sum() == rows.size and np.all(np.abs(counts - 120 * np.bincount(y) / 600) <= 1)


def test_stratified_mean_and_its_interval_by_hand():
    # two strata of 10 and 30 points; 2 and 3 of them sampled
    values = np.array([1.0, 3.0, 2.0, 4.0, 6.0])
    strata = np.array([0, 0, 1, 1, 1])
    est = _sampled.stratified_mean(values, strata, np.array([10.0, 30.0]), level=0.95)
    assert est.estimate == pytest.approx(0.25 * 2.0 + 0.75 * 4.0)
    var = 0.25**2 * (1 - 2 / 10) * 2.0 / 2 + 0.75**2 * (1 - 3 / 30) * 4.0 / 3  # s_h^2 with ddof 1: 2.0 and 4.0
    assert est.se == pytest.approx(math.sqrt(var))
    assert (est.low, est.high) == pytest.approx((est.estimate - 1.959964 * est.se, est.estimate + 1.959964 * est.se))


def test_sampled_interval_covers_the_exact_silhouette():
    # 50 seeded draws of 200 of 2,000 points: the nominal 95% interval covers the exact value >= 90% of the time
    X, y = _data(4, 2000, 8, 6, scale=2.5)
    exact = silhouette(X, y)
    sizes = np.bincount(y).astype(np.float64)
    hits = 0
    for seed in range(50):
        rows = _sampled.stratified_sample(y, 200, seed)
        s = _sampled.sampled_silhouettes(X, [y], rows, False, Progress("", 1, False))[0]
        est = _sampled.stratified_mean(s, y[rows], sizes)
        hits += est.low <= exact <= est.high
    assert hits >= 45, hits


def test_cluster_report_above_exact_max_says_so_in_report_row_and_table():
    from geomcheck.reporting.tables import Row, rich_table, to_json, to_markdown

    X, y = _data(5, 900, 8, 3, scale=2.0)
    exact = cluster_report(X, y)
    rep = cluster_report(X, y, exact_max=500, sample_size=300)
    assert exact.silhouette_sample == 0 and not exact.sampled and exact.sample_note() is None
    assert rep.silhouette_sample == 300 and rep.sampled
    lo, hi = rep.intervals["silhouette_true"]
    assert lo < rep.silhouette_true < hi and "silhouette_kmeans" in rep.intervals
    assert abs(rep.silhouette_true - exact.silhouette_true) < 3 * (hi - lo)
    # Davies-Bouldin stays exact at any size
    assert rep.davies_bouldin_true == exact.davies_bouldin_true
    row = Row.measured("m", rep, dataset="big")
    md = to_markdown([row])
    assert "| m | ~" in md and "stratified sample of 300 of 900 texts" in md
    assert '"silhouette_sample": 300' in to_json([row])
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=160).print(rich_table([row]))
    assert "\u2248" in out.getvalue() and "300 of 900" in out.getvalue()
    assert rep.to_dict()["silhouette_sample"] == 300
    assert type(rep).from_dict(rep.to_json_dict()) == rep
    # the cosine silhouette never samples: it is exact at any size
    assert cluster_report(X, y, exact_max=500, metric="cosine").silhouette_sample == 0


def test_default_sample_size_costs_what_the_exact_path_does_at_exact_max():
    assert _sampled.default_sample_size(1_000_000, 60_000) == 1800
    assert _sampled.default_sample_size(70_000, 60_000) == 25_715
    assert _sampled.default_sample_size(10_000_000, 60_000) == _sampled.MIN_SAMPLE


# --- progress -------------------------------------------------------------------------------------


def test_progress_line_has_share_rate_and_eta(monkeypatch):
    monkeypatch.setattr(_progress, "_QUIET_FOR", 0.0)
    monkeypatch.setattr(_progress, "_EVERY", 0.0)
    out = io.StringIO()
    with Progress("geomcheck: silhouette", 100, True, unit="pairs", stream=out) as p:
        p.start -= 10.0  # as if 10 s had passed
        p.advance(25)
    text = out.getvalue()
    assert "geomcheck: silhouette:  25% (2.5 pairs/s), 0:10 elapsed, ETA 0:30" in text and text.endswith("\n")
    quiet = io.StringIO()
    with Progress("x", 100, False, stream=quiet) as p:
        p.start -= 10.0
        p.advance(50)
    assert quiet.getvalue() == ""
    monkeypatch.setenv("GEOMCHECK_PROGRESS", "0")
    assert _progress.resolve(None) is False
    monkeypatch.setenv("GEOMCHECK_PROGRESS", "1")
    assert _progress.resolve(None) is True


def test_heartbeat_prints_elapsed_time_only_when_enabled(monkeypatch):
    import time

    monkeypatch.setattr(_progress, "_QUIET_FOR", 0.05)
    out = io.StringIO()
    with _progress.heartbeat("geomcheck: KMeans", True, every=0.05, stream=out):
        time.sleep(0.3)
    assert "geomcheck: KMeans: 0:00 elapsed" in out.getvalue() and "done in 0:00" in out.getvalue()
    silent = io.StringIO()
    with _progress.heartbeat("geomcheck: KMeans", False, every=0.05, stream=silent):
        time.sleep(0.1)
    assert silent.getvalue() == ""


# --- pictures -----------------------------------------------------------------------------------------


def test_pictures_draw_a_stratified_sample_and_say_so(monkeypatch, tmp_path):
    from geomcheck.reporting import plots, projection

    idx = projection.thin(np.repeat([0, 1, 2], [600, 300, 100]), 100, seed=0)
    assert np.bincount(np.repeat([0, 1, 2], [600, 300, 100])[idx]).tolist() == [60, 30, 10]
    assert projection.thin(np.arange(50) % 2, 100) is None
    monkeypatch.setattr(plots, "MAX_POINTS", 60)
    X, y = _data(6, 240, 8, 3)
    plot = plots.pca_figure((X, y), metrics=False)
    assert len(plot.projections[0].coords) == 60
    assert "a stratified sample of 60 of 240 texts shown" in plot.figure.axes[0].get_title()
    plot = plots.pca_figure((X[:50], y[:50]), metrics=False, population=5000)  # a record keeps a sample
    assert "a stratified sample of 50 of 5,000 texts shown" in plot.figure.axes[0].get_title()
    grid = plots.grid_figure({"a": (X, y), "b": (X + 1, y)}, method="pca", metrics=False, shared=True)
    assert "a stratified sample of 30 of 240 texts shown" in grid.title  # 60 points in all, shared


def test_record_keeps_a_sample_of_a_large_set(monkeypatch):
    from geomcheck.models.embedder import EmbeddedDataset
    from geomcheck.reporting import projection
    from geomcheck.reporting.record import RunRecord

    monkeypatch.setattr(projection, "MAX_POINTS", 40)
    X, y = _data(7, 200, 4, 4)
    emb = EmbeddedDataset(X.astype(np.float32), y, ("a", "b", "c", "d"), tuple(f"t{i}" for i in range(200)), "m", "f")
    rec = RunRecord()
    rec.add_geometry("m", None, "big", cluster_report(emb), emb)
    g = rec.state["geometry"][0]
    assert len(g["X"]) == len(g["labels"]) == 40 and g["n_points"] == 200


def test_silhouette_samples_accepts_progress_and_stays_quiet_when_off(capsys):
    X, y = _data(8, 50, 4, 3)
    np.testing.assert_allclose(silhouette_samples(X, y, progress=False), silhouette_samples(X, y, progress=True))
    assert capsys.readouterr().err == ""  # too short to print anything even when on
