"""The command-line flags of ``geomcheck.load_dataset`` (``--dataset PATH`` and how to read it), shared by the
subcommands that take your own labelled texts, so that every loader option has its flag."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_reading_flags", "read_dataset"]

_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")  # geomcheck.data.text.FORMATS (not imported: light --help)
_MAX_ROWS = 200_000  # geomcheck.data.text.MAX_ROWS


def _rows(text: str) -> int:
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of rows, got {text!r}") from None
    if value < 4:
        raise argparse.ArgumentTypeError(f"must be >= 4 (2 labels of 2 texts), got {value}")
    return value


def add_reading_flags(parser: argparse.ArgumentParser) -> None:
    """``--text-column``, ``--label-column``, ``--dataset-format``, ``--max-rows`` (with ``--dataset PATH``)."""
    parser.add_argument("--text-column", default="text", metavar="NAME", help="with --dataset PATH: the text column")
    parser.add_argument("--label-column", default="label", metavar="NAME", help="with --dataset PATH: the label column")
    parser.add_argument("--dataset-format", choices=_FORMATS, metavar="FORMAT",
                        help=f"with --dataset PATH: {', '.join(_FORMATS)} (default: from the file's suffix; .gz and "
                             f".zst files are decompressed)")
    parser.add_argument("--max-rows", type=_rows, default=_MAX_ROWS, metavar="N",
                        help=f"with --dataset PATH: refuse a file of more rows (default {_MAX_ROWS:,})")


def read_dataset(args: argparse.Namespace) -> Any:
    """``load_dataset(args.dataset, …)`` with the flags above."""
    from geomcheck.data import load_dataset

    return load_dataset(args.dataset, text=args.text_column, label=args.label_column, format=args.dataset_format,
                        max_rows=args.max_rows)
