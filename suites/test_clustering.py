"""Clustering geometry of the model(s) under test (``--model``, default minilm).

The paper's protocol (6 families x 4 sequences of 50 terms; silhouette and Davies–Bouldin
with the true labels and with KMeans labels) plus the families the paper never used — or,
with ``--dataset PATH``, your own labelled texts — checked three ways: what holds for any
usable embedding model, the paper's published row where there is one, and the committed
baseline of the model (``<model>.json``, ``<model>.<dataset>.json`` for your own data: a
paired comparison on the very same texts).
"""

from __future__ import annotations

import numpy as np
import pytest

from geomcheck.checks import assert_clusters_by_family

DATASETS = ("suite", "heldout")


@pytest.fixture(scope="session", params=DATASETS)
def named_dataset(request, suite_dataset, heldout_dataset, geomcheck_settings):
    """(name, dataset): the suite dataset ("paper" under the paper's protocol, your file's name with
    ``--dataset``) and the held-out families (not with ``--dataset``: they say nothing about your labels)."""
    if request.param == "heldout":
        if "heldout" not in geomcheck_settings.suite_datasets:
            pytest.skip(f"--dataset: the suites measure {geomcheck_settings.suite_dataset_name}, not the held-out "
                        f"sequence families")
        return "heldout", heldout_dataset
    return geomcheck_settings.suite_dataset_name, suite_dataset


def test_embeddings_are_finite_distinct_and_deterministic(embed, embedder, suite_dataset):
    """A broken model gives NaNs, one vector for every text, or different vectors on a second call."""
    e = embed(suite_dataset)
    n = len(suite_dataset)
    assert e.X.shape == (n, embedder.dim) and np.isfinite(e.X).all()
    # the same text in two families (short windows) rightly gets one vector: compare distinct texts only
    vectors = {text: row.tobytes() for text, row in zip(suite_dataset.texts, e.X)}
    assert len(set(vectors.values())) == len(vectors), "two different texts got the same vector"
    again = embedder.encode(suite_dataset.texts, cache=False)
    tol = 1e-5 if embedder.dtype == "float32" else 2e-2
    assert np.allclose(again, e.X, atol=tol), "encoding the same texts twice gave different vectors"


def test_geometry_is_in_range(geometry, named_dataset, geomcheck_record):
    name, ds = named_dataset
    r = geometry(ds, name)
    for field in ("silhouette_true", "davies_bouldin_true", "silhouette_kmeans", "davies_bouldin_kmeans"):
        geomcheck_record(f"{name}.{field}", getattr(r, field))
    assert -1 <= r.silhouette_true <= 1 and -1 <= r.silhouette_kmeans <= 1
    assert r.davies_bouldin_true > 0 and r.n == len(ds) and r.n_clusters == len(ds.label_names)
    assert set(r.per_family_silhouette) == set(ds.label_names)


def test_paper_row_is_reproduced(geometry, embedder, paper_dataset):
    """For a model of the paper's Table 2, all four numbers on the paper's 24 texts (KMeans n_init=10,
    random_state=42, no prompt) equal the published ones within a tolerance set by dtype and device
    (float32 on CPU: 1e-4, the published rounding; geomcheck.checks.PAPER_TOLERANCES)."""
    from geomcheck.checks import assert_reproduces_paper

    spec = embedder.spec
    if spec is None or spec.paper is None:
        pytest.skip(f"{embedder.name} has no published Table 2 row")
    r = geometry(paper_dataset, "paper")
    # the summary's table shows the published row and the difference under the measured one
    assert_reproduces_paper(r, spec.paper, dtype=embedder.dtype, device=embedder.device, model=embedder.name)


def test_matches_baseline(geomcheck_baseline, geomcheck_baseline_path, embed, named_dataset, geomcheck_record, embedder,
                          geomcheck_settings):
    """Paired comparison with the committed baseline: per-text silhouettes, DB, KMeans metrics, each
    family, and CKA / mutual k-NN to the baseline's own embeddings of the same texts."""
    from geomcheck.checks import compare

    if geomcheck_baseline is None:
        pytest.skip(f"no baseline for {embedder.name} at {geomcheck_baseline_path}; "
                    f"--geomcheck-update-baseline writes it there")
    from geomcheck.errors import BaselineMismatchError

    name, ds = named_dataset
    if name not in geomcheck_baseline.datasets:
        why = ("--dataset names another dataset" if geomcheck_settings.dataset is not None else
               "--families/--per-family/--seq-length changed the suite dataset")
        pytest.fail(f"the baseline of {geomcheck_baseline.model} at {geomcheck_baseline_path} has no {name!r} dataset "
                    f"(it has {', '.join(geomcheck_baseline.datasets)}): {why}; write a baseline for it with "
                    f"--geomcheck-update-baseline [--geomcheck-baseline PATH]", pytrace=False)
    try:
        comparison = compare(geomcheck_baseline, name, embed(ds), tolerances=geomcheck_settings.tolerances or None,
                             metric=geomcheck_settings.metric, exact_max=geomcheck_settings.exact_max)
    except BaselineMismatchError as exc:  # not a geometry verdict: the file measured other texts
        mismatch = f"{geomcheck_baseline_path}: {exc}"
    else:
        mismatch = None
    if mismatch is not None:
        pytest.fail(mismatch, pytrace=False)
    geomcheck_record.baseline(name, comparison)
    comparison.check()  # fails with the comparison table, the verdict on its first line


def test_clusters_by_family(embed, named_dataset, geomcheck_baseline, geomcheck_record, geomcheck_settings):
    """KMeans must not find a clustering much better than the families (the text clusters by
    something else: magnitude, length). The allowed gap is 0.05, or the baseline model's own gap
    + 0.1 when it has a baseline that does not cluster by family (a regression gate then)."""
    from geomcheck.metrics import KMEANS_SEED

    name, ds = named_dataset
    margin = 0.05
    if geomcheck_baseline is not None and name in geomcheck_baseline.datasets:
        base = geomcheck_baseline.datasets[name].report
        if base.seed == KMEANS_SEED:  # a baseline of another KMeans seed fails test_matches_baseline, saying so
            margin = max(margin, base.silhouette_kmeans - base.silhouette_true + 0.1)
    try:
        r = assert_clusters_by_family(embed(ds), margin=margin, metric=geomcheck_settings.metric)
    finally:
        geomcheck_record(f"{name}.kmeans_margin", margin)
    geomcheck_record(f"{name}.kmeans_gap", r.silhouette_kmeans - r.silhouette_true)
