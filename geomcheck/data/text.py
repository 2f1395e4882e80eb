"""Your own labelled texts: ``TextDataset`` and ``load_dataset`` (CSV, TSV, JSONL/JSON, Parquet, DataFrames).

A ``TextDataset`` is what a ``SequenceDataset`` is to the metrics and checks — texts, integer
``labels`` and their ``label_names`` — for a team's own classes (intents, topics, languages).
``load_dataset`` reads it from a file or an in-memory table and refuses bad input with a
``DatasetError`` naming the file, the line or row, and the column.

Label names keep their first-seen order (``label_order="first-seen"``, the default) or are
sorted (``"sorted"``); label values may be strings or integers.
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from geomcheck.errors import InvalidInputError

__all__ = ["TextDataset", "DatasetError", "load_dataset", "dataset_name", "FORMATS", "MAX_ROWS"]

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
MAX_ROWS = 200_000  # load_dataset's default limit (max_rows=): past it, embedding alone takes hours on a CPU
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
             ".parquet": "parquet", ".pq": "parquet"}


class DatasetError(InvalidInputError):
    """A labelled-text source that cannot be used as it is; the message names the place and the fix."""


@dataclass(frozen=True, eq=False)
class TextDataset:
    """Texts with integer class labels: ``texts[i]`` belongs to ``label_names[labels[i]]``.

    ``ids`` and ``metadata`` (one mapping per text) are optional; ``source`` says where it was read.
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    ids: tuple[Any, ...] | None = None
    metadata: tuple[Mapping[str, Any], ...] | None = None
    source: str = ""
    hint: str = field(default="", repr=False)  # what a failing check should suggest for these data
    class_word: ClassVar[str] = "label"  # what messages and legends call the classes (the paper says "family")

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels, dtype=np.int64)
        labels.flags.writeable = False
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "label_names", tuple(str(n) for n in self.label_names))
        n = len(self.texts)
        if len(labels) != n or (self.ids is not None and len(self.ids) != n) or (
                self.metadata is not None and len(self.metadata) != n):
            raise InvalidInputError(f"TextDataset fields disagree in length: {n} texts, {len(labels)} labels")
        if n and (labels.min() < 0 or labels.max() >= len(self.label_names)):
            raise InvalidInputError(f"labels must lie in [0, {len(self.label_names)})")

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"TextDataset({len(self)} texts, {len(self.label_names)} labels: {', '.join(self.label_names)}{where})"

    def counts(self) -> dict[str, int]:
        """Texts per label name."""
        return {name: int((self.labels == k).sum()) for k, name in enumerate(self.label_names)}

    def subset(self, index: Sequence[int]) -> TextDataset:
        idx = [int(i) for i in index]
        return TextDataset(tuple(self.texts[i] for i in idx), self.labels[idx], self.label_names,
                           None if self.ids is None else tuple(self.ids[i] for i in idx),
                           None if self.metadata is None else tuple(self.metadata[i] for i in idx),
                           self.source, self.hint)

    def split(self, test_size: float = 0.25, *, seed: int = 0) -> tuple[TextDataset, TextDataset]:
        """(train, test), stratified: each label puts ``round(test_size · n_label)`` of its texts (at least 1,
        and at least 1 left for training) into test, drawn with ``seed``; both keep every label name."""
        if not (isinstance(test_size, (int, float)) and 0 < test_size < 1):
            raise InvalidInputError(f"test_size must lie in (0, 1), got {test_size!r}")
        rng = np.random.default_rng(seed)
        train, test = [], []
        for k in range(len(self.label_names)):
            members = np.flatnonzero(self.labels == k)
            if len(members) < 2:
                raise DatasetError(f"label {self.label_names[k]!r} has {len(members)} text(s); a split needs 2")
            members = rng.permutation(members)
            n_test = min(len(members) - 1, max(1, round(test_size * len(members))))
            test += members[:n_test].tolist()
            train += members[n_test:].tolist()
        return self.subset(sorted(train)), self.subset(sorted(test))


_RESERVED_NAMES = ("paper", "heldout", "suite", "task")


