from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from geomcheck.reporting import plots
from geomcheck.errors import InvalidInputError
from geomcheck.metrics.geometry import GeometryReport
from geomcheck.models.embedder import EmbeddedDataset

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAMILIES = ("consecutive", "even", "odd", "prime", "recaman", "composite")


def toy(n_per: int = 4, families=FAMILIES, dim: int = 12, seed: int = 0, model: str = "toy-model") -> EmbeddedDataset:
    """Separated Gaussian blobs, one per family."""
    rng = np.random.default_rng(seed)
    k = len(families)
    centres = rng.normal(scale=4.0, size=(k, dim))
    labels = np.repeat(np.arange(k), n_per)
    X = (centres[labels] + rng.normal(size=(k * n_per, dim))).astype(np.float32)
    texts = tuple(f"text {i}" for i in range(len(X)))
    return EmbeddedDataset(X, labels, tuple(families), texts, model, "fp-" + model)


def fake_report(**kw) -> GeometryReport:
    base = dict(silhouette_true=-0.0922, davies_bouldin_true=3.1046, calinski_harabasz_true=1.5,
                silhouette_kmeans=0.2299, davies_bouldin_kmeans=1.1919, ari=0.1, nmi=0.2, v_measure=0.2,
                per_family_silhouette={}, n=24, dim=12, n_clusters=6)
    base.update(kw)
    return GeometryReport(**base)


def assert_png(path, min_side: int = 300) -> tuple[int, int]:
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
    assert w >= min_side and h >= min_side
    import matplotlib.image

    assert matplotlib.image.imread(path).shape[:2] == (h, w)
    return w, h


def test_tsne_plot_writes_a_png_into_new_directories(tmp_path):
    out = plots.tsne_plot(toy(), tmp_path / "a" / "b" / "toy.png", report=fake_report())
    assert out == tmp_path / "a" / "b" / "toy.png" and out.is_file()
    w, h = assert_png(out)
    assert w > h  # the legend sits to the right of the square-ish axes


def test_a_path_that_is_not_png_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="PNG"):
        plots.tsne_plot(toy(), tmp_path / "toy.jpg", report=fake_report())


@pytest.mark.parametrize("n_per, expected", [(4, 10.0), (8, 10.0), (9, 30.0)])  # N = 24, 48, 54
def test_perplexity_follows_the_paper_rule(n_per, expected):
    plot = plots.tsne_figure(toy(n_per), metrics=False, max_iter=250)
    tsne = plot.projections[0].estimator
    assert type(tsne).__name__ == "TSNE"
    assert tsne.perplexity == expected and plot.projections[0].perplexity == expected
    assert tsne.n_components == 2 and tsne.init == "pca" and tsne.random_state == 0 and tsne.max_iter == 250


def test_perplexity_boundary_is_50_samples():
    assert plots.tsne_perplexity(49) == 10 and plots.tsne_perplexity(50) == 30


def test_tsne_plot_uses_the_paper_settings(tmp_path, monkeypatch):
    """Record the sklearn TSNE object tsne_plot itself builds."""
    import sklearn.manifold

    used = []

    class Recording(sklearn.manifold.TSNE):
        def fit_transform(self, X, y=None):
            used.append(self)
            return super().fit_transform(X)

    monkeypatch.setattr(sklearn.manifold, "TSNE", Recording)
    plots.tsne_plot(toy(), tmp_path / "t.png", seed=7, report=fake_report())
    (tsne,) = used
    assert (tsne.perplexity, tsne.max_iter, tsne.random_state, tsne.init, tsne.n_components) == (10, 1000, 7, "pca", 2)
    assert len(tsne.embedding_) == 24


def test_explicit_perplexity_must_be_below_n():
    with pytest.raises(InvalidInputError, match=r"perplexity=30, N=24"):
        plots.tsne_figure(toy(), perplexity=30, metrics=False)
    with pytest.raises(InvalidInputError, match="positive"):
        plots.tsne_figure(toy(), perplexity=0, metrics=False)


def test_default_perplexity_is_clamped_for_tiny_datasets_with_a_note():
    plot = plots.tsne_figure(toy(n_per=1, families=FAMILIES[:5]), metrics=False, max_iter=250)  # N = 5
    proj = plot.projections[0]
    assert proj.perplexity == proj.estimator.perplexity == pytest.approx(4 / 3)
    assert "clamped" in proj.note and "clamped" in plot.figure.axes[0].get_title()


