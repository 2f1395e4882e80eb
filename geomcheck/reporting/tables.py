"""Tables in the layout of the paper's Table 2: model | silhouette true | DB true |
silhouette KMeans | DB KMeans, four decimals.

A ``Row`` is either *measured* (it holds the ``GeometryReport`` geomcheck computed) or
*paper* (it holds the ``PaperResult`` the paper published for a registry model). A measured
row of a registry model on the paper's dataset also carries the published row (``paper``)
and the difference (``delta()``: measured - published); ``rich_table`` / ``to_markdown`` with
``published=True`` print both under it. The same
rows render as a rich table (terminal), Markdown (docs, PR comments) or JSON (machines;
``from_json`` reads it back).

Formatting: a value is ``f"{v:.4f}"``; with a confidence interval in ``report.intervals`` it
reads ``"-0.0922 [-0.1400, -0.0500]"``. The rich table prints a typographic minus (U+2212);
Markdown and JSON keep ASCII so that the numbers can be copied and parsed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from geomcheck._json import jsonable, nan_if_none
from geomcheck.errors import InvalidInputError
from geomcheck.metrics.geometry import GeometryReport
from geomcheck.models.spec import PaperResult

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

__all__ = ["METRICS", "EXTRA_COLUMNS", "CKA_NOTE", "row_label", "HEADERS", "SOURCES", "Row", "paper_rows", "table_notes",
           "published_result", "format_value", "rich_table", "to_markdown", "to_json", "from_json"]

METRICS: tuple[str, ...] = ("silhouette_true", "davies_bouldin_true", "silhouette_kmeans", "davies_bouldin_kmeans")
HEADERS: tuple[str, ...] = ("model", "silhouette true", "DB true", "silhouette KMeans", "DB KMeans")
SOURCES: tuple[str, ...] = ("measured", "paper")
JSON_FORMAT = "geomcheck.table/1"
_MINUS = "\u2212"

# the columns a run record adds to Table 2
EXTRA_COLUMNS = ("CKA to base", "position", "gain kept", "CKA to baseline", "status")
CKA_NOTE = ("CKA (linear, 1 = the same geometry): to base — a variant's embeddings vs the base model's; to "
            "baseline — the model's vs its committed baseline's, on the same texts. position: where a merge sits "
            "between the base (0) and the LoRA model (1), r = d(base) / (d(base) + d(LoRA)), d = 1 − CKA. gain kept: "
            "the share of the LoRA's task gain (task-set silhouette over the base's) the merge keeps. status: passed "
            "when every test of the row passed (health checks, and for a model its baseline comparison)")


def row_label(model: str, variant: str | None) -> str:
    """"model" or "model · variant": how a row is named in tables, plots and summaries."""
    return model if variant is None else f"{model} · {variant}"


@dataclass(frozen=True)
class Row:
    """One line of a Table 2-style table.

    ``model``: alias or name; ``variant``: e.g. "lora", "slerp" (None for the model as
    published); ``source``: "measured" (then ``report`` is required) or "paper" (then
    ``paper`` is required; a measured row may hold it too: the published numbers it compares with);
    ``dataset``: what it was measured on ("paper", "heldout", …);
    ``extra``: anything JSON-able to carry along (HF id, device, fingerprint …).
    """

    model: str
    variant: str | None = None
    report: GeometryReport | None = None
    paper: PaperResult | None = None
    source: str = "measured"
    dataset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise InvalidInputError(f"Row.model must be a non-empty string, got {self.model!r}")
        if self.source not in SOURCES:
            raise InvalidInputError(f"Row.source must be one of {SOURCES}, got {self.source!r}")
        if self.source == "measured" and not isinstance(self.report, GeometryReport):
            raise InvalidInputError(f"a measured Row ({self.model}) needs report=GeometryReport, got {self.report!r}")
        if self.source == "paper" and not isinstance(self.paper, PaperResult):
            raise InvalidInputError(f"a paper Row ({self.model}) needs paper=PaperResult, got {self.paper!r}")
        if not isinstance(self.extra, dict):
            raise InvalidInputError(f"Row.extra must be a dict, got {type(self.extra).__name__}")

    __hash__ = None  # type: ignore[assignment]

    # --- constructors ------------------------------------------------------------------
    @classmethod
    def measured(cls, model: str, report: GeometryReport, *, variant: str | None = None,
                 dataset: str | None = None, paper: PaperResult | None = None, **extra: Any) -> Row:
        """A row for numbers geomcheck computed; ``paper``: the published row it compares with (see
        ``published_result``)."""
        return cls(model, variant, report=report, paper=paper, source="measured", dataset=dataset, extra=dict(extra))

    @classmethod
    def from_paper(cls, alias: str) -> Row:
        """The paper's published Table 2 row for registry model ``alias``."""
        from geomcheck.errors import UnknownModelError, unknown_name_message
        from geomcheck.models.registry import REGISTRY

        spec = REGISTRY.get(alias)
        if spec is None:
            raise UnknownModelError(unknown_name_message("model", alias, REGISTRY))
        if spec.paper is None:
            with_paper = [a for a, s in REGISTRY.items() if s.paper is not None]
            raise InvalidInputError(f"the paper did not measure {alias!r}; it has results for: {', '.join(with_paper)}")
        return cls(alias, None, paper=spec.paper, source="paper", dataset="paper", extra={"hf_id": spec.hf_id})

    # --- reading -----------------------------------------------------------------------
    @property
    def label(self) -> str:
        """What the model column shows: ``"minilm"``, ``"minilm · slerp"``, ``"qwen3-0.6b (paper)"``."""
        text = self.model if self.variant is None else f"{self.model} · {self.variant}"
        return text + (" (paper)" if self.source == "paper" else "")

    def values(self) -> dict[str, float]:
        """The four Table 2 numbers, from the report (measured) or the paper (paper)."""
        src = self.report if self.source == "measured" else self.paper
        return {m: float(getattr(src, m)) for m in METRICS}

    def published(self) -> dict[str, float] | None:
        """The four numbers the paper published for this row's model, or None."""
        return {m: float(getattr(self.paper, m)) for m in METRICS} if self.paper is not None else None

    def delta(self) -> dict[str, float] | None:
        """Measured minus published, per Table 2 number (a measured row that carries ``paper``), else None."""
        if self.source != "measured" or self.paper is None:
            return None
        pub, now = self.published(), self.values()
        return {m: now[m] - pub[m] for m in METRICS}

    def interval(self, metric: str) -> tuple[float, float] | None:
        """The confidence interval of ``metric`` when the report holds one."""
        if self.source != "measured" or self.report is None:
            return None
        iv = self.report.intervals.get(metric)
        return (float(iv[0]), float(iv[1])) if iv is not None else None

    @property
    def sampled(self) -> bool:
        """Whether the row's silhouettes are estimates from a sample of the texts (``GeometryReport.silhouette_sample``)."""
        return self.report is not None and self.report.sampled

    def cells(self, *, minus: str = "-", approx: str = "~") -> list[str]:
        """The row as five strings in ``HEADERS`` order; a sampled silhouette reads ``~0.1234 [lo, hi]``."""
        vals = self.values()
        out = [self.label]
        for m in METRICS:
            text = format_value(vals[m], self.interval(m), minus=minus)
            out.append(approx + text if self.sampled and m.startswith("silhouette") else text)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: the four numbers flat, ``n`` and ``labels`` (measured rows), their intervals, the
        full report, the published row (``paper``) and, for a measured row that has one, ``delta``
        (measured - published)."""
        d: dict[str, Any] = {"model": self.model, "variant": self.variant, "source": self.source,
                             "dataset": self.dataset}
        d.update(self.values())
        if self.report is not None:  # how many texts, which labels (the report below has the rest)
            d["n"] = int(self.report.n)
            d["labels"] = list(self.report.per_family_silhouette)
            d["metric"] = self.report.metric
            d["silhouette_sample"] = int(self.report.silhouette_sample)
        d["intervals"] = {m: list(iv) for m in METRICS if (iv := self.interval(m)) is not None}
        d["report"] = self.report.to_dict() if self.report is not None else None
        d["paper"] = self.published()
        d["delta"] = self.delta()
        d["extra"] = self.extra
        return jsonable(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Row:
        """Inverse of ``to_dict`` (the flat numbers and ``delta`` are derived, so they are not read back)."""
        try:
            report = d.get("report")
            if report is not None:
                report = GeometryReport.from_dict(report)
            paper = d.get("paper")
            if paper is not None:
                paper = PaperResult(**{m: nan_if_none(paper[m]) for m in METRICS})
            return cls(d["model"], d.get("variant"), report=report, paper=paper, source=d.get("source", "measured"),
                       dataset=d.get("dataset"), extra=dict(d.get("extra") or {}))
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidInputError(f"not a geomcheck table row: {exc!r} in {dict(d)!r:.200}") from None


def paper_rows(aliases: Iterable[str] | None = None) -> list[Row]:
    """The paper's Table 2 rows, in the paper's order (all registry models with a paper result,
    or those of ``aliases``)."""
    from geomcheck.models.registry import REGISTRY

    if aliases is None:
        return [Row.from_paper(a) for a, s in REGISTRY.items() if s.paper is not None]
    return [Row.from_paper(a) for a in aliases]


def published_result(spec: Any, dataset: str | None) -> PaperResult | None:
    """The paper's Table 2 row a measurement compares with: ``spec.paper`` (a registry ``ModelSpec``) when
    ``dataset`` is the paper's own ("paper": 6 families x 4 sequences of 50 terms), else None."""
    if spec is None or dataset != "paper":
        return None
    return getattr(spec, "paper", None)


