"""report.md: a run's record as a page a reviewer reads — what ran, what failed, the numbers, the pictures.

Sections: the run (date, library versions, device), the models (source, device, dtype,
fingerprint), one Table 2 per dataset with what each column means and which way is better,
the failed tests with their verdicts, the baseline checks, the paper's claims, every
recorded value as a table, and links to the PNGs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["render", "METRIC_DIRECTIONS"]

METRIC_DIRECTIONS = (
    "silhouette (true labels, KMeans labels): −1 … 1, higher is better (texts sit nearer their own family)",
    "Davies–Bouldin (DB): ≥ 0, lower is better (families tight relative to their separation)",
)


def _cell(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else ("yes" if v else "no")
    if isinstance(v, float):
        return f"{v:.4g}".replace("-", "−")
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out + [""]


def render(record: Any, files: Sequence[Path] = ()) -> str:
    """The Markdown of ``record`` (a ``RunRecord``); ``files``: the PNGs written beside it, linked by name."""
    from geomcheck.reporting.tables import CKA_NOTE, EXTRA_COLUMNS, row_label, to_markdown

    st = record.state
    settings = st.get("settings") or {}
    parts = ["# geomcheck report", ""]
    versions = settings.get("versions") or {}
    run = [("date", settings.get("date", "")), ("models", ", ".join(settings.get("models") or st["models"])),
           ("merges", ", ".join(settings.get("merges") or [])), ("device / dtype asked", f"{settings.get('device', '')} / "
                                                                                          f"{settings.get('dtype', '')}")]
    run += [(name, v) for name, v in versions.items() if v]
    parts += ["## Run", ""] + _table(("", ""), run)
    if st["models"]:
        parts += ["## Models", ""] + _table(
            ("model", "source", "device", "dtype", "dim", "fingerprint"),
            [(m, i.get("source", ""), i.get("device", ""), i.get("dtype", ""), i.get("dim", ""),
              i.get("fingerprint", "")) for m, i in st["models"].items()])
    for ds in record.datasets():
        rows = record.rows(ds)
        cols = [c for c in EXTRA_COLUMNS if any(c in r.extra for r in rows)]
        parts += [f"## Cluster geometry on the {ds} dataset", "", to_markdown(rows, extra_columns=cols, published=True)]
        size = record.size_line(ds)
        parts += ([f"- {size}."] if size else []) + [f"- {line}." for line in METRIC_DIRECTIONS] + [f"- {CKA_NOTE}.", ""]
    failures = st.get("failures") or []
    parts += ["## Failed tests", ""]
    parts += (_table(("test", "model", "first line of the failure"),
                     [(f["nodeid"], row_label(f["model"], f["variant"]) if f.get("model") else "", f["message"])
                      for f in failures]) if failures else ["None.", ""])
    for b in st["baseline"]:
        comp = b["comparison"]
        parts += [f"## Baseline: {b['model']} on {b['dataset']} ({'passed' if comp.get('passed') else 'FAILED'})", ""]
        parts += _table(("check", "baseline", "now", "rule", "tolerance", "passed"),
                        [(c["metric"], c["baseline"], c["value"], c["rule"], c["tolerance"], c["passed"])
                         for c in comp.get("checks", [])])
    if st["claims"]:
        parts += ["## The paper's merge claims", ""] + _table(
            ("model", "claim", "holds", "measured", "gated"),
            [(c["model"], c["text"], c["holds"], "; ".join(f"{k} {_cell(v)}" for k, v in c["measured"].items()),
              c["gated"]) for c in st["claims"]])
    values = [r for r in st["values"] if not isinstance(r["value"], (dict, list))]
    if values:
        parts += ["## Recorded values", ""] + _table(
            ("model", "name", "value"), [(row_label(r["model"], r["variant"]), r["name"], r["value"]) for r in values])
    if files:
        parts += ["## Pictures", ""] + [f"- [{Path(f).name}]({Path(f).name})" for f in files] + [""]
        grids = [f for f in files if Path(f).name.startswith("grid-")]
        parts += [f"![{Path(g).stem}]({Path(g).name})" for g in grids] + ([""] if grids else [])
    return "\n".join(parts)
