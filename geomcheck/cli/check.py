"""``geomcheck check [pytest args…]``: run the installed shipped suites, as ``pytest --pyargs geomcheck.suites …``.

The suites' short options work here (``--model``, ``--base-model``, ``--merge``, ``--device``,
``--report``, …), and so does any pytest option (``-n 4``, ``-m "not geomcheck_slow"``,
``--junitxml``). The exit status is pytest's. Baselines: the project's own under
``./geomcheck-baselines/<model>.json`` (ini ``geomcheck_baselines``) or ``--geomcheck-baseline``,
else the ones shipped with geomcheck.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from geomcheck import SUITES_PACKAGE

__all__ = ["add_parser", "run_check"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    # Everything after `check` goes to pytest unparsed (main() hands it over before argparse sees it).
    sub.add_parser("check", add_help=False,
                   help="run the shipped geometry suites on a model: geomcheck check --model NAME [pytest args…] "
                        "(pytest --pyargs geomcheck.suites; exits with pytest's status)")


def run_check(args: Sequence[str]) -> int:
    """pytest's exit status for ``pytest --pyargs geomcheck.suites *args``."""
    import pytest

    return int(pytest.main(["--pyargs", SUITES_PACKAGE, *args]))