def test_legend_holds_the_family_names_and_title_the_metrics():
    plot = plots.tsne_figure(toy(), report=fake_report(), max_iter=250)
    (ax,) = plot.figure.axes
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == list(FAMILIES)
    assert legend.get_title().get_text() == "family"
    title = plot.figure._suptitle.get_text()
    assert title.startswith("toy-model — 24 texts, 6 families")
    for part in ("silhouette true \u22120.0922", "DB true 3.1046", "silhouette KMeans 0.2299", "DB KMeans 1.1919"):
        assert part in title
    assert "perplexity 10" in ax.get_title() and "1000" not in ax.get_title()  # max_iter=250 here
    assert plot.legend_labels == list(FAMILIES)


def test_families_get_distinct_colour_marker_pairs_up_to_30():
    names = [f"f{i}" for i in range(30)]
    styles = plots.family_styles(names)
    assert len(set(styles.values())) == 30
    assert len({c for c, _ in list(styles.values())[:20]}) == 20  # the first 20 differ by colour alone
    assert plots.family_styles(FAMILIES[:3]) == {n: styles[f"f{i}"] for i, n in enumerate(FAMILIES[:3])}


def test_same_seed_same_picture(tmp_path):
    emb = toy()
    a = plots.tsne_plot(emb, tmp_path / "a.png", seed=3, report=fake_report())
    b = plots.tsne_plot(emb, tmp_path / "b.png", seed=3, report=fake_report())
    assert a.read_bytes() == b.read_bytes()
    c1 = plots.tsne_figure(emb, seed=3, metrics=False, max_iter=250).projections[0].coords
    c2 = plots.tsne_figure(emb, seed=3, metrics=False, max_iter=250).projections[0].coords
    np.testing.assert_array_equal(c1, c2)


def test_tuple_inputs_with_int_or_string_labels(tmp_path):
    emb = toy()
    p1 = plots.tsne_figure((emb.X, emb.labels), metrics=False, max_iter=250)
    assert p1.legend_labels == ["0", "1", "2", "3", "4", "5"]
    p2 = plots.tsne_figure((emb.X, emb.labels, list(FAMILIES)), metrics=False, max_iter=250, model="m")
    assert p2.legend_labels == list(FAMILIES) and p2.title.startswith("m — ")
    strings = np.array(FAMILIES)[emb.labels]
    p3 = plots.tsne_figure((emb.X, strings), metrics=False, max_iter=250)
    assert p3.legend_labels == list(FAMILIES)
    np.testing.assert_allclose(p3.projections[0].coords, p2.projections[0].coords)


@pytest.mark.parametrize(
    "bad, match",
    [(lambda e: (e.X[:5], e.labels), "one entry per row"),
     (lambda e: (np.where(np.arange(e.X.size).reshape(e.X.shape) == 7, np.nan, e.X), e.labels), "NaN"),
     (lambda e: (e.X, e.labels, FAMILIES[:3]), "label 5 has no name"),
     (lambda e: e.X, "EmbeddedDataset or a tuple"),
     (lambda e: (e.X[:, :1], e.labels), "dimension >= 2")],
)
def test_bad_inputs_say_what_is_wrong(bad, match):
    with pytest.raises(InvalidInputError, match=match):
        plots.tsne_figure(bad(toy()), metrics=False)


def test_pca_plot_axis_labels_give_the_explained_variance(tmp_path):
    emb = toy()
    out = plots.pca_plot(emb, tmp_path / "pca.png", report=fake_report())
    assert_png(out)
    plot = plots.pca_figure(emb, report=fake_report())
    ax = plot.figure.axes[0]
    # Reference: singular values of the centred data.
    Xc = emb.X.astype(np.float64) - emb.X.mean(axis=0)
    s = np.linalg.svd(Xc, compute_uv=False)
    ratio = s**2 / (s**2).sum()
    assert ax.get_xlabel() == f"PC1 ({100 * ratio[0]:.1f}% of variance)"
    assert ax.get_ylabel() == f"PC2 ({100 * ratio[1]:.1f}% of variance)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(FAMILIES)


def test_grid_plot_one_panel_per_variant_and_one_shared_legend(tmp_path):
    variants = {name: toy(seed=i, model=name) for i, name in enumerate(("base", "lora", "soup", "slerp"))}
    reports = {name: fake_report(silhouette_true=0.1 * i) for i, name in enumerate(variants)}
    out = plots.grid_plot(variants, tmp_path / "grid.png", reports=reports, max_iter=250)
    w, h = assert_png(out)
    assert h < w < 2 * h  # four panels as 2 x 2 (plus the legend): legible at screen width
    plot = plots.grid_figure(variants, reports=reports, max_iter=250)
    axes = plot.figure.axes
    assert len(axes) == 4 and plot.panels == list(variants)
    rows = sorted({round(ax.get_position().y0, 3) for ax in axes})
    assert len(rows) == 2
    assert all(ax.get_legend() is None for ax in axes)
    (legend,) = plot.figure.legends
    assert [t.get_text() for t in legend.get_texts()] == list(FAMILIES)
    assert axes[2].get_title().startswith("soup\ntrue: sil 0.2000 · DB 3.1046")
    # A family keeps its colour in every panel.
    first = [c.get_facecolor()[0].tolist() for c in axes[0].collections]
    assert all([c.get_facecolor()[0].tolist() for c in ax.collections] == first for ax in axes)


