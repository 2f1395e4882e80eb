"""The ``geomcheck`` console script: one module per subcommand, each with ``add_parser(sub)`` and ``run(args)``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from geomcheck import __version__
from geomcheck.cli import baseline, check, dataset, families, merge, merges, models, report, sweep, table
from geomcheck.errors import GeomcheckError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geomcheck",
        description="Test the geometry of text-embedding models: do sequence families separate, "
        "does a LoRA fine-tune or a merge keep its base model's geometry? "
        "The shipped suites run with `geomcheck check --model NAME` (pytest --pyargs geomcheck.suites).",
    )
    parser.add_argument("--version", action="version", version=f"geomcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for module in (check, families, models, dataset, table, baseline, merge, merges, sweep, report):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["check"]:  # the rest is pytest's: argparse would reject its options
        return check.run_check(argv[1:])
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
    except BrokenPipeError:  # `geomcheck models --json | head -1`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
