"""List the registered models and whether each is available here (``geomcheck models``)."""

from __future__ import annotations

import argparse

from geomcheck.cli._output import print_rows

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
         "params": s.params, "document_prompt": s.prompt, "available": availability(s)}
        for s in REGISTRY.values()
    ]
    style = {"packaged": "green", "hf-cache": "green", "not available": "dim"}
    return print_rows(rows, as_json=args.json, title=f"{len(rows)} registered models (`geomcheck check --model ALIAS`)",
                      columns=("alias", "kind", "pooling", "dim", "params", "available here", "Hugging Face id"),
                      cells=lambda r: (r["alias"], r["kind"], r["pooling"], str(r["dim"]), r["params"],
                                       f"[{style[r['available']]}]{r['available']}[/]", r["hf_id"]),
                      whole=("alias", "kind", "pooling", "dim", "params", "available here"))