def dataset_name(path: str) -> str:
    """The name a dataset file carries in reports and baseline files: its stem, with characters other than
    letters, digits, ``-``, ``_`` and ``.`` replaced by ``-`` (``-data`` added to paper, heldout, suite, task)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).stem).strip("-.") or "dataset"
    return f"{stem}-data" if stem in _RESERVED_NAMES else stem


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise DatasetError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise DatasetError(f"{path}: cannot tell the format from the suffix {path.suffix or '(none)'!r}; rename it "
                           f"or pass format= (one of {', '.join(FORMATS)})")
    return found


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DatasetError(f"{path}, line {line}: not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start}); "
                           f"re-save the file as UTF-8") from None


def _rows_from_file(path: Path, fmt: str) -> tuple[list[Mapping[str, Any]], list[str], str]:
    """(rows, columns, what a row is called in messages: "line" or "row")."""
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DatasetError(f"{path}: reading Parquet needs pyarrow; pip install 'geomcheck[parquet]' "
                               f"(or pyarrow)") from None
        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
            raise DatasetError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
        return table.to_pylist(), list(table.column_names), "row"
    text = _read_text(path)
    if fmt in ("csv", "tsv"):
        reader = csv.DictReader(io.StringIO(text), delimiter="," if fmt == "csv" else "\t")
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise DatasetError(f"{path}, line {reader.line_num}: {exc}") from None
        return rows, list(reader.fieldnames or []), "line"
    if fmt == "jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}, line {n}: not a JSON object ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}, line {n}: expected a JSON object, got {type(obj).__name__}")
            rows.append((n, obj))
        columns = list(dict.fromkeys(k for _, r in rows for k in r))
        return [dict(r, __line__=n) for n, r in rows], columns, "line"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}, line {exc.lineno}: not JSON ({exc.msg})") from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]
    if not (isinstance(doc, list) and all(isinstance(r, dict) for r in doc)):
        raise DatasetError(f"{path}: expected a JSON array of objects (or {{\"data\": [...]}})")
    return doc, list(dict.fromkeys(k for r in doc for k in r)), "row"


def _rows_from_table(obj: Any) -> tuple[list[Mapping[str, Any]], list[str]]:
    if hasattr(obj, "to_dict") and hasattr(obj, "columns") and hasattr(obj, "iloc"):  # a pandas DataFrame
        return obj.to_dict(orient="records"), [str(c) for c in obj.columns]
    if hasattr(obj, "column_names") and hasattr(obj, "to_list"):  # a Hugging Face datasets.Dataset
        return obj.to_list(), list(obj.column_names)
    if hasattr(obj, "column_names") and hasattr(obj, "to_pylist"):  # a pyarrow Table
        return obj.to_pylist(), list(obj.column_names)
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)) and all(isinstance(r, Mapping) for r in obj):
        return list(obj), list(dict.fromkeys(k for r in obj for k in r))  # records: [{"text": …, "label": …}, …]
    raise DatasetError(f"load_dataset takes a file path, a list of records (dicts), a pandas DataFrame, a pyarrow "
                       f"Table or a Hugging Face Dataset; got {type(obj).__name__}")


def load_dataset(source: Any, *, text: str = "text", label: str = "label", id: str | None = None,
                 format: str | None = None, label_order: str = "first-seen", drop_duplicates: bool = False,
                 max_rows: int = MAX_ROWS) -> TextDataset:
    """Labelled texts from a CSV / TSV / JSONL / JSON / Parquet file, a list of records (dicts) or an
    in-memory table.

    ``text`` / ``label`` (/ ``id``): the column names; the other columns become ``metadata``.
    Refused with a ``DatasetError`` naming the place: a missing file, an unknown format, a
    missing column (the columns there are listed), an empty text or label, non-UTF-8 bytes, a
    malformed JSONL line, a single label, a label with one text (the metrics need two), more
    than ``max_rows`` rows. Duplicate texts are announced with their count, or dropped
    (``drop_duplicates=True``: the first occurrence stays).
    """
    if label_order not in ("first-seen", "sorted"):
        raise InvalidInputError(f"label_order must be 'first-seen' or 'sorted', got {label_order!r}")
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DatasetError(f"no file at {str(path)!r}" + (" (it is a directory)" if path.is_dir() else ""))
        fmt = _format_of(path, format)
        if fmt in ("csv", "tsv", "jsonl", "json") and path.stat().st_size > 400 * max_rows + 10_000_000:
            raise DatasetError(f"{path} has {path.stat().st_size:,} bytes, far more than max_rows={max_rows:,} "
                               f"texts need; pass max_rows= to raise the limit")
        rows, columns, unit = _rows_from_file(path, fmt)
        where = str(path)
    else:
        rows, columns = _rows_from_table(source)
        unit, where = "row", "records" if isinstance(source, Sequence) else type(source).__name__
    if len(rows) > max_rows:
        raise DatasetError(f"{where}: {len(rows):,} rows, more than max_rows={max_rows:,}; pass max_rows= to raise "
                           f"the limit")
    for col in (text, label) + ((id,) if id else ()):
        if col not in columns:
            raise DatasetError(f"{where}: no column {col!r}; the columns are {', '.join(map(repr, columns)) or 'none'}"
                               f" (pass text=, label= or id= to name others)")
    first = 2 if unit == "line" else 0  # CSV/TSV: line 1 is the header; rows count from 0 (JSONL rows know their line)

    def place(i: int, row: Mapping[str, Any]) -> str:
        return f"{where}, {unit} {row.get('__line__', i + first)}"

    texts, raw_labels, ids, meta = [], [], [], []
    for i, row in enumerate(rows):
        t, lab = row.get(text), row.get(label)
        if not isinstance(t, str) or not t.strip():
            raise DatasetError(f"{place(i, row)}, column {text!r}: empty or missing text ({t!r}); every row needs "
                               f"one")
        if lab is None or (isinstance(lab, float) and lab != lab) or (isinstance(lab, str) and not lab.strip()):
            raise DatasetError(f"{place(i, row)}, column {label!r}: missing label")
        texts.append(t)
        raw_labels.append(lab.strip() if isinstance(lab, str) else lab)
        ids.append(row.get(id) if id else None)
        meta.append({k: v for k, v in row.items() if k not in (text, label, id, "__line__")})
    if not texts:
        raise DatasetError(f"{where}: no rows")
    keep = list(range(len(texts)))
    seen: dict[str, int] = {}
    dupes = [i for i in keep if seen.setdefault(texts[i], i) != i]
    if dupes:
        if drop_duplicates:
            keep = [i for i in keep if seen[texts[i]] == i]
        else:
            warnings.warn(f"geomcheck: {where}: {len(dupes)} duplicate text(s), first at {place(dupes[0], rows[dupes[0]])}"
                          f" (a copy of {place(seen[texts[dupes[0]]], rows[seen[texts[dupes[0]]]])}); pass "
                          f"drop_duplicates=True to keep only the first of each", stacklevel=2)
    names = list(dict.fromkeys(str(raw_labels[i]) for i in keep))
    if label_order == "sorted":
        names = sorted(names, key=lambda n: (0, int(n)) if n.lstrip("-").isdigit() else (1, n))
    if len(names) < 2:
        raise DatasetError(f"{where}: every text has the label {names[0]!r}; the cluster metrics need at least 2 "
                           f"labels")
    code = {n: k for k, n in enumerate(names)}
    labels = np.array([code[str(raw_labels[i])] for i in keep])
    lonely = [n for k, n in enumerate(names) if (labels == k).sum() < 2]
    if lonely:
        raise DatasetError(f"{where}: label(s) {', '.join(map(repr, lonely))} have a single text; the silhouette "
                           f"needs at least 2 per label (add texts or drop the label)")
    return TextDataset(tuple(texts[i] for i in keep), labels, tuple(names),
                       tuple(ids[i] for i in keep) if id else None, tuple(meta[i] for i in keep), where,
                       hint="look at what the texts of the worst labels share (source, length, wording)")

