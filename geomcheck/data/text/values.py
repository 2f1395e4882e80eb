"""What a cell must hold: a text (a string, or UTF-8 bytes) and one label, named by value when the label column
is numeric (``1``, ``1.0`` and ``"1"`` are one label, ``'1'``), the way a pandas round trip writes them."""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

from geomcheck.data.text.dataset import DatasetError

__all__ = ["cell_text", "label_key", "name_labels", "sort_names"]

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")  # no nan/inf, no 1_000: a label, not Python
_INTEGER = re.compile(r"[+-]?\d+")
_TEXT_FIX = "pass text= (CLI: --text-column) to name the column that holds the texts, or store them as strings"


def _missing(value: Any) -> bool:
    # None, NaN, and pandas' NA / NaT (whose str() would otherwise become a label "<NA>")
    return value is None or (isinstance(value, float) and value != value) or type(value).__name__ in ("NAType",
                                                                                                      "NaTType")


def _is_number(value: Any) -> bool:
    # bools are numbers to Python (True == 1) but not here: a True label is no label 1
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def cell_text(value: Any, place: str, column: str) -> str:
    """The text of one cell, or a ``DatasetError`` saying what the cell holds instead."""
    if isinstance(value, (bytes, bytearray, memoryview)):  # Parquet / Arrow binary columns
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise DatasetError(f"{place}, column {column!r}: bytes that are not UTF-8 ({bytes(value)[:24]!r}); "
                               f"store the texts as UTF-8 strings") from None
    if isinstance(value, str):
        if value.strip():
            return value
    elif not _missing(value):
        what = "a number" if _is_number(value) else f"a {type(value).__name__}"
        raise DatasetError(f"{place}, column {column!r}: holds {what} ({str(value)[:60]}), not text; {_TEXT_FIX}")
    raise DatasetError(f"{place}, column {column!r}: empty or missing text ({value!r}); every row needs one")


def label_key(value: Any, place: str, column: str, class_names: Sequence[str] | None = None) -> Any:
    """A hashable key for one label cell: the stripped string, or ``(type, value)`` for a number or a bool
    (so that 1, 1.0 and True stay apart until ``name_labels`` decides what they are)."""
    if class_names is not None:  # a Hugging Face ClassLabel: an int into its names, -1 for "no label"
        if _missing(value) or value == -1:
            raise DatasetError(f"{place}, column {column!r}: missing label")
        if not (isinstance(value, numbers.Integral) and 0 <= value < len(class_names)):
            raise DatasetError(f"{place}, column {column!r}: label {value!r} is not one of the ClassLabel's "
                               f"{len(class_names)} names")
        return class_names[int(value)]
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise DatasetError(f"{place}, column {column!r}: a label of bytes that are not UTF-8") from None
    if isinstance(value, str):
        if not value.strip():
            raise DatasetError(f"{place}, column {column!r}: missing label")
        return value.strip()
    if _missing(value):
        raise DatasetError(f"{place}, column {column!r}: missing label")
    if _is_number(value) or isinstance(value, bool) or type(value).__name__ == "bool_":
        return (type(value), value)
    if isinstance(value, (Mapping, Sequence, set, frozenset)) or hasattr(value, "__array__"):
        # str() of a list would make "[1, 2]" a class of its own: a wrong answer that looks right
        raise DatasetError(f"{place}, column {column!r}: the label is a {type(value).__name__} "
                           f"({str(value)[:60]}), not a single value; each text needs exactly one label (one row per "
                           f"label for multi-label data), or pass label= (CLI: --label-column) to name another column")
    return (type(value), value)


def _raw(key: Any) -> Any:
    return key if isinstance(key, str) else key[1]


def _number_name(value: Any) -> str:
    """1, 1.0, "1.0", "01" -> "1"; 2.5 -> "2.5": integral numbers as ints, others as Python prints the float."""
    if isinstance(value, str):
        s = value.strip()
        if _INTEGER.fullmatch(s):
            return str(int(s))
        value = float(s)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    f = float(value)
    return str(int(f)) if f.is_integer() else repr(f)


def _numeric(keys: Sequence[Any], typed: bool) -> bool:
    """Whether a label column holds numbers: every value a number, or (CSV/TSV, where every value is a string)
    every value spells one. In typed sources numeric strings count only beside real numbers (1 and "1.0"): a
    column of strings alone was written as strings on purpose."""
    numbers_ = [k for k in keys if not isinstance(k, str) and _is_number(k[1])]
    strings = [k for k in keys if isinstance(k, str)]
    if len(numbers_) + len(strings) != len(keys) or not all(_NUMBER.fullmatch(s) for s in strings):
        return False
    return bool(numbers_) or not typed


def name_labels(keys: Sequence[Any], *, typed: bool) -> tuple[list[str], list[tuple[str, list[str]]], bool]:
    """The name of each distinct label key, the (name, spellings) groups that naming by value merged, and
    whether the column was numeric."""
    if not _numeric(keys, typed):
        return [str(_raw(k)) for k in keys], [], False
    names = [_number_name(_raw(k)) for k in keys]
    spellings: dict[str, list[str]] = {}
    for key, name in zip(keys, names, strict=True):
        spellings.setdefault(name, []).append(str(_raw(key)))
    merged = [(name, list(dict.fromkeys(sp))) for name, sp in spellings.items() if len(set(sp)) > 1]
    return names, merged, True


def merge_message(where: str, column: str, merged: list[tuple[str, list[str]]]) -> str:
    """One warning for all merges: the first in full, the others after it."""
    def both(sp: list[str]) -> str:
        return ", ".join(sp[:-1]) + f" and {sp[-1]}"
    (name, sp), more = merged[0], merged[1:]
    also = [f"{both(s)} as {n!r}" for n, s in more[:3]] + ([f"{len(more) - 3} more"] if len(more) > 3 else [])
    return (f"geomcheck: {where}, column {column!r}: labels {both(sp)} are the same number: read as one label "
            f"{name!r}" + (f" (likewise {', '.join(also)})" if also else ""))


def sort_names(names: list[str], numeric: bool) -> list[str]:
    """Names sorted: by value when the labels are numbers, else integers first (as numbers), then text."""
    if numeric:
        from decimal import Decimal  # exact for 10**20 and 10**20 + 1, unlike float

        return sorted(names, key=Decimal)
    return sorted(names, key=lambda n: (0, int(n), "") if _INTEGER.fullmatch(n) else (1, 0, n))
