"""load_dataset on the inputs of the issue "No wrong answer served as right": each case as a user meets it,
then the right dataset or a DatasetError naming the place, the column and the fix (Python keyword and CLI flag).
"""

from __future__ import annotations

import gzip
import json
import sys
import warnings

import pytest

from geomcheck.data import DatasetError, load_dataset

ROWS = [("the cat sat", "animals"), ("a dog barked", "animals"), ("stocks fell", "finance"),
        ("rates rose", "finance"), ("it rained", "weather"), ("snow at noon", "weather")]


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _no_warnings(load):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load()


# 1. labels split in two by their spelling ------------------------------------------------------------------------

def test_int_and_float_labels_of_one_value_are_one_label(tmp_path):
    # a pandas round trip writes 1 in some rows and 1.0 in others; they were 8 labels ('0', '0.0', ...), not 4
    records = [{"text": f"text {i}", "label": i % 4 if i < 4 else float(i % 4)} for i in range(8)]
    path = _jsonl(tmp_path / "d.jsonl", records)
    with pytest.warns(UserWarning, match=r"labels 0 and 0\.0 are the same number: read as one label '0' "
                                         r"\(likewise 1 and 1\.0 as '1', 2 and 2\.0 as '2', 3 and 3\.0 as '3'\)"):
        ds = load_dataset(path)
    assert ds.label_names == ("0", "1", "2", "3")
    assert ds.labels.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]


def test_numeric_strings_in_csv_are_named_by_value(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,1\nb,1.0\nc,01\nd,2.5\ne,2.50\nf,10\ng,1e1\n")
    with pytest.warns(UserWarning, match=r"labels 1, 1\.0 and 01 are the same number: read as one label '1' "
                                         r"\(likewise 2\.5 and 2\.50 as '2\.5', 10 and 1e1 as '10'\)"):
        ds = load_dataset(path, label_order="sorted")
    assert ds.label_names == ("1", "2.5", "10")  # by value: as strings "10" < "2.5"
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_integral_floats_alone_print_as_ints_without_a_warning(tmp_path):
    records = [{"text": f"t{i}", "label": float(i % 2)} for i in range(4)]
    ds = _no_warnings(lambda: load_dataset(_jsonl(tmp_path / "d.jsonl", records)))
    assert ds.label_names == ("0", "1")


@pytest.mark.parametrize(("labels", "names"), [
    (["1", "one", "1.0", "one", "1", "1.0"], ("1", "one", "1.0")),  # CSV column that is not all numbers: strings stay
    (["1", "1", "1.0", "1.0"], ("1", "1.0")),  # JSON strings alone were written as strings on purpose
    ([True, 1, True, 1], ("True", "1")),  # a bool is no number here
])
def test_only_a_wholly_numeric_column_is_read_by_value(tmp_path, labels, names):
    records = [{"text": f"t{i}", "label": lab} for i, lab in enumerate(labels)]
    if all(isinstance(lab, str) for lab in labels) and "one" in labels:
        path = tmp_path / "d.csv"
        path.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in records))
    else:
        path = _jsonl(tmp_path / "d.jsonl", records)
    ds = _no_warnings(lambda: load_dataset(path))
    assert ds.label_names == names


def test_json_numbers_and_numeric_strings_together_are_numbers(tmp_path):
    records = [{"text": "a", "label": 1}, {"text": "b", "label": "1.0"}, {"text": "c", "label": 2},
               {"text": "d", "label": "2"}]
    with pytest.warns(UserWarning, match=r"labels 1 and 1\.0 are the same number: read as one label '1'$"):
        ds = load_dataset(_jsonl(tmp_path / "d.jsonl", records))
    assert ds.label_names == ("1", "2") and ds.labels.tolist() == [0, 0, 1, 1]


def test_a_pandas_float_label_column_reads_as_ints():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [0, 1, 0, None]}).dropna()  # NaN made it float
    df = pd.concat([df, pd.DataFrame({"text": ["e"], "label": [1.0]})])
    assert df["label"].dtype == "float64"
    assert _no_warnings(lambda: load_dataset(df)).label_names == ("0", "1")


# 2. Hugging Face ClassLabel ---------------------------------------------------------------------------------------

def test_a_class_label_column_keeps_its_names_in_its_order():
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features({"text": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=["neg", "neutral", "pos", "mixed"])})
    hf = datasets.Dataset.from_dict({"text": [t for t, _ in ROWS], "label": [3, 3, 0, 0, 2, 2]}, features=feats)
    ds = load_dataset(hf)
    assert ds.label_names == ("neg", "pos", "mixed")  # the names present, in the ClassLabel's order
    assert [ds.label_names[k] for k in ds.labels] == ["mixed", "mixed", "neg", "neg", "pos", "pos"]
    assert load_dataset(hf, label_order="sorted").label_names == ("mixed", "neg", "pos")
    unlabelled = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, -1, 0]}, features=feats)
    with pytest.raises(DatasetError, match=r"Dataset, row 1, column 'label': missing label"):
        load_dataset(unlabelled)
    with pytest.raises(DatasetError, match=r"several splits \('train'\); pass one of them"):
        load_dataset(datasets.DatasetDict({"train": hf}))


