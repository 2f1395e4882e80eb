"""List the sequence families with their OEIS ids (``geomcheck families``)."""

from __future__ import annotations

import argparse

from geomcheck.cli._output import print_rows

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
    return print_rows(rows, as_json=args.json, title=f"{len(rows)} sequence families (0-based terms)",
                      columns=("name", "OEIS", "set", "first terms"),
                      cells=lambda r: (r["name"], r["oeis"], "paper" if r["paper"] else "held-out",
                                       ", ".join(map(str, r["first_terms"])) + ", …"),
                      whole=("name", "OEIS"))
