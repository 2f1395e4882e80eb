"""The command-line flags of ``geomcheck.load_dataset`` (``--dataset PATH`` and how to read it), shared by the
subcommands that take your own labelled texts, so that every loader option has its flag."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_reading_flags", "read_dataset"]


def _format(text: str) -> str:
    from geomcheck.data.text import FORMATS  # here, not at import: `geomcheck --help` stays light

    if text not in FORMATS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(FORMATS)}, got {text!r}")
    return text


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
    parser.add_argument("--dataset-format", type=_format, metavar="FORMAT",
                        help="with --dataset PATH: csv, tsv, jsonl, json or parquet (default: from the file's suffix; "
                             ".gz and .zst files are decompressed)")
    parser.add_argument("--max-rows", type=_rows, metavar="N",
                        help="with --dataset PATH: refuse a file of more rows (default: load_dataset's max_rows)")


def read_dataset(args: argparse.Namespace) -> Any:
    """``load_dataset(args.dataset, …)`` with the flags above."""
    from geomcheck.data import load_dataset

    limit = {} if args.max_rows is None else {"max_rows": args.max_rows}
    return load_dataset(args.dataset, text=args.text_column, label=args.label_column, format=args.dataset_format,
                        **limit)