# 3. a label that is not one value ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [["animals", "finance"], {"name": "animals"}])
def test_a_list_or_dict_label_is_refused_with_its_place(tmp_path, bad):
    records = [{"text": t, "label": lab} for t, lab in ROWS]
    records[2]["label"] = bad
    with pytest.raises(DatasetError, match=rf"d\.jsonl, line 3, column 'label': the label is a "
                                           rf"{type(bad).__name__} .*not a single value.*--label-column"):
        load_dataset(_jsonl(tmp_path / "d.jsonl", records))


# 4. compressed files ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["d.jsonl.gz", "d.csv.gz", "d.tsv.gz", "d.json.gz"])
def test_gzip_is_read_for_every_text_format(tmp_path, name):
    fmt = name.split(".")[1]
    if fmt == "jsonl":
        raw = "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in ROWS)
    elif fmt == "json":
        raw = json.dumps([{"text": t, "label": lab} for t, lab in ROWS])
    else:
        sep = "," if fmt == "csv" else "\t"
        raw = f"text{sep}label\n" + "".join(f"{t}{sep}{lab}\n" for t, lab in ROWS)
    (tmp_path / name).write_bytes(gzip.compress(raw.encode()))
    ds = load_dataset(tmp_path / name)
    assert ds.texts == tuple(t for t, _ in ROWS) and ds.label_names == ("animals", "finance", "weather")


def test_the_format_of_a_compressed_file_and_format_override(tmp_path):
    raw = "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in ROWS).encode()
    (tmp_path / "dump.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(DatasetError, match=r"suffix '\(none\) before \.gz'; rename it .* or pass format= "
                                           r"\(CLI: --dataset-format\)"):
        load_dataset(tmp_path / "dump.gz")
    assert len(load_dataset(tmp_path / "dump.gz", format="jsonl")) == 6
    (tmp_path / "d.jsonl").write_bytes(gzip.compress(raw))  # gzip under a plain name: the bytes decide
    assert len(load_dataset(tmp_path / "d.jsonl")) == 6
    (tmp_path / "plain.jsonl.gz").write_bytes(raw)
    with pytest.raises(DatasetError, match=r"named \.gz but not gzip-compressed"):
        load_dataset(tmp_path / "plain.jsonl.gz")
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(raw * 50)[:120])
    with pytest.raises(DatasetError, match=r"cut\.jsonl\.gz, line \d+: cannot decompress it as gzip"):
        load_dataset(tmp_path / "cut.jsonl.gz")


# four labelled lines of JSONL, zstd-compressed (made with zstandard 0.25, level 19), so that the test needs no
# zstandard to build its input
ZST = (b'(\xb5/\xfd \xb0\x9d\x02\x00RE\x10\x11\xb0;\xcf\x91\xc1k\xdb\xb3iV&\xc6\x8br\xfa@\x0c\xca\xde\\:\xff:&lY2'
       b'\xddl\xd2\x15i\xef\x85\x95\xdb\x91\xa7\x95\\\x10\xd5{Wb\xab)\xb4ylk\x06\xfd\xf5\xfc%\xc9\xe85\x85\xfe\xe3W'
       b'\x18\x05\x00N)\x1e\x1c\xc6=<T#\xf1\xc1\xaa\x0c')


def test_zstd_is_read_when_zstandard_is_there(tmp_path):
    pytest.importorskip("zstandard")
    (tmp_path / "d.jsonl.zst").write_bytes(ZST)
    ds = load_dataset(tmp_path / "d.jsonl.zst")
    assert ds.texts == tuple(t for t, _ in ROWS[:4]) and ds.label_names == ("animals", "finance")


def test_zstd_without_zstandard_says_what_to_install(tmp_path, monkeypatch):
    # None in sys.modules is how Python itself marks a module as not importable
    monkeypatch.setitem(sys.modules, "zstandard", None)
    (tmp_path / "d.jsonl.zst").write_bytes(ZST)
    with pytest.raises(DatasetError, match=r"d\.jsonl\.zst is zstd-compressed .*pip install zstandard"):
        load_dataset(tmp_path / "d.jsonl.zst")


# 5. what a text cell holds ----------------------------------------------------------------------------------------

def test_parquet_bytes_are_text_and_a_number_is_not():
    pa = pytest.importorskip("pyarrow")
    binary = pa.table({"text": pa.array([t.encode() for t, _ in ROWS], pa.binary()),
                       "label": [lab for _, lab in ROWS]})
    assert load_dataset(binary).texts == tuple(t for t, _ in ROWS)
    numbers = pa.table({"text": [7, 8, 9, 10], "label": ["a", "a", "b", "b"], "body": ["w", "x", "y", "z"]})
    with pytest.raises(DatasetError, match=r"row 0, column 'text': holds a number \(7\), not text; pass text= "
                                           r"\(CLI: --text-column\)"):
        load_dataset(numbers)
    assert load_dataset(numbers, text="body").texts == ("w", "x", "y", "z")
    latin = pa.table({"text": pa.array([b"caf\xe9", b"ok"], pa.binary()), "label": ["a", "b"]})
    with pytest.raises(DatasetError, match=r"row 0, column 'text': bytes that are not UTF-8"):
        load_dataset(latin)