def _published_cells(row: Row, minus: str) -> list[list[str]]:
    """The lines under a measured row that carries the paper's: the published numbers and measured - published."""
    delta = row.delta()
    if delta is None:
        return []
    pub = row.published()
    return [["  published (paper)"] + [format_value(pub[m], minus=minus) for m in METRICS],
            [f"  \u0394 measured {minus} published"]
            + [("+" if delta[m] >= 0 else "") + format_value(delta[m], minus=minus) for m in METRICS]]


def format_value(value: float | None, interval: Sequence[float] | None = None, *, minus: str = "-") -> str:
    """``"-0.0922"``, or ``"-0.0922 [-0.1400, -0.0500]"`` with an interval; NaN is ``"nan"``."""
    def one(v: float | None) -> str:
        if v is None or math.isnan(v):
            return "nan"
        return f"{v:.4f}".replace("-", minus)

    text = one(value)
    if interval is not None:
        text += f" [{one(interval[0])}, {one(interval[1])}]"
    return text


def table_notes(rows: Iterable[Row], *, approx: str = "~") -> list[str]:
    """What a reader must know to read the rows: a silhouette distance other than the paper's Euclidean
    one, and which rows' silhouettes are estimates from a sample (never silent)."""
    out = []
    metrics = sorted({r.report.metric for r in rows if r.report is not None and r.report.metric != "euclidean"})
    if metrics:
        out.append(f"silhouette with the {' / '.join(metrics)} distance (the paper's is euclidean)")
    for r in rows:
        note = r.report.sample_note() if r.report is not None else None
        if note:
            out.append(f"{approx} {r.label}: {note}")
    return out


