"""The ``geomcheck`` console script."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from geomcheck import __version__
from geomcheck.errors import GeomcheckError


def _families(args: argparse.Namespace) -> int:
    from geomcheck.sequences import FAMILIES

    rows = [
        {"name": f.name, "oeis": f.oeis, "paper": f.paper, "first_terms": f.terms(0, 8),
         "description": f.description}
        for f in FAMILIES.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} sequence families (0-based terms)")
    for col in ("name", "OEIS", "set", "first terms"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["oeis"], "paper" if r["paper"] else "held-out",
                      ", ".join(map(str, r["first_terms"])) + ", …")
    Console().print(table)
    return 0


def _dataset(args: argparse.Namespace) -> int:
    from geomcheck.sequences import heldout_dataset, make_dataset, paper_dataset

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


def _models(args: argparse.Namespace) -> int:
    from geomcheck.models import REGISTRY
    from geomcheck.models.loading import availability

    rows = [
        {"alias": s.alias, "hf_id": s.hf_id, "kind": s.kind, "pooling": s.pooling, "dim": s.dim,
         "params": s.params, "available": availability(s)}
        for s in REGISTRY.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} registered models (`pytest suites/ --model ALIAS`)")
    for col in ("alias", "Hugging Face id", "kind", "pooling", "dim", "params", "available here"):
        table.add_column(col)
    style = {"packaged": "green", "hf-cache": "green", "not available": "dim"}
    for r in rows:
        table.add_row(r["alias"], r["hf_id"], r["kind"], r["pooling"], str(r["dim"]), r["params"],
                      f"[{style[r['available']]}]{r['available']}[/]")
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geomcheck",
        description="Test the geometry of text-embedding models: do sequence families separate, "
        "does a LoRA fine-tune or a merge keep its base model's geometry? "
        "The tests themselves run under pytest: `pytest suites/ --model NAME`.",
    )
    parser.add_argument("--version", action="version", version=f"geomcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fam = sub.add_parser("families", help="list the sequence families with their OEIS ids")
    fam.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fam.set_defaults(func=_families)

    mod = sub.add_parser("models", help="list the registered models and whether each is available here")
    mod.add_argument("--json", action="store_true", help="print JSON instead of a table")
    mod.set_defaults(func=_models)

    ds = sub.add_parser("dataset", help="print a dataset's texts (default: the paper's 24)")
    which = ds.add_mutually_exclusive_group()
    which.add_argument("--heldout", action="store_true", help="the held-out families instead of the paper's")
    which.add_argument("--families", metavar="A,B,…", help="comma-separated family names")
    ds.add_argument("--per-family", type=int, default=4, help="sequences per family (default 4)")
    ds.add_argument("--length", type=int, default=50, help="terms per sequence (default 50)")
    ds.add_argument("--start", type=int, default=0, help="0-based index of the first term (default 0)")
    ds.add_argument("--max-chars", type=int, default=20_000, help="cut texts at a term boundary (default 20000)")
    ds.add_argument("--json", action="store_true", help="one JSON object per line")
    ds.set_defaults(func=_dataset)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except GeomcheckError as exc:
        print(f"geomcheck: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
