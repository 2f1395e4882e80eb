"""t-SNE and PCA pictures of an embedding space, coloured by sequence family.

The projection follows the paper (PAPER.md, protocol step 3): t-SNE to 2-D with perplexity
30, or 10 when there are fewer than 50 samples, 1000 iterations, PCA initialisation. The
pictures are for looking only; every number in a title comes from the embeddings themselves
(``geomcheck.metrics.cluster_report``), never from the 2-D projection.

Figures are drawn with ``matplotlib.figure.Figure`` on an Agg canvas, never through
``pyplot``: a user's interactive backend and open figures are left alone.

Three layers, each usable on its own:

* ``project_tsne`` / ``project_pca`` → ``Projection`` (coordinates + the fitted estimator;
  in ``geomcheck.reporting.projection``, re-exported here);
* ``tsne_figure`` / ``pca_figure`` / ``grid_figure`` → ``Plot`` (the ``Figure``, its
  projections and legend entries, ``.save(path)``);
* ``tsne_plot`` / ``pca_plot`` / ``grid_plot`` → write a PNG and return its path.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from geomcheck.errors import GeomcheckError, InvalidInputError
from geomcheck.reporting._style import _legend_handles, family_styles, metrics_line
from geomcheck.reporting.projection import (
    METHODS,
    MAX_POINTS,
    Projection,
    joint_projections,
    project,
    project_pca,
    project_tsne,
    thin,
    tsne_perplexity,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from geomcheck.metrics.geometry import GeometryReport
    from geomcheck.models.embedder import EmbeddedDataset

    EmbLike = Union[EmbeddedDataset, tuple]

log = logging.getLogger("geomcheck")

__all__ = [
    "tsne_file_name",
    "Projection",
    "Plot",
    "family_styles",
    "tsne_perplexity",
    "project_tsne",
    "project_pca",
    "tsne_figure",
    "pca_figure",
    "grid_figure",
    "tsne_plot",
    "pca_plot",
    "grid_plot",
]

_DPI = 150
_PNG_META = {"Software": None}  # no version string: the same inputs give byte-identical files


def tsne_file_name(dataset: str, label: str) -> str:
    """``tsne-<dataset>-<model[-variant]>.png``, the one name the CLI and the report directory use."""
    import re

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.") or "model"
    return f"tsne-{dataset}-{slug}.png"


@dataclass(eq=False)
class Plot:
    """A drawn figure: ``figure`` (a matplotlib ``Figure`` on an Agg canvas), one
    ``Projection`` per panel, the panel names, the legend's family names and the title."""

    figure: Figure
    projections: list[Projection]
    panels: list[str]
    legend_labels: list[str]
    title: str
    reports: list[Any] = field(default_factory=list)

    def save(self, path: str | os.PathLike, *, dpi: int = _DPI) -> Path:
        """Write the figure as PNG (parent directories are created) and return the path."""
        out = _png_path(path)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.figure.savefig(out, format="png", dpi=dpi, bbox_inches="tight", metadata=_PNG_META)
        except OSError as exc:
            raise GeomcheckError(f"cannot write the plot to {out}: {exc}") from None
        return out


def _png_path(path: str | os.PathLike) -> Path:
    out = Path(path).expanduser()
    if out.suffix.lower() != ".png":
        raise InvalidInputError(f"plots are written as PNG; give a path ending in .png, got {str(path)!r}")
    return out


# --- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Points:
    X: np.ndarray
    labels: np.ndarray  # ints in [0, len(names))
    names: tuple[str, ...]
    model: str | None
    source: Any  # what to hand to cluster_report


