"""List the registered models and whether each is available here (``geomcheck models``)."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    mod = sub.add_parser("models", help="list the registered models and whether each is available here")
    mod.add_argument("--json", action="store_true", help="print JSON instead of a table")
    mod.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
