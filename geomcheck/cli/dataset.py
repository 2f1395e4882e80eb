"""Print a dataset's texts (``geomcheck dataset``): the paper's 24 by default."""

from __future__ import annotations

import argparse
import json

from geomcheck.errors import GeomcheckError

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("dataset", help="print a dataset's texts (default: the paper's 24)")
    which = ds.add_mutually_exclusive_group()
    which.add_argument("--heldout", action="store_true", help="the held-out families instead of the paper's")
    which.add_argument("--families", metavar="A,B,…", help="comma-separated family names")
    ds.add_argument("--per-family", type=int, default=4, help="sequences per family (default 4)")
    ds.add_argument("--length", type=int, default=50, help="terms per sequence (default 50)")
    ds.add_argument("--start", type=int, default=0, help="0-based index of the first term (default 0)")
    ds.add_argument("--max-chars", type=int, help="cut texts at a term boundary (default 20000; 400 with --heldout, "
                    "the suites' held-out set)")
    ds.add_argument("--json", action="store_true", help="one JSON object per line")
    ds.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from geomcheck.data import HELDOUT_MAX_CHARS, heldout_dataset, make_dataset, paper_dataset

    if args.max_chars is None:
        args.max_chars = HELDOUT_MAX_CHARS if args.heldout else 20_000
    if args.families:
        ds = make_dataset(args.families.split(","), args.per_family, args.length,
                          start=args.start, max_chars=args.max_chars)
    elif args.heldout:
        ds = heldout_dataset(args.per_family, args.length, max_chars=args.max_chars, start=args.start)
    else:
        if args.start:
            raise GeomcheckError("--start applies to --families or --heldout; the paper dataset starts at 0")
        ds = paper_dataset(args.per_family, args.length, max_chars=args.max_chars)
    for text, label, start in zip(ds.texts, ds.labels.tolist(), ds.starts):
        if args.json:
            print(json.dumps({"family": ds.label_names[label], "label": label, "start": start, "text": text}))
        else:
            print(f"{ds.label_names[label]}\t{start}\t{text}")
    return 0
