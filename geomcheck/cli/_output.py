"""How the listing subcommands print: a rich table for people, or JSON with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["print_rows"]


def print_rows(rows: Sequence[dict[str, Any]], *, as_json: bool, title: str, columns: Sequence[str],
               cells: Callable[[dict[str, Any]], Sequence[str]], whole: Sequence[str] = ()) -> int:
    """``rows`` as indented JSON (``as_json``), else a table of ``columns`` filled by ``cells(row)``; returns 0.

    Columns named in ``whole`` are never cut or wrapped (what users copy: names, aliases); the
    others wrap when the terminal is narrow.
    """
    if as_json:
        print(json.dumps(list(rows), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    from rich.text import Text

    for i, col in enumerate(columns):
        width = max([len(col)] + [Text.from_markup(str(cells(r)[i])).cell_len for r in rows]) if col in whole else None
        table.add_column(col, no_wrap=col in whole, min_width=width, overflow="fold")
    for r in rows:
        table.add_row(*cells(r))
    Console().print(table)
    return 0