def _points(emb: Any, *, label_names: Sequence[str] | None = None, model: str | None = None,
            what: str = "plot") -> _Points:
    """Accept an ``EmbeddedDataset``, ``(X, labels)`` or ``(X, labels, label_names)``."""
    from geomcheck.models.embedder import EmbeddedDataset

    if isinstance(emb, EmbeddedDataset):
        X, labels, names = emb.X, emb.labels, label_names if label_names is not None else emb.label_names
        model = model if model is not None else emb.model
    elif isinstance(emb, (tuple, list)) and len(emb) in (2, 3):
        X, labels = emb[0], emb[1]
        names = emb[2] if len(emb) == 3 else label_names
    else:
        raise InvalidInputError(
            f"{what} takes an EmbeddedDataset or a tuple (X, labels[, label_names]); got {type(emb).__name__}"
        )
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what}: X must be a numeric array of shape (N, dim)") from None
    if X.ndim != 2:
        raise InvalidInputError(f"{what}: X must have shape (N, dim), got shape {X.shape}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(X):
        raise InvalidInputError(f"{what}: labels must be 1-D with one entry per row of X "
                                f"({len(X)} rows), got shape {labels.shape}")
    if not np.isfinite(X).all():
        bad = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise InvalidInputError(f"{what}: X holds NaN/inf (first in row {bad}); check the embeddings")
    if labels.dtype.kind in "iu":
        labels = labels.astype(np.int64)
        if len(labels) and labels.min() < 0:
            raise InvalidInputError(f"{what}: integer labels must be >= 0, got {int(labels.min())}")
        k = int(labels.max()) + 1 if len(labels) else 0
        if names is None:
            names = [str(i) for i in range(k)]
        names = tuple(str(n) for n in names)
        if len(names) < k:
            raise InvalidInputError(f"{what}: label {k - 1} has no name; label_names has only {len(names)} "
                                    f"entries: {list(names)}")
    else:
        # String labels name themselves, in order of first appearance.
        raw = [str(v) for v in labels.tolist()]
        if names is None:
            names = tuple(dict.fromkeys(raw))
        names = tuple(str(n) for n in names)
        index = {n: i for i, n in enumerate(names)}
        missing = sorted(set(raw) - set(index))
        if missing:
            raise InvalidInputError(f"{what}: labels {missing} are not in label_names {list(names)}")
        labels = np.array([index[r] for r in raw], dtype=np.int64)
    source = emb if isinstance(emb, EmbeddedDataset) else None
    return _Points(X, labels, names, model, source)


def _shown(p: _Points, seed: int, population: int | None, most: int | None = None) -> tuple[_Points, str | None]:
    """The points a picture draws (a stratified sample of at most ``MAX_POINTS``) and the note that says so;
    ``population``: the size of the set ``p`` already is a sample of (a run record keeps a sample)."""
    from dataclasses import replace

    total = max(len(p.X), population or 0)
    idx = thin(p.labels, most or MAX_POINTS, seed)
    if idx is not None:
        p = replace(p, X=p.X[idx], labels=p.labels[idx])
    if len(p.X) == total:
        return p, None
    return p, f"a stratified sample of {len(p.X):,} of {total:,} texts"


# --- projections ---------------------------------------------------------------------------


# --- drawing -------------------------------------------------------------------------------


def _report_for(p: _Points, report: Any) -> Any:
    """The title's Table 2 numbers: ``report``, or the paper's protocol (KMeans seed 42, whatever seed the
    projection took: the title's numbers are the same ones ``geomcheck table`` prints)."""
    if report is not None:
        return report
    try:
        from geomcheck.metrics import cluster_report
    except ImportError as exc:  # pragma: no cover - only while geomcheck.metrics is missing
        raise GeomcheckError(f"plot titles need geomcheck.metrics.cluster_report ({exc}); pass report=") from None
    if p.source is not None:
        return cluster_report(p.source)
    return cluster_report(p.X, p.labels, label_names=list(p.names))


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _scatter(ax: Axes, proj: Projection, p: _Points, styles: Mapping[str, tuple], *, size: float) -> None:
    for j, name in enumerate(p.names):
        mask = p.labels == j
        if not mask.any():
            continue
        colour, marker = styles[name]
        ax.scatter(proj.coords[mask, 0], proj.coords[mask, 1], s=size, color=colour, marker=marker,
                   label=name, edgecolors="black", linewidths=0.4, alpha=0.9)
    ax.set_xlabel(proj.axis_labels[0], fontsize=9)
    ax.set_ylabel(proj.axis_labels[1], fontsize=9)
    if proj.method == "tsne":  # t-SNE axes carry no units worth reading
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.tick_params(labelsize=8)
    ax.grid(alpha=0.2)


def _single(emb: Any, method: str, *, perplexity: float | None, max_iter: int, seed: int,
            title: str | None, report: Any, metrics: bool, label_names: Sequence[str] | None,
            model: str | None, population: int | None = None) -> Plot:
    every = _points(emb, label_names=label_names, model=model, what=f"{method}_plot")
    rep = _report_for(every, report) if metrics else None  # the numbers: from every point
    p, shown = _shown(every, seed, population)
    proj = project(p.X, method, perplexity=perplexity, max_iter=max_iter, seed=seed)
    present = [n for j, n in enumerate(p.names) if (p.labels == j).any()]
    styles = family_styles(p.names)

    fig = _new_figure(8.0, 6.2)
    ax = fig.add_subplot(1, 1, 1)
    _scatter(ax, proj, p, styles, size=60)
    one = getattr(emb, "class_word", "family")  # "label" for your own labelled texts
    many = "families" if one == "family" else one + "s"
    heading = title if title is not None else f"{p.model or 'embeddings'} — {max(len(every.X), population or 0):,} texts, {len(present)} {many}"
    text = heading + ("\n" + metrics_line(rep) if rep is not None else "")
    fig.suptitle(text, fontsize=10.5)
    notes = [n for n in (shown and f"{shown} shown", proj.note) if n]
    sub = proj.description + (f" ({'; '.join(notes)})" if notes else "")
    ax.set_title(sub, fontsize=8.5, color="0.3")
    ax.legend(handles=_legend_handles(styles, present), title=one, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize=8.5, title_fontsize=9, frameon=False)
    return Plot(fig, [proj], [p.model or "embeddings"], present, text, [rep] if rep is not None else [])


def tsne_figure(emb: EmbLike, *, perplexity: float | None = None, max_iter: int = 1000, seed: int = 0,
                title: str | None = None, report: GeometryReport | None = None, metrics: bool = True,
                label_names: Sequence[str] | None = None, model: str | None = None,
                population: int | None = None) -> Plot:
    """Draw the t-SNE picture of ``emb`` without saving it (see ``tsne_plot``)."""
    return _single(emb, "tsne", perplexity=perplexity, max_iter=max_iter, seed=seed, title=title,
                   report=report, metrics=metrics, label_names=label_names, model=model, population=population)


def pca_figure(emb: EmbLike, *, seed: int = 0, title: str | None = None, report: GeometryReport | None = None,
               metrics: bool = True, label_names: Sequence[str] | None = None, model: str | None = None,
               population: int | None = None) -> Plot:
    """Draw the 2-D PCA picture of ``emb`` without saving it (see ``pca_plot``)."""
    return _single(emb, "pca", perplexity=None, max_iter=1000, seed=seed, title=title,
                   report=report, metrics=metrics, label_names=label_names, model=model, population=population)


def tsne_plot(emb: EmbLike, path: str | os.PathLike, *, perplexity: float | None = None, max_iter: int = 1000,
              seed: int = 0, title: str | None = None, report: GeometryReport | None = None,
              metrics: bool = True, label_names: Sequence[str] | None = None,
              model: str | None = None, population: int | None = None) -> Path:
    """Write a t-SNE PNG of ``emb``, points coloured by family, and return its path.

    ``emb``: an ``EmbeddedDataset`` or ``(X, labels[, label_names])``. t-SNE as in the paper:
    perplexity 30, or 10 below 50 points (``perplexity=`` overrides; it must be < N),
    ``max_iter`` iterations, PCA init, ``random_state=seed``. The title holds the model
    name and the four Table 2 metrics, from ``report`` or computed with
    ``geomcheck.metrics.cluster_report`` with the paper's KMeans (``n_init=10``, ``random_state=42``,
    whatever ``seed`` the projection takes; ``metrics=False`` leaves them out);
    ``title`` replaces the first line. Above ``MAX_POINTS`` (10,000) points the picture draws a
    stratified sample of them (seeded), and its subtitle says so; ``population``: the size of the
    set ``emb`` already is a sample of. The title's metrics come from every point.
    """
    _png_path(path)  # refuse a bad path before the work
    return tsne_figure(emb, perplexity=perplexity, max_iter=max_iter, seed=seed, title=title, report=report,
                       metrics=metrics, label_names=label_names, model=model, population=population).save(path)


def pca_plot(emb: EmbLike, path: str | os.PathLike, *, seed: int = 0, title: str | None = None,
             report: GeometryReport | None = None, metrics: bool = True,
             label_names: Sequence[str] | None = None, model: str | None = None) -> Path:
    """Write a 2-D PCA PNG of ``emb`` (explained variance in the axis labels); see ``tsne_plot``."""
    _png_path(path)  # refuse a bad path before the work
    return pca_figure(emb, seed=seed, title=title, report=report, metrics=metrics,
                      label_names=label_names, model=model).save(path)


def grid_figure(embs: Mapping[str, EmbLike] | Sequence[EmbLike], *, method: str = "tsne",
                perplexity: float | None = None, max_iter: int = 1000, seed: int = 0,
                title: str | None = None, reports: Mapping[str, GeometryReport] | None = None,
                metrics: bool = True, ncols: int | None = None, shared: bool = False,
                population: int | None = None) -> Plot:
    """Draw one panel per variant, side by side, with one legend shared by all panels (see ``grid_plot``)."""
    if isinstance(embs, Mapping):
        items = [(str(k), v) for k, v in embs.items()]
    elif isinstance(embs, Sequence) and not isinstance(embs, (str, bytes)):
        items = []
        for i, e in enumerate(embs):
            name = getattr(e, "model", None) or f"variant {i + 1}"
            items.append((name, e))
        seen: dict[str, int] = {}
        for i, (name, e) in enumerate(items):  # the same model twice gets "name #2"
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                items[i] = (f"{name} #{seen[name]}", e)
    else:
        raise InvalidInputError(f"grid_plot takes a dict name -> embeddings or a list; got {type(embs).__name__}")
    if not items:
        raise InvalidInputError("grid_plot needs at least one set of embeddings")
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    reports = dict(reports or {})
    unknown = sorted(set(reports) - {n for n, _ in items})
    if unknown:
        raise InvalidInputError(f"reports given for {unknown}, which are not panels: {[n for n, _ in items]}")
    if ncols is None:  # 2 x 2 for the usual base / lora / soup / slerp: legible at screen width
        ncols = len(items) if len(items) <= 2 else 2 if len(items) <= 4 else 3
    if not isinstance(ncols, int) or ncols < 1:
        raise InvalidInputError(f"ncols must be a positive integer, got {ncols!r}")
    nrows = math.ceil(len(items) / ncols)

    every = [(name, _points(e, model=name, what="grid_plot")) for name, e in items]
    # the same labels and seed draw the same texts in every panel: the panels still compare point for point
    most = MAX_POINTS // len(every) if shared else MAX_POINTS  # a joint t-SNE embeds every panel's points at once
    thinned = [(name, *_shown(p, seed, population, most)) for name, p in every]
    points = [(name, p) for name, p, _ in thinned]
    shown_notes = sorted({n for _, _, n in thinned if n})
    all_names = list(dict.fromkeys(n for _, p in points for n in p.names))
    styles = family_styles(all_names)  # one colour per family name across all panels
    fig = _new_figure(4.3 * ncols + 1.8, 4.4 * nrows + 0.9)
    projections, reps, present, axes = [], [], set(), []
    joint = joint_projections([p.X for _, p in points], method, perplexity=perplexity, max_iter=max_iter,
                              seed=seed, first=points[0][0]) if shared else None
    for k, (name, p) in enumerate(points):
        proj = joint[k] if joint else project(p.X, method, perplexity=perplexity, max_iter=max_iter, seed=seed)
        ax = fig.add_subplot(nrows, ncols, k + 1)
        axes.append(ax)
        _scatter(ax, proj, p, styles, size=40)
        heading = name
        if metrics:
            rep = _report_for(every[k][1], reports.get(name))
            reps.append(rep)
            heading += "\n" + metrics_line(rep, compact=True)
        ax.set_title(heading, fontsize=9)
        projections.append(proj)
        present.update(n for j, n in enumerate(p.names) if (p.labels == j).any())
    if joint:  # one projection: the same axes in every panel, so the panels compare point for point
        allc = np.vstack([pr.coords for pr in projections])
        pad = 0.05 * (allc.max(axis=0) - allc.min(axis=0) + 1e-12)
        for ax in axes:
            ax.set_xlim(allc[:, 0].min() - pad[0], allc[:, 0].max() + pad[0])
            ax.set_ylim(allc[:, 1].min() - pad[1], allc[:, 1].max() + pad[1])
    legend = [n for n in all_names if n in present]
    first = projections[0]
    what = first.description.split(",")[0] if method == "pca" else first.description
    notes = [f"{n} shown" for n in shown_notes] + sorted({pr.note for pr in projections if pr.note})
    text = title if title is not None else f"{len(items)} variants — {what}"
    if notes:
        text += " (" + "; ".join(notes) + ")"
    fig.suptitle(text, fontsize=11)
    fig.legend(handles=_legend_handles(styles, legend), title=getattr(items[0][1], "class_word", "family"), loc="center left",
               bbox_to_anchor=(1.0, 0.5), fontsize=8.5, title_fontsize=9, frameon=False)
    fig.tight_layout()
    return Plot(fig, projections, [n for n, _ in items], legend, text, reps)


def grid_plot(embs: Mapping[str, EmbLike] | Sequence[EmbLike], path: str | os.PathLike, *,
              method: str = "tsne", perplexity: float | None = None, max_iter: int = 1000, seed: int = 0,
              title: str | None = None, reports: Mapping[str, GeometryReport] | None = None,
              metrics: bool = True, ncols: int | None = None, shared: bool = False,
              population: int | None = None) -> Path:
    """Write a PNG grid of several variants (e.g. base / lora / soup / slerp), one panel each.

    ``embs``: ``{"base": emb, "slerp": emb2, …}`` or a list (panels named after each
    ``EmbeddedDataset.model``). ``method``: "tsne" or "pca"; each panel is projected on its
    own with the same parameters and seed, or, with ``shared=True`` (panels of the same
    texts), all by one projection on common axes — a joint t-SNE of every panel's points, or a
    PCA fitted on the first panel — so that the panels compare point for point. A family keeps
    its colour in every panel; one legend is shared. Panel titles hold the four Table 2
    metrics (from ``reports[name]`` or computed). At most ``ncols`` panels per row (default:
    2 x 2 for up to four panels, else 3).
    """
    _png_path(path)  # refuse a bad path before the work
    return grid_figure(embs, method=method, perplexity=perplexity, max_iter=max_iter, seed=seed, title=title,
                       reports=reports, metrics=metrics, ncols=ncols, shared=shared, population=population).save(path)
