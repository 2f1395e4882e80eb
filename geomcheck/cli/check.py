"""``geomcheck check [options] [pytest args…]``: run the installed shipped suites, as ``pytest --pyargs geomcheck.suites …``.

``geomcheck check`` owns its command line: the suites' short forms (``--model``, ``--device``,
``--dataset``, …) and the ``--geomcheck-*`` options are always geomcheck's, whatever a
project's ``conftest.py`` defines, because they are handed to pytest namespaced and joined to
their value (``--model ./ckpt`` → ``--geomcheck-model=./ckpt``). Joined, a path is never taken
for a test path when pytest picks its rootdir and conftests, and a project's own ``--model``
never receives the model to test. Every other argument (``-n 4``, ``-m "not geomcheck_slow"``,
``--junitxml``) goes to pytest as given; after ``--`` everything does. The exit status is
pytest's. Baselines: the project's own under ``./geomcheck-baselines/<model>.json`` (ini
``geomcheck_baselines``) or ``--geomcheck-baseline``, else the ones shipped with geomcheck.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from geomcheck import SUITES_PACKAGE
from geomcheck.errors import InvalidInputError

if TYPE_CHECKING:
    from pytest_geomcheck.options import Option

__all__ = ["add_parser", "run_check", "translate_args", "help_text"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    # Everything after `check` is read by translate_args (main() hands it over before argparse sees it).
    sub.add_parser("check", add_help=False,
                   help="run the shipped geometry suites on a model: geomcheck check --model NAME [pytest args…] "
                        "(pytest --pyargs geomcheck.suites; exits with pytest's status)")


def _options() -> dict[str, Option]:
    """Every spelling geomcheck check owns (short and ``--geomcheck-*``) → its ``Option``."""
    from pytest_geomcheck.options import OPTIONS

    out: dict[str, Option] = {}
    for opt in OPTIONS:
        for name in (opt.flag, opt.short):
            if name is not None:
                out[name] = opt
    return out


def translate_args(args: Sequence[str]) -> list[str]:
    """``args`` with geomcheck's options namespaced and joined to their values (``--model X`` →
    ``--geomcheck-model=X``); pytest's own arguments as given. Raises ``InvalidInputError`` for an
    option of geomcheck's without its value."""
    options = _options()
    out: list[str] = []
    i = 0
    args = list(args)
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            out.extend(args[i:])
            break
        name, eq, value = arg.partition("=")
        opt = options.get(name)
        if opt is None:
            out.append(arg)
            continue
        if opt.switch:
            if eq:
                raise InvalidInputError(f"{name} takes no value, got {arg!r}")
            out.append(opt.flag)
            continue
        if not eq:
            if i >= len(args) or (args[i].startswith("--") and args[i] != "--"):
                raise InvalidInputError(f"{name} needs a value: {name} {opt.metavar or 'VALUE'}")
            value = args[i]
            i += 1
        out.append(f"{opt.flag}={value}")
    return out


def help_text() -> str:
    """geomcheck check's own help: its options first, then how pytest's options fit."""
    from pytest_geomcheck.options import OPTIONS

    rows = []
    for opt in OPTIONS:
        if opt.flag is None:
            continue
        names = f"{opt.short}, {opt.flag}" if opt.short else opt.flag
        if not opt.switch:
            names += f" {opt.metavar or 'VALUE'}"
        rows.append((names, opt.help))
    width = min(44, max(len(n) for n, _ in rows) + 2)
    lines = ["usage: geomcheck check [--model NAME …] [geomcheck options] [pytest args…] [-- pytest args…]", "",
             "Run geomcheck's shipped geometry suites (pytest --pyargs geomcheck.suites) on the model(s) named;",
             "the exit status is pytest's. The options below are always geomcheck's, also where your project's",
             "conftest.py defines an option of the same name; every other argument goes to pytest as given",
             "(-n 4, -m 'not geomcheck_slow', -k baseline, --junitxml FILE), and after -- everything does.", "",
             "geomcheck options:"]
    columns = max(60, min(120, shutil.get_terminal_size((100, 24)).columns))
    for names, text in rows:
        body = textwrap.wrap(text, columns - width - 2) or [""]
        if len(names) + 2 > width:
            lines.append(f"  {names}")
        else:
            lines.append(f"  {names.ljust(width)}{body.pop(0)}")
        lines += [" " * (width + 2) + more for more in body]
    lines += ["", "Examples:",
              "  geomcheck check --model minilm -m 'not geomcheck_slow'     # clustering and properties, no LoRA",
              "  geomcheck check --model ./ckpt --base-model minilm --report out/",
              "", "pytest's own options: pytest --help"]
    return "\n".join(lines) + "\n"


def run_check(args: Sequence[str]) -> int:
    """pytest's exit status for ``pytest --pyargs geomcheck.suites`` with ``args`` translated."""
    if any(a in ("-h", "--help") for a in args[: list(args).index("--") if "--" in args else len(args)]):
        sys.stdout.write(help_text())
        return 0
    try:
        translated = translate_args(args)
    except InvalidInputError as exc:
        print(f"geomcheck check: error: {exc}", file=sys.stderr)
        return 4  # pytest's usage-error status: what the same mistake gives through pytest
    import pytest

    return int(pytest.main(["--pyargs", SUITES_PACKAGE, *translated]))
