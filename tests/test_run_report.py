"""RunRecord: what a suite run measured, pooled across processes and written as a report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geomcheck.metrics import cluster_report
from geomcheck.reporting.record import RunRecord
from geomcheck.sequences import paper_dataset


@pytest.fixture(scope="module")
def emb():
    from geomcheck.models.embedder import EmbeddedDataset

    ds = paper_dataset()
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(24, 8)) + 3 * np.eye(8)[ds.labels]).astype(np.float32)  # families sit apart
    return EmbeddedDataset(X=X, labels=ds.labels, label_names=ds.label_names, texts=ds.texts, model="m",
                           fingerprint="f")


def test_workers_records_merge_into_the_controllers(emb):
    rep = cluster_report(emb, label_names=emb.label_names)
    a, b = RunRecord(), RunRecord()
    a.add_geometry("m", None, "paper", rep, emb)
    a.add_value("m", None, "x", 1.0)
    a.add_outcome("m", None, "passed")
    b.add_geometry("m", "soup", "paper", rep, emb)
    b.add_value("m", "soup", "cka_to_base", 0.5)
    b.add_value("m", None, "x", 2.0)           # same key: the later value wins
    b.add_outcome("m", None, "skipped")         # a skip does not hide a pass ...
    b.add_outcome("m", "soup", "failed")
    ctrl = RunRecord()
    for rec in (a, b):
        ctrl.merge(json.loads(json.dumps(rec.state)))  # what xdist carries: plain JSON
    assert [(g["model"], g["variant"]) for g in ctrl.state["geometry"]] == [("m", None), ("m", "soup")]
    assert {(v["variant"], v["name"]): v["value"] for v in ctrl.state["values"]} == {(None, "x"): 2.0,
                                                                                    ("soup", "cka_to_base"): 0.5}
    assert ctrl.state["outcomes"] == {"m": "passed", "m · soup": "failed"}
    ctrl.add_outcome("m", None, "failed")       # ... and a failure wins over both
    assert ctrl.state["outcomes"]["m"] == "failed"
    rows = ctrl.rows("paper")
    assert [r.label for r in rows] == ["m", "m · soup"]
    assert rows[1].extra == {"CKA to base": 0.5, "status": "failed"}
    assert rows[0].values()["silhouette_true"] == pytest.approx(rep.silhouette_true)


def test_report_dir_has_json_markdown_and_one_plot_per_model_and_variant(emb, tmp_path):
    rep = cluster_report(emb, label_names=emb.label_names)
    rec = RunRecord()
    rec.add_geometry("m", None, "paper", rep, emb)
    rec.add_geometry("m", "lora", "paper", rep, emb)
    rec.add_value("m", None, "nan value", float("nan"))
    rec.add_claim("m", "c", "a claim", {"r": 0.98}, holds=False, gated=False)
    files = rec.write_dir(tmp_path / "r")
    assert sorted(p.name for p in files) == ["grid-paper.png", "report.json", "report.md", "tsne-paper-m-lora.png",
                                             "tsne-paper-m.png"]
    doc = json.loads((tmp_path / "r" / "report.json").read_text())  # strict JSON: NaN became null
    assert doc["values"][0]["value"] is None and "X" not in doc["geometry"][0]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| m · lora |" in md and "| m | a claim | no | r 0.98 | no |" in md


def test_report_md_says_what_ran_what_failed_and_what_the_columns_mean(emb, tmp_path):
    rep = cluster_report(emb, label_names=emb.label_names)
    rec = RunRecord()
    rec.state["settings"] = {"date": "2026-12-01 12:00 UTC", "models": ["m"], "versions": {"torch": "2.13.0"}}
    rec.add_model("m", {"source": "/models/m", "device": "cpu", "dtype": "float32", "dim": 8, "fingerprint": "abc123"})
    rec.add_geometry("m", None, "paper", rep, emb)
    rec.add_geometry("m", "soup", "paper", rep, emb)
    rec.add_value("m", None, "paper.cka_to_baseline", 0.99)
    rec.add_value("m", "soup", "cka_to_base", 0.55)
    rec.add_value("m", "soup", "share_of_lora_gain", 0.93)
    rec.add_failure("suites/test_x.py::test_y[m]", "m", "soup", "linear CKA 0.55 < 0.9 (m · soup vs m)")
    rec.write_dir(tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    for expected in ("| date | 2026-12-01 12:00 UTC |", "| torch | 2.13.0 |",
                     "| m | /models/m | cpu | float32 | 8 | abc123 |",
                     "| CKA to base | gain kept | CKA to baseline |",  # the two CKAs in their own columns
                     "higher is better", "lower is better",
                     "| suites/test_x.py::test_y[m] | m · soup | linear CKA 0.55 < 0.9 (m · soup vs m) |",
                     "| m · soup | share_of_lora_gain | 0.93 |",            # values as a table
                     "[grid-paper.png](grid-paper.png)", "![grid-paper](grid-paper.png)"):
        assert expected in md, expected
    soup_row = next(line for line in md.splitlines() if line.startswith("| m · soup | ") and "0.55" in line)
    cells = [c.strip() for c in soup_row.strip("|").split("|")]
    # CKA to base and the share of the LoRA's gain kept filled, CKA to baseline empty for a variant; no position
    # column: no row recorded one
    assert cells[5:8] == ["0.5500", "0.9300", ""] and "| position |" not in md



def test_a_registry_models_row_carries_the_published_row_and_the_summary_counts_texts_and_tokens(emb, tmp_path):
    """The model's own row on the paper set gets hf_id, the paper's row and measured - published (JSON, summary,
    report.md); a variant's row and another dataset's do not. Each table says its texts and the tokens read."""
    import dataclasses

    from rich.console import Console

    from geomcheck.models.registry import REGISTRY

    rep = cluster_report(emb, label_names=emb.label_names)
    rec = RunRecord()
    rec.add_model("gemma", {"hf_id": "google/embeddinggemma-300m", "device": "cpu"})
    rec.add_geometry("gemma", None, "paper", rep, dataclasses.replace(emb, n_tokens=5619))
    rec.add_geometry("gemma", "lora", "paper", rep, dataclasses.replace(emb, n_tokens=5619))
    rec.add_geometry("gemma", None, "heldout", rep, dataclasses.replace(emb, n_tokens=19828))
    own, lora = rec.rows("paper")
    published = REGISTRY["embeddinggemma-300m"].paper
    assert own.extra["hf_id"] == "google/embeddinggemma-300m" and own.paper == published
    assert own.delta()["silhouette_true"] == pytest.approx(rep.silhouette_true - published.silhouette_true)
    assert lora.paper is None and rec.rows("heldout")[0].paper is None
    assert rec.size_line("paper") == "paper: 24 texts; tokens read: gemma 5,619"
    assert rec.size_line("heldout") == "heldout: 24 texts; tokens read: gemma 19,828"
    import io

    console = Console(width=120, record=True, file=io.StringIO())
    for part in rec.summary_renderables():
        console.print(part)
    text = console.export_text()
    assert "published (paper)" in text and "0.0339" in text and "\u0394 measured" in text
    assert "paper: 24 texts; tokens read: gemma 5,619" in text
    rec.write_dir(tmp_path / "r", plots=False)
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    row = next(r for r in doc["rows"] if r["dataset"] == "paper" and r["variant"] is None)
    assert row["paper"]["silhouette_true"] == 0.0339 and row["extra"]["hf_id"] == "google/embeddinggemma-300m"
    assert doc["geometry"][0]["tokens"] == 5619 and doc["geometry"][0]["texts"] == 24
    md = (tmp_path / "r" / "report.md").read_text()
    assert "|   published (paper) | 0.0339 | 2.1082 | 0.0857 | 1.6192 |" in md
    assert "- heldout: 24 texts; tokens read: gemma 19,828." in md


def test_merge_refuses_another_format():
    with pytest.raises(ValueError, match="not a geomcheck run record"):
        RunRecord().merge({"format": "something/2"})
