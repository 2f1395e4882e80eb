"""``load_dataset``: a ``TextDataset`` from a file or an in-memory table, every bad input named."""

from __future__ import annotations

import warnings
from array import array
from pathlib import Path
from typing import Any

import numpy as np

from geomcheck.data.text.dataset import DatasetError, MetadataColumns, TextDataset
from geomcheck.data.text.sources import MAX_ROWS, Rows, file_rows, missing_column, table_rows, too_many
from geomcheck.data.text.values import cell_text, label_key, merge_message, name_labels, sort_names
from geomcheck.errors import InvalidInputError

__all__ = ["load_dataset"]


def _open_source(source: Any, fmt: str | None, max_rows: int) -> Rows:
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DatasetError(f"no file at {str(path)!r}" + (" (it is a directory)" if path.is_dir() else ""))
        return file_rows(path, fmt, max_rows)
    return table_rows(source)


def load_dataset(source: Any, *, text: str = "text", label: str = "label", id: str | None = None,
                 format: str | None = None, label_order: str = "first-seen", drop_duplicates: bool = False,
                 max_rows: int = MAX_ROWS) -> TextDataset:
    """Labelled texts from a CSV / TSV / JSONL / JSON / Parquet file (``.gz`` or ``.zst`` compressed too), a
    list of records (dicts) or an in-memory table (pandas DataFrame, pyarrow Table, ``datasets.Dataset``).

    ``text`` / ``label`` (/ ``id``): the column names; the other columns become ``metadata``. The format
    comes from the suffix (the one before ``.gz`` / ``.zst``), or ``format=``. JSONL, CSV and TSV are read
    row by row, keeping only the texts, labels, ids and metadata.

    Labels: strings, or numbers named by value when the whole column is numeric (``1``, ``1.0``, ``"1"``
    are the label ``'1'``, with a warning when spellings merged); a ``datasets`` ClassLabel column keeps its
    names in its own order. ``label_names`` keep their first-seen order or are sorted (``label_order="sorted"``,
    numbers by value).

    Refused with a ``DatasetError`` naming the place: a missing file, an unknown format, a missing column
    (the columns there are listed), an empty text or label, a text cell holding a number or anything but a
    string (or UTF-8 bytes), a list or dict as a label, non-UTF-8 bytes, a malformed JSONL line, a single
    label, a label with one text (the metrics need two), more than ``max_rows`` rows. Duplicate texts are
    announced with their count, or dropped (``drop_duplicates=True``: the first occurrence stays).
    """
    if label_order not in ("first-seen", "sorted"):
        raise InvalidInputError(f"label_order must be 'first-seen' or 'sorted', got {label_order!r}")
    if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1:
        raise InvalidInputError(f"max_rows must be a positive int, got {max_rows!r}")
    rows = _open_source(source, format, max_rows)
    where = rows.where
    if rows.total is not None and rows.total > max_rows:
        raise too_many(where, rows.total, max_rows)
    wanted = (text, label) + ((id,) if id else ())
    for col in wanted if rows.columns is not None else ():
        if col not in rows.columns:
            raise missing_column(where, col, rows.columns)
    # JSONL: whether some row had the column yet; text and label must be in the first row (every row needs them),
    # an id only in some row
    present = dict.fromkeys(wanted, rows.columns is not None)
    first_keys: list[str] = []
    names = rows.class_names.get(label)

    texts: list[str] = []
    ids: list[Any] = []
    meta = MetadataColumns()
    numbers = array("q")  # each row's line (or row) number, for messages about it later
    codes = array("q")  # each row's label as an index into keys
    keys: dict[Any, int] = {}  # distinct label keys, first seen first
    for count, (n, row) in enumerate(rows.items, 1):
        if count > max_rows:
            left, complete = rows.rest()
            raise too_many(where, count + left, max_rows, complete=complete)
        place = f"{where}, {rows.unit} {n}"
        for col in wanted:
            if not present[col]:
                if col in row:
                    present[col] = True
                elif col != id:  # no earlier row had it either: a wrong name, not a gap
                    raise missing_column(place, col, list(row))
        first_keys = first_keys or list(row)
        texts.append(cell_text(row.get(text), place, text))
        codes.append(keys.setdefault(label_key(row.get(label), place, label, names), len(keys)))
        numbers.append(n)
        if id:
            ids.append(row.get(id))
        meta.append(row, wanted)
    if not texts:
        raise DatasetError(f"{where}: no rows")
    if id and not present[id]:
        raise missing_column(where, id, first_keys)

    def place(i: int) -> str:
        return f"{where}, {rows.unit} {numbers[i]}"

    keep: Any = range(len(texts))
    first_of = duplicates(texts)  # {index of a copy: index of the text's first occurrence}
    dupes = sorted(first_of)
    if dupes:
        if drop_duplicates:
            keep = [i for i in keep if i not in first_of]
        else:
            warnings.warn(f"geomcheck: {where}: {len(dupes)} duplicate text(s), first at {place(dupes[0])} (a copy "
                          f"of {place(first_of[dupes[0]])}); pass drop_duplicates=True to keep only the first of "
                          f"each", stacklevel=2)
    row_keys = np.frombuffer(codes, dtype=np.int64)[list(keep) if drop_duplicates and dupes else slice(None)]
    used, first = np.unique(row_keys, return_index=True)
    used = used[np.argsort(first)]  # the keys the kept rows use, first seen first
    all_keys = list(keys)
    kept_keys = [all_keys[k] for k in used]
    if names is not None:  # ClassLabel: its names, in its own order
        key_names, merged, numeric = kept_keys, [], False
        order = [n for n in names if n in set(kept_keys)]
    else:
        key_names, merged, numeric = name_labels(kept_keys, typed=rows.typed)
        order = list(dict.fromkeys(key_names))
    if merged:
        warnings.warn(merge_message(where, label, merged), UserWarning, stacklevel=2)
    if label_order == "sorted":
        order = sort_names(order, numeric)
    if len(order) < 2:
        raise DatasetError(f"{where}: every text has the label {order[0]!r}; the cluster metrics need at least 2 "
                           f"labels (pass label= (CLI: --label-column) if the labels are in another column)")
    code = {name: k for k, name in enumerate(order)}
    recode = np.zeros(len(all_keys), dtype=np.int64)
    recode[used] = [code[nm] for nm in key_names]
    labels = recode[row_keys]
    lonely = [nm for k, nm in enumerate(order) if (labels == k).sum() < 2]
    if lonely:
        raise DatasetError(f"{where}: label(s) {', '.join(map(repr, lonely))} have a single text; the silhouette "
                           f"needs at least 2 per label (add texts or drop the label)")
    pick = (lambda seq: tuple(seq[i] for i in keep)) if drop_duplicates and dupes else tuple
    kept_texts = pick(texts)
    del texts  # the tuple holds the strings now: only one list of pointers at a time
    return TextDataset(kept_texts, labels, tuple(order), pick(ids) if id else None, pick(meta.rows()), where,
                       hint="look at what the texts of the worst labels share (source, length, wording)")


