"""The t-sweep picture: task gain against closeness to the base, one line per merge method.

Each point is one interpolation base → lora at t (``geomcheck.checks.merging.sweep_rows``):
x = linear CKA to the base (1 at the base, falling as the model moves away), y = task gain
(task-set silhouette minus the base's). A method that keeps more task gain at the same CKA
sits higher: "does SLERP keep more of the gain than averaging at the same closeness to the
base?" is read off the picture. Drawn on an Agg canvas, never through ``pyplot``.
(A module of its own: ``plots.py`` is at the package's size limit.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from geomcheck.errors import GeomcheckError, InvalidInputError

__all__ = ["sweep_figure", "sweep_plot"]

_DPI = 150
_LINES = ("-", "--", ":", "-.")
_STYLES = (("#1f77b4", "o"), ("#d62728", "s"), ("#2ca02c", "^"), ("#9467bd", "D"), ("#ff7f0e", "v"), ("#8c564b", "P"))


def sweep_figure(rows: Sequence[Mapping[str, Any]], *, model: str = "", title: str | None = None) -> Any:
    """A matplotlib ``Figure``: one line per ``method`` of ``rows`` (x ``cka_to_base``, y ``task_gain``),
    each point labelled with its ``t``, in the order of t."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not rows:
        raise InvalidInputError("sweep_figure: no rows to draw (sweep at least one method at one t)")
    missing = [k for k in ("method", "t", "cka_to_base", "task_gain") if k not in rows[0]]
    if missing:
        raise InvalidInputError(f"sweep_figure: the rows lack {', '.join(missing)} (give geomcheck.checks.merging."
                                f"sweep_rows' rows)")
    fig = Figure(figsize=(7.5, 5.5), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    spans = tuple(max(1e-12, max(r[k] for r in rows) - min(r[k] for r in rows)) for k in ("cka_to_base", "task_gain"))
    labelled: list[Mapping[str, Any]] = []
    for i, m in enumerate(methods):
        pts = sorted((r for r in rows if r["method"] == m), key=lambda r: r["t"])
        colour, marker = _STYLES[i % len(_STYLES)]
        xs, ys = [r["cka_to_base"] for r in pts], [r["task_gain"] for r in pts]
        # dashes and hollow markers after the first: methods that coincide (SLERP ≈ LERP) stay visible
        ax.plot(xs, ys, color=colour, marker=marker, linestyle=_LINES[i % len(_LINES)], linewidth=1.6,
                markersize=9 - 2 * (i % 3), markerfacecolor=colour if i == 0 else "none", markeredgewidth=1.4,
                label=m, alpha=0.9)
        for r in pts:
            if _near_labelled(r, labelled, spans):  # methods that coincide: one label per place and t
                continue
            labelled.append(r)
            ax.annotate(f"t={r['t']:g}", (r["cka_to_base"], r["task_gain"]), textcoords="offset points",
                        xytext=(6, 6 if i % 2 == 0 else -12), fontsize=7.5, color=colour)
    ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle=":")
    ax.margins(x=0.08, y=0.08)
    ax.invert_xaxis()  # left: the base (CKA 1); right: further from it
    ax.set_xlabel("linear CKA to the base (paper set)  →  further from the base")
    ax.set_ylabel("task gain (task-set silhouette − base's)")
    ax.set_title(title or f"t-sweep base → LoRA{f' of {model}' if model else ''}: task gain vs closeness to base",
                 fontsize=10)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(title="method", fontsize=8, title_fontsize=8, loc="best")
    return fig


def _near_labelled(r: Mapping[str, Any], labelled: Sequence[Mapping[str, Any]], spans: tuple[float, float]) -> bool:
    """Whether a point of the same t within 3% of the axes' spans already carries a label."""
    return any(o["t"] == r["t"] and abs(o["cka_to_base"] - r["cka_to_base"]) < 0.03 * spans[0]
               and abs(o["task_gain"] - r["task_gain"]) < 0.03 * spans[1] for o in labelled)


def sweep_plot(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, model: str = "",
               title: str | None = None) -> Path:
    """``sweep_figure`` written as a PNG at ``path`` (parent directories created); returns the path."""
    out = Path(path).expanduser()
    if out.suffix.lower() != ".png":
        raise InvalidInputError(f"the sweep plot is written as PNG; give a path ending in .png, got {str(path)!r}")
    fig = sweep_figure(rows, model=model, title=title)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    except OSError as exc:
        raise GeomcheckError(f"cannot write the sweep plot to {out}: {exc}") from None
    return out