def _check_rows(rows: Iterable[Row]) -> list[Row]:
    rows = list(rows)
    bad = next((r for r in rows if not isinstance(r, Row)), None)
    if bad is not None:
        raise InvalidInputError(f"expected geomcheck.reporting.tables.Row objects, got {type(bad).__name__}")
    return rows


def _extra_cell(row: Row, column: str, minus: str) -> str:
    v = row.extra.get(column)
    if v is None:
        return ""
    return format_value(float(v), minus=minus) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def rich_table(rows: Iterable[Row], *, title: str | None = None, caption: str | None = None,
               extra_columns: Sequence[str] = (), published: bool = False) -> Table:
    """A ``rich.table.Table`` in Table 2 layout; paper rows are italic, dimmed and in their
    own section, marked "(paper)". ``extra_columns``: more columns, read from ``row.extra``.
    ``published``: under each measured row that carries the paper's row, the published numbers and
    the difference (measured - published)."""
    from rich.table import Table

    rows = _check_rows(rows)
    notes = table_notes(rows, approx="\u2248")
    caption = "; ".join([caption] * bool(caption) + notes) or None
    table = Table(title=title if title is not None else "Cluster geometry (paper Table 2 layout)",
                  caption=caption)
    table.add_column(HEADERS[0], no_wrap=True)
    for h in HEADERS[1:]:
        # "silhouette\nKMeans": two short header lines keep the table within 80 columns.
        table.add_column(h.replace(" ", "\n"), justify="right")
    for h in extra_columns:
        table.add_column(h.replace(" ", "\n"), justify="right")
    previous = None
    for r in rows:
        if previous is not None and r.source != previous:
            table.add_section()
        cells = [c.replace(" [", "\n[") for c in r.cells(minus=_MINUS, approx="\u2248")[1:]]  # interval under its value
        extra = [_extra_cell(r, c, _MINUS) for c in extra_columns]
        table.add_row(r.label, *cells, *extra, style="italic dim" if r.source == "paper" else None)
        for line in _published_cells(r, _MINUS) if published else ():
            table.add_row(*line, *([""] * len(extra_columns)), style="italic dim")
        previous = r.source
    return table


def to_markdown(rows: Iterable[Row], *, extra_columns: Sequence[str] = (), published: bool = False) -> str:
    """A GitHub Markdown table in Table 2 layout (ASCII minus), one line per row;
    ``extra_columns`` and ``published`` as in ``rich_table``."""
    rows = _check_rows(rows)
    heads = (*HEADERS, *extra_columns)
    lines = ["| " + " | ".join(heads) + " |", "| --- |" + " ---: |" * (len(heads) - 1)]
    for r in rows:
        cells = r.cells() + [_extra_cell(r, c, "-") for c in extra_columns]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        for line in _published_cells(r, "-") if published else ():
            lines.append("| " + " | ".join(line + [""] * len(extra_columns)) + " |")
    notes = table_notes(rows)  # below the table, one paragraph each: a sampled row is never silent
    return "\n".join(lines) + "\n" + "".join(f"\n{n}\n" for n in notes)


def to_json(rows: Iterable[Row], *, skipped: Mapping[str, str] | None = None, indent: int | None = 2) -> str:
    """``{"format": "geomcheck.table/1", "rows": [Row.to_dict(), …], "skipped": {model: why}}``.

    Non-finite numbers become ``null`` so that any JSON parser reads the result.
    """
    rows = _check_rows(rows)
    doc = {"format": JSON_FORMAT, "rows": [r.to_dict() for r in rows], "skipped": dict(skipped or {})}
    return json.dumps(doc, indent=indent, allow_nan=False)


def from_json(text: str) -> list[Row]:
    """The rows of a ``to_json`` document."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise InvalidInputError(f"not a geomcheck table (expected format {JSON_FORMAT!r})")
    return [Row.from_dict(d) for d in doc["rows"]]
