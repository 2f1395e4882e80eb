"""TextDataset and load_dataset: your own labelled texts from files and tables, every bad input named."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from geomcheck.data import DatasetError, TextDataset, load_dataset

ROWS = [("the cat sat", "animals"), ("a dog barked", "animals"), ("stocks fell", "finance"),
        ("rates rose", "finance"), ("it rained", "weather"), ("snow at noon", "weather")]


def _csv(tmp_path, rows=ROWS, name="d.csv", sep=","):
    path = tmp_path / name
    path.write_text(f"text{sep}label\n" + "".join(f"{t}{sep}{lab}\n" for t, lab in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json"])
def test_every_format_gives_the_same_dataset(tmp_path, fmt):
    if fmt in ("csv", "tsv"):
        path = _csv(tmp_path, name=f"d.{fmt}", sep="," if fmt == "csv" else "\t")
    elif fmt == "jsonl":
        path = tmp_path / "d.jsonl"
        path.write_text("".join(json.dumps({"text": t, "label": lab, "src": i}) + "\n" for i, (t, lab) in enumerate(ROWS)))
    else:
        path = tmp_path / "d.json"
        path.write_text(json.dumps([{"text": t, "label": lab} for t, lab in ROWS]))
    ds = load_dataset(path)
    assert ds.texts == tuple(t for t, _ in ROWS) and ds.label_names == ("animals", "finance", "weather")
    assert ds.labels.tolist() == [0, 0, 1, 1, 2, 2] and ds.counts() == {"animals": 2, "finance": 2, "weather": 2}
    if fmt == "jsonl":
        assert ds.metadata[3] == {"src": 3}


def test_label_order_and_integer_labels(tmp_path):
    rows = [("a b", 3), ("c d", 3), ("e f", 1), ("g h", 1), ("i j", 10), ("k l", 10)]
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"text": t, "label": lab} for t, lab in rows]))
    assert load_dataset(path).label_names == ("3", "1", "10")  # first seen
    assert load_dataset(path, label_order="sorted").label_names == ("1", "3", "10")  # numbers sort as numbers


@pytest.mark.parametrize(("content", "kw", "match"), [
    (None, {}, r"no file at"),
    ("text,label\na,b\n", {"format": "xml"}, r"unknown format 'xml'"),
    ("text,lab\nx,y\n", {}, r"no column 'label'; the columns are 'text', 'lab'"),
    ("text,label\nhello,a\n  ,a\nb c,b\nd e,b\n", {}, r"d.csv, line 3, column 'text': empty or missing text"),
    ("text,label\nhello,a\nhi,\nb c,b\n", {}, r"d.csv, line 3, column 'label': missing label"),
    ("text,label\nhello,a\nhi,a\n", {}, r"every text has the label 'a'; the cluster metrics need at least 2 labels"),
    ("text,label\nhello,a\nhi,a\nyo,b\n", {}, r"label\(s\) 'b' have a single text; the silhouette needs at least 2"),
    ("text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(5)), {"max_rows": 3}, r"5 rows, more than max_rows=3"),
])
def test_bad_input_is_a_dataset_error_naming_the_place(tmp_path, content, kw, match):
    path = tmp_path / "d.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DatasetError, match=match):
        load_dataset(path, **kw)


def test_bytes_and_json_errors_name_the_line(tmp_path):
    bad = tmp_path / "d.csv"
    bad.write_bytes(b"text,label\nok,a\ncaf\xe9,a\n")
    with pytest.raises(DatasetError, match=r"d.csv, line 3: not UTF-8 \(byte 0xe9"):
        load_dataset(bad)
    jl = tmp_path / "d.jsonl"
    jl.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    with pytest.raises(DatasetError, match=r"d.jsonl, line 2: not a JSON object"):
        load_dataset(jl)


def test_duplicates_are_announced_or_dropped(tmp_path):
    path = _csv(tmp_path, ROWS + [("the cat sat", "animals")])
    with pytest.warns(UserWarning, match=r"1 duplicate text\(s\), first at .*line 8 \(a copy of .*line 2\)"):
        assert len(load_dataset(path)) == 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_dataset(path, drop_duplicates=True)) == 6


def test_split_is_stratified_and_seeded():
    ds = TextDataset(tuple(f"t{i}" for i in range(20)), np.repeat([0, 1], 10), ("a", "b"))
    train, test = ds.split(0.3, seed=1)
    assert test.counts() == {"a": 3, "b": 3} and train.counts() == {"a": 7, "b": 7}
    assert set(train.texts) | set(test.texts) == set(ds.texts) and not set(train.texts) & set(test.texts)
    assert ds.split(0.3, seed=1)[1].texts == test.texts and ds.split(0.3, seed=2)[1].texts != test.texts


def test_parquet_when_pyarrow_is_there(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [t for t, _ in ROWS], "label": [lab for _, lab in ROWS]}), tmp_path / "d.parquet")
    assert load_dataset(tmp_path / "d.parquet").label_names == ("animals", "finance", "weather")


def test_a_text_dataset_goes_through_embedding_metrics_and_assertions(tmp_path):
    from geomcheck.assertions import assert_silhouette_above
    from geomcheck.errors import GeometryAssertionError
    from geomcheck.metrics import cluster_report, silhouette
    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    ds = load_dataset(_csv(tmp_path))
    emb = load_model(str(tiny_model("bert", tmp_path / "m")), device="cpu").embed(ds)
    assert emb.label_names == ds.label_names and emb.X.shape[0] == 6
    rep = cluster_report(emb, label_names=emb.label_names)
    assert set(rep.per_family_silhouette) == {"animals", "finance", "weather"}
    assert rep.silhouette_true == pytest.approx(silhouette(emb.X, ds.labels))
    with pytest.raises(GeometryAssertionError, match=r"Worst labels: (animals|finance|weather) ") as info:
        assert_silhouette_above(emb, 0.99)
    # advice that fits these data: no "number magnitude" for sentences
    assert "what the texts of the worst labels share" in str(info.value) and "magnitude" not in str(info.value)


def test_duplicates_match_a_dict_of_first_occurrences():
    """``duplicates`` (hashes sorted in numpy) against the plain {text: first index} reference."""
    import random

    from geomcheck.data.text.load import duplicates

    rng = random.Random(0)
    texts = [f"t{rng.randrange(300)}" for _ in range(1000)] + ["", "a", "a", ""]
    seen: dict[str, int] = {}
    expected = {i: seen.setdefault(t, i) for i, t in enumerate(texts) if seen.setdefault(t, i) != i}
    assert duplicates(texts) == expected and len(expected) > 600
    assert duplicates(["x"]) == {} and duplicates(["x", "y"]) == {}


def test_metadata_rows_share_their_column_names(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": f"{t} {i}", "label": lab, "src": i, "lang": "en"}) + "\n"
                            for i, (t, lab) in enumerate(ROWS)) + json.dumps({"text": "z", "label": "weather"}) + "\n")
    ds = load_dataset(path)
    assert ds.metadata[2] == {"src": 2, "lang": "en"} and dict(ds.metadata[2]) == {"src": 2, "lang": "en"}
    assert ds.metadata[6] == {} and ds.metadata[2]["lang"] == "en" and "src" in ds.metadata[0]
    with pytest.raises(KeyError):
        ds.metadata[6]["src"]
    # one tuple of names for all rows with the same columns: a JSON parser makes new key strings per line
    assert len({id(m._keys) for m in ds.metadata[:6]}) == 1
    assert repr(ds.metadata[1]) == "{'src': 1, 'lang': 'en'}"
