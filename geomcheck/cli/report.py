"""``geomcheck report combine DIR_OR_JSON… --out DIR``: the run records of separate runs as one report and one gate.

One CI job (or machine) per model writes its report directory (``--report DIR``); a last job
downloads them all and combines them: one Table 2 per dataset on stdout, one report directory
(report.json, report.md with every run's PNGs, junit.xml with every test and recorded value), and
the exit status of the gate over all of them: 0 when every test of every run passed, 1 when one
failed (or a run ended badly), 2 when the records cannot be combined (different geomcheck versions,
protocol settings or data; the message says which and where).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser", "run_combine"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("report", help="work with run records (report.json): combine the runs of several "
                                        "CI jobs into one report and one gate",
                         description="Work with the run records that --report DIR writes.")
    rsub = rep.add_subparsers(dest="report_command", metavar="ACTION")
    comb = rsub.add_parser(
        "combine", help="merge the run records of separate runs into one Table 2, report and JUnit file; exit 1 "
                        "when a check of any run failed",
        description="Merge the run records of separate runs (one per CI job or machine: report directories "
                    "written with --report DIR, or their report.json) into one report directory: report.json, "
                    "report.md with every run's PNGs, junit.xml with every test and every recorded value. Prints "
                    "one Table 2 per dataset. Exit status: 0 every test of every run passed, 1 one failed or a "
                    "run ended badly, 2 the records cannot be combined (different geomcheck versions, protocol "
                    "settings such as dtype, seeds or metric, or different data under one dataset name).")
    comb.add_argument("sources", nargs="+", metavar="DIR_OR_JSON", help="report directories or report.json files")
    comb.add_argument("--out", required=True, metavar="DIR", help="the combined report directory (created)")
    comb.add_argument("--junit-xml", metavar="PATH", help="also write the combined JUnit XML here "
                                                          "(it is always written as DIR/junit.xml)")
    comb.set_defaults(func=run_combine)
    rep.set_defaults(func=lambda args: (rep.print_help(), 0)[1])


def run_combine(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from geomcheck.reporting.combine import combine, junit_xml, write_combined

    combined = combine(args.sources)
    files = write_combined(combined, args.out)
    if args.junit_xml:
        Path(args.junit_xml).write_text(junit_xml(combined), encoding="utf-8")
    console = Console(width=max(100, Console().width))
    for part in combined.record.summary_renderables():
        console.print(part)
    console.print(f"report: {len(files)} files in {args.out}")
    print(combined.verdict(), file=sys.stderr if not combined.gate else sys.stdout)
    return 0 if combined.gate else 1
