"""List the sequence families with their OEIS ids (``geomcheck families``)."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    fam = sub.add_parser("families", help="list the sequence families with their OEIS ids")
    fam.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fam.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from geomcheck.data import FAMILIES

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
