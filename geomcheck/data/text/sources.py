"""Where ``load_dataset``'s rows come from: files (CSV, TSV, JSONL, JSON, Parquet; plain, gzip or zstd) and
in-memory tables (records, pandas, pyarrow, Hugging Face ``datasets``), each read lazily as ``Rows``.

JSONL, CSV and TSV are read line by line from the (decompressed) byte stream, so a large file never sits in
memory whole: only what ``load_dataset`` keeps of each row survives it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from geomcheck.data.text.dataset import DatasetError

__all__ = ["FORMATS", "MAX_ROWS", "Rows", "file_rows", "table_rows", "too_many", "missing_column"]

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
MAX_ROWS = 200_000  # load_dataset's default limit (max_rows=): past it, embedding alone takes hours on a CPU
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
             ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSED = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
# The bytes decide, not the name: a gzip file called data.jsonl is still read (and a plain data.jsonl.gz refused).
_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
FLAGS = {"format": "format= (CLI: --dataset-format)", "max_rows": "max_rows= (CLI: --max-rows)",
         "columns": "text=/label=/id= (CLI: --text-column/--label-column)"}


@dataclass
class Rows:
    """One source's rows, read lazily as ``(number, mapping)``: the number is what messages call the line
    (JSONL, CSV, TSV: 1-based lines of the file) or the row (JSON, Parquet, tables: 0-based)."""

    where: str
    unit: str  # "line" or "row"
    items: Iterator[tuple[int, Mapping[str, Any]]]
    columns: list[str] | None  # None: JSONL, whose rows may differ in keys; learnt while reading
    total: int | None = None  # known before reading (tables, JSON, Parquet)
    rest: Callable[[], tuple[int, bool]] = lambda: (0, True)  # rows left unread, counted; False: count cut short
    typed: bool = True  # False for CSV/TSV, where every value is a string
    class_names: dict[str, list[str]] = field(default_factory=dict)  # Hugging Face ClassLabel columns


def too_many(where: str, n: int, max_rows: int, *, complete: bool = True) -> DatasetError:
    return DatasetError(f"{where}: {'' if complete else 'at least '}{n:,} rows, more than max_rows={max_rows:,}; "
                        f"pass {FLAGS['max_rows']} to raise the limit, or keep a sample of the rows")


def missing_column(where: str, col: str, columns: Sequence[str]) -> DatasetError:
    return DatasetError(f"{where}: no column {col!r}; the columns are {', '.join(map(repr, columns)) or 'none'}; pass "
                        f"{FLAGS['columns']} to name other columns")


def _compression(path: Path) -> str | None:
    with path.open("rb") as fh:
        head = fh.read(4)
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def format_of(path: Path, fmt: str | None) -> tuple[str, str | None]:
    """(format, compression) of a file: the format from ``fmt`` or the suffix before any .gz / .zst, the
    compression from the first bytes."""
    suffix = path.suffix.lower()
    compression = _compression(path)
    if suffix in _COMPRESSED and compression != _COMPRESSED[suffix]:
        raise DatasetError(f"{path}: named {suffix} but not {_COMPRESSED[suffix]}-compressed "
                           f"({'not compressed' if compression is None else compression}); rename it")
    inner = Path(path.stem).suffix.lower() if suffix in _COMPRESSED else suffix
    if fmt is not None:
        if fmt not in FORMATS:
            raise DatasetError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    elif (fmt := _SUFFIXES.get(inner)) is None:
        shown = f"{inner or '(none)'}" + (f" before {suffix}" if suffix in _COMPRESSED else "")
        raise DatasetError(f"{path}: cannot tell the format from the suffix {shown!r}; rename it (e.g. data.jsonl, "
                           f"data.csv.gz) or pass {FLAGS['format']}, one of {', '.join(FORMATS)}")
    if fmt == "parquet" and compression is not None:
        raise DatasetError(f"{path}: a {compression}-compressed Parquet file; Parquet compresses inside the file, "
                           f"so decompress it first ({'gunzip' if compression == 'gzip' else 'zstd -d'})")
    return fmt, compression


def _open(path: Path, compression: str | None) -> BinaryIO:
    if compression == "gzip":
        import gzip  # here: `import geomcheck` stays fast

        return gzip.open(path, "rb")  # type: ignore[return-value]
    if compression == "zstd":
        try:
            import zstandard
        except ImportError:
            raise DatasetError(f"{path} is zstd-compressed and reading it needs the zstandard module: pip install "
                               f"zstandard (or decompress it first: zstd -d {path.name})") from None
        return io.BufferedReader(zstandard.open(path, "rb"))
    return path.open("rb")


def _lines(path: Path, compression: str | None) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file (a leading BOM dropped), decompressed on the fly."""
    with _open(path, compression) as fh:
        lines, n, offset = iter(fh), 0, 0
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - gzip, zlib and zstandard each raise their own types
                raise DatasetError(f"{path}, line {n + 1}: cannot decompress it as {compression} "
                                   f"({type(exc).__name__}: {exc}); the file is damaged or cut short") from None
            n += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(f"{path}, line {n}: not UTF-8 (byte {raw[exc.start]:#04x} at offset "
                                   f"{offset + exc.start}); re-save the file as UTF-8") from None
            offset += len(raw)
            yield n, (line.removeprefix("\ufeff") if n == 1 else line)


def _counter(items: Iterator[Any]) -> Callable[[], tuple[int, bool]]:
    """Counts what is left of ``items`` without keeping it; a damaged row ends the count (False: cut short)."""
    def rest() -> tuple[int, bool]:
        n = 0
        try:
            for _ in items:
                n += 1
        except (DatasetError, csv.Error):
            return n, False
        return n, True
    return rest