def test_grid_plot_from_a_list_with_pca_and_missing_families(tmp_path):
    a = toy(model="base")
    b = toy(families=FAMILIES[:4], model="base", seed=1)
    plot = plots.grid_figure([a, b], method="pca", reports={"base": fake_report(), "base #2": fake_report()},
                             ncols=1)
    assert plot.panels == ["base", "base #2"] and plot.legend_labels == list(FAMILIES)
    assert all(p.method == "pca" for p in plot.projections)
    with pytest.raises(InvalidInputError, match="method must be one of"):
        plots.grid_figure([a], method="umap", metrics=False)
    with pytest.raises(InvalidInputError, match="not panels"):
        plots.grid_figure({"x": a}, reports={"y": fake_report()})


def test_report_is_computed_when_not_given():
    from sklearn.cluster import KMeans
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    emb = toy()
    title = plots.tsne_figure(emb, max_iter=250, seed=3).title  # the t-SNE seed is not the KMeans seed
    km = KMeans(n_clusters=6, n_init=10, random_state=42).fit_predict(emb.X)  # the paper's KMeans
    expected = plots.metrics_line(fake_report(
        silhouette_true=silhouette_score(emb.X, emb.labels), davies_bouldin_true=davies_bouldin_score(emb.X, emb.labels),
        silhouette_kmeans=silhouette_score(emb.X, km), davies_bouldin_kmeans=davies_bouldin_score(emb.X, km)))
    assert title.endswith(expected)


def test_importing_and_plotting_leave_the_users_backend_alone(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import geomcheck.reporting.plots
        assert "matplotlib" not in sys.modules and "sklearn" not in sys.modules
        import matplotlib
        matplotlib.use("svg")
        import numpy as np
        rng = np.random.default_rng(0)
        geomcheck.reporting.plots.pca_plot((rng.normal(size=(12, 4)), np.repeat([0, 1, 2], 4)), {str(tmp_path / 'x.png')!r},
                                 metrics=False)
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        assert "matplotlib.pyplot" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert_png(tmp_path / "x.png")


def test_a_shared_grid_projects_every_panel_together_on_common_axes(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 6)
    base = rng.normal(size=(18, 5)) + 4 * np.eye(5)[labels]
    other = base + 0.3 * rng.normal(size=base.shape)
    from sklearn.decomposition import PCA

    plot = plots.grid_figure({"base": (base, labels), "other": (other, labels)}, method="pca", shared=True,
                             metrics=False)
    pca = PCA(n_components=2, random_state=0).fit(base)  # fitted on the first panel, applied to the others
    np.testing.assert_allclose(plot.projections[0].coords, pca.transform(base), atol=1e-9)
    np.testing.assert_allclose(plot.projections[1].coords, pca.transform(other), atol=1e-9)
    axes = plot.figure.axes[:2]
    assert axes[0].get_xlim() == axes[1].get_xlim() and axes[0].get_ylim() == axes[1].get_ylim()
    joint = plots.grid_figure({"base": (base, labels), "other": (other, labels)}, shared=True, metrics=False)
    assert "joint t-SNE" in joint.projections[0].description and joint.projections[1].coords.shape == (18, 2)
    plain = plots.grid_figure({"base": (base, labels), "other": (other, labels)}, method="pca", metrics=False)
    np.testing.assert_allclose(np.abs(plain.projections[1].coords),
                               np.abs(PCA(n_components=2, random_state=0).fit_transform(other)), atol=1e-9)


def test_silhouettes_estimated_from_a_sample_are_marked_in_the_title():
    # above exact_max the silhouettes are a stratified sample's estimates: the figure says so, as the tables do
    from geomcheck.metrics import cluster_report

    emb = toy(n_per=30)
    rep = cluster_report(emb.X, emb.labels, exact_max=100, sample_size=60, label_names=emb.label_names)
    assert rep.silhouette_sample == 60
    title = plots.tsne_figure(emb, report=rep, max_iter=250).title
    assert f"silhouette true \u2248{rep.silhouette_true:.4f}".replace("-", "\u2212") in title
    assert f"silhouette KMeans \u2248{rep.silhouette_kmeans:.4f}".replace("-", "\u2212") in title
    assert "\u2248" not in plots.tsne_figure(emb, max_iter=250).title  # 180 texts: exact