def duplicates(texts: list[str]) -> dict[int, int]:
    """``{i: first}`` for every text ``i`` that repeats the earlier text ``first`` (its first occurrence).

    Candidates come from the strings' hashes (cached in each string: no pass over the characters) sorted in
    numpy, 16 bytes a text; only texts whose hashes collide are compared. A ``{text: index}`` dict held
    ~100 bytes a text at once, for a million texts more than the numbers that follow it.
    """
    n = len(texts)
    if n < 2:
        return {}
    hashes = np.fromiter((hash(t) for t in texts), dtype=np.int64, count=n)
    order = np.argsort(hashes, kind="stable")  # equal hashes keep their order: the first occurrence first
    same = hashes[order[1:]] == hashes[order[:-1]]
    del hashes
    out: dict[int, int] = {}
    if not same.any():
        return out
    starts = np.flatnonzero(np.diff(np.concatenate(([False], same, [False])).astype(np.int8)) == 1)
    for start in starts:
        stop = start + 1
        while stop < n and same[stop - 1]:
            stop += 1
        firsts: dict[str, int] = {}
        for i in order[start:stop].tolist():  # a handful of indices: equal hashes, mostly equal texts
            first = firsts.setdefault(texts[i], i)
            if first != i:
                out[i] = first
    return out

