"""How the listing subcommands print: a rich table for people, or JSON with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["print_rows"]


def print_rows(rows: Sequence[dict[str, Any]], *, as_json: bool, title: str, columns: Sequence[str],
               cells: Callable[[dict[str, Any]], Sequence[str]]) -> int:
    """``rows`` as indented JSON (``as_json``), else a table of ``columns`` filled by ``cells(row)``; returns 0."""
    if as_json:
        print(json.dumps(list(rows), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(*cells(r))
    Console().print(table)
    return 0
