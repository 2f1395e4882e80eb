"""The command-line flags of ``geomcheck.load_dataset`` (``--dataset PATH`` and how to read it), shared by the
subcommands that take your own labelled texts, so that every loader option has its flag; and the flags of how
a dataset is measured (``--metric``, ``--exact-max``), shared by ``geomcheck table`` and ``geomcheck baseline``."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_metric_flags", "add_reading_flags", "read_dataset"]


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


def _exact_max(text: str) -> int:
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of texts, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be >= 2, got {value}")
    return value


def add_metric_flags(parser: argparse.ArgumentParser, *, metric: str, above: str) -> None:
    """``--metric`` (``metric``: what the help adds about the chosen distance) and ``--exact-max`` (``above``: what
    happens to a dataset of more texts)."""
    parser.add_argument("--metric", default="euclidean", choices=("euclidean", "cosine"),
                        help=f"the silhouette's distance: euclidean (the paper's, default) or cosine "
                             f"(1 - cos; exact at any size in O(N k d)){metric}")
    parser.add_argument("--exact-max", type=_exact_max, default=None, metavar="N",
                        help=f"the most texts whose Euclidean silhouettes are all computed exactly (default 60000: "
                             f"11 s on a 2-core CPU, ~2.4 minutes for a baseline comparison); above, {above}")


def read_dataset(args: argparse.Namespace) -> Any:
    """``load_dataset(args.dataset, …)`` with the flags above."""
    from geomcheck.data import load_dataset

    limit = {} if args.max_rows is None else {"max_rows": args.max_rows}
    return load_dataset(args.dataset, text=args.text_column, label=args.label_column, format=args.dataset_format,
                        **limit)