def test_parquet_file_with_a_bytes_text_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": pa.array([t.encode() for t, _ in ROWS], pa.binary()),
                             "label": [lab for _, lab in ROWS]}), tmp_path / "d.parquet")
    assert load_dataset(tmp_path / "d.parquet").texts == tuple(t for t, _ in ROWS)
    with pytest.raises(DatasetError, match=r"6 rows, more than max_rows=4; pass max_rows= \(CLI: --max-rows\)"):
        load_dataset(tmp_path / "d.parquet", max_rows=4)


def test_a_number_in_a_jsonl_text_column_names_its_line(tmp_path):
    records = [{"text": t, "label": lab} for t, lab in ROWS]
    records[4]["text"] = 3.5
    with pytest.raises(DatasetError, match=r"d\.jsonl, line 5, column 'text': holds a number \(3\.5\), not text"):
        load_dataset(_jsonl(tmp_path / "d.jsonl", records))


# 6. large files: the limit names both forms, and streaming counts what it did not keep -----------------------------

def test_the_row_limit_names_the_keyword_and_the_flag(tmp_path):
    records = [{"text": f"t{i}", "label": i % 2} for i in range(9)]
    path = _jsonl(tmp_path / "d.jsonl", records)
    with path.open("a") as fh:
        fh.write("\n\n")  # blank lines are no rows
    with pytest.raises(DatasetError, match=r"d\.jsonl: 9 rows, more than max_rows=4; pass max_rows= "
                                           r"\(CLI: --max-rows\) to raise the limit"):
        load_dataset(path, max_rows=4)
    with path.open("ab") as fh:
        fh.write(b'{"text": "caf\xe9", "label": 1}\n')  # past the limit a damaged line only ends the count
    with pytest.raises(DatasetError, match=r"at least 9 rows, more than max_rows=4"):
        load_dataset(path, max_rows=4)
    assert len(load_dataset(_jsonl(tmp_path / "e.jsonl", records), max_rows=9)) == 9  # the limit is inclusive


def test_csv_rows_name_their_first_line_and_extra_fields_are_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"two\nlines",\nb c,a\n')
    with pytest.raises(DatasetError, match=r"d\.csv, line 2, column 'label': missing label"):
        load_dataset(path)
    path.write_text('text,label\n"two\nlines",a\n\nb c,a\nd,\n')  # a row of two lines, a blank line
    with pytest.raises(DatasetError, match=r"d\.csv, line 6, column 'label': missing label"):
        load_dataset(path)
    path.write_text("text,label\nhello,a\nhi,a\nyes, it rained,b\nno,b\n")  # an unquoted comma in a text
    with pytest.raises(DatasetError, match=r"d\.csv, line 4: 3 fields but the header has 2; a text containing a "
                                           r"comma needs double quotes"):
        load_dataset(path)


# 7. a missing column names both forms -----------------------------------------------------------------------------

def test_a_missing_column_names_the_keywords_and_the_flags(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("body,label\na,x\nb,x\nc,y\nd,y\n")
    with pytest.raises(DatasetError, match=r"no column 'text'; the columns are 'body', 'label'; pass "
                                           r"text=/label=/id= \(CLI: --text-column/--label-column\)"):
        load_dataset(path)
    assert len(load_dataset(path, text="body")) == 4
    jl = _jsonl(tmp_path / "d.jsonl", [{"body": t, "label": lab} for t, lab in ROWS])
    with pytest.raises(DatasetError, match=r"d\.jsonl, line 1: no column 'text'; the columns are 'body', "
                                           r"'label'; pass text=/label=/id= \(CLI: --text-column/--label-column\)"):
        load_dataset(jl)


def test_a_jsonl_id_may_be_missing_in_some_rows_but_not_in_all(tmp_path):
    records = [{"text": t, "label": lab} for t, lab in ROWS]
    records[1]["uid"] = "b-1"
    path = _jsonl(tmp_path / "d.jsonl", records)
    assert load_dataset(path, id="uid").ids == (None, "b-1", None, None, None, None)
    with pytest.raises(DatasetError, match=r"d\.jsonl: no column 'key'; the columns are 'text', 'label'"):
        load_dataset(path, id="key")


def test_a_pandas_na_label_is_missing_not_a_label_named_na():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": pd.array([1, 2, None, 1], dtype="Int64")})
    with pytest.raises(DatasetError, match=r"DataFrame, row 2, column 'label': missing label"):
        load_dataset(df)