def _delimited(path: Path, compression: str | None, delimiter: str) -> Rows:
    reader = csv.reader((line for _, line in _lines(path, compression)), delimiter=delimiter)
    try:
        header = next(reader, [])
    except csv.Error as exc:
        raise DatasetError(f"{path}, line {reader.line_num}: {exc}") from None

    def items() -> Iterator[tuple[int, Mapping[str, Any]]]:
        while True:
            start = reader.line_num + 1  # a quoted field may span lines: name the line the row starts on
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DatasetError(f"{path}, line {reader.line_num}: {exc}") from None
            if not fields:
                continue  # a blank line is no row (as csv.DictReader has it)
            if len(fields) > len(header):
                # an unquoted separator inside a text would otherwise cut it short, silently
                raise DatasetError(f"{path}, line {start}: {len(fields)} fields but the header has {len(header)}; "
                                   f"a text containing {'a comma' if delimiter == ',' else 'a tab'} needs double "
                                   f"quotes around it")
            yield start, dict(zip(header, fields, strict=False))  # a short row: its last cells are missing

    return Rows(str(path), "line", items(), list(header), rest=_counter(r for r in reader if r), typed=False)


def _jsonl(path: Path, compression: str | None) -> Rows:
    lines = (nl for nl in _lines(path, compression) if nl[1].strip())

    def items() -> Iterator[tuple[int, Mapping[str, Any]]]:
        for n, line in lines:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}, line {n}: not a JSON object ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}, line {n}: expected a JSON object, got {type(obj).__name__}")
            yield n, obj

    return Rows(str(path), "line", items(), None, rest=_counter(lines))


def _json(path: Path, compression: str | None, max_rows: int) -> Rows:
    # a JSON array is parsed whole, so its size is checked first (JSONL is read row by row instead)
    if compression is None and (size := path.stat().st_size) > 400 * max_rows + 10_000_000:
        raise DatasetError(f"{path} has {size:,} bytes, far more than max_rows={max_rows:,} texts need; pass "
                           f"{FLAGS['max_rows']} to raise the limit (or write it as JSONL, read row by row)")
    text = "".join(line for _, line in _lines(path, compression))
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}, line {exc.lineno}: not JSON ({exc.msg})") from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]
    if not (isinstance(doc, list) and all(isinstance(r, dict) for r in doc)):
        raise DatasetError(f"{path}: expected a JSON array of objects (or {{\"data\": [...]}})")
    return Rows(str(path), "row", enumerate(doc), list(dict.fromkeys(k for r in doc for k in r)), total=len(doc))


def _parquet(path: Path) -> Rows:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(f"{path}: reading Parquet needs pyarrow; pip install 'geomcheck[parquet]' "
                           f"(or pyarrow)") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise DatasetError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None

    def items() -> Iterator[tuple[int, Mapping[str, Any]]]:
        i = 0
        try:
            for batch in pf.iter_batches(batch_size=4096):
                for row in batch.to_pylist():
                    yield i, row
                    i += 1
        except Exception as exc:  # noqa: BLE001 - as above, for a damaged row group
            raise DatasetError(f"{path}, row {i}: not readable ({type(exc).__name__}: {exc})") from None

    return Rows(str(path), "row", items(), list(pf.schema_arrow.names), total=pf.metadata.num_rows)


def file_rows(path: Path, fmt: str | None, max_rows: int) -> Rows:
    """The rows of a file, in the format ``fmt`` names or its suffix says; gzip and zstd read transparently."""
    fmt, compression = format_of(path, fmt)
    if fmt == "parquet":
        return _parquet(path)
    if fmt == "json":
        return _json(path, compression, max_rows)
    if fmt == "jsonl":
        return _jsonl(path, compression)
    return _delimited(path, compression, "," if fmt == "csv" else "\t")


def _class_names(features: Any) -> dict[str, list[str]]:
    """A Hugging Face dataset's ClassLabel columns and their names (the labels are stored as ints)."""
    if not isinstance(features, Mapping):
        return {}
    return {str(col): list(feat.names) for col, feat in features.items()
            if type(feat).__name__ == "ClassLabel" and isinstance(getattr(feat, "names", None), list)}


def table_rows(obj: Any) -> Rows:
    """The rows of an in-memory table: records (dicts), a pandas DataFrame, a pyarrow Table, a ``datasets.Dataset``."""
    kind = type(obj).__name__
    if kind in ("DatasetDict", "IterableDatasetDict"):
        raise DatasetError(f"a {kind} holds several splits ({', '.join(map(repr, obj))}); pass one of them, e.g. "
                           f"load_dataset(ds['train'])")
    if hasattr(obj, "to_dict") and hasattr(obj, "columns") and hasattr(obj, "iloc"):  # a pandas DataFrame
        return Rows(kind, "row", enumerate(obj.to_dict(orient="records")), [str(c) for c in obj.columns],
                    total=len(obj))
    if hasattr(obj, "column_names") and hasattr(obj, "to_list"):  # a Hugging Face datasets.Dataset
        return Rows(kind, "row", enumerate(obj.to_list()), list(obj.column_names), total=len(obj),
                    class_names=_class_names(getattr(obj, "features", None)))
    if hasattr(obj, "column_names") and hasattr(obj, "to_batches"):  # a pyarrow Table
        rows = (row for batch in obj.to_batches() for row in batch.to_pylist())
        return Rows(kind, "row", enumerate(rows), list(obj.column_names), total=obj.num_rows)
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)) and all(isinstance(r, Mapping) for r in obj):
        return Rows("records", "row", enumerate(obj), list(dict.fromkeys(k for r in obj for k in r)), total=len(obj))
    raise DatasetError(f"load_dataset takes a file path, a list of records (dicts), a pandas DataFrame, a pyarrow "
                       f"Table or a Hugging Face Dataset; got {kind}")
