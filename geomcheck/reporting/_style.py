"""How the pictures look: a colour and marker per family, the legend, the metrics line of a title."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["family_styles", "metrics_line"]

# Markers change every 10 families so that up to 30 families get distinct colour+marker pairs.
_MARKERS = ("o", "s", "^", "D", "v", "P")


def family_styles(names: Sequence[str]) -> dict[str, tuple[tuple[float, ...], str]]:
    """A distinct (colour, marker) per family name, stable in the order given.

    Families 0–9 take tab20's dark hues with circles, 10–19 its light hues with squares,
    20–29 dark hues with triangles, and so on: neighbours never share a hue and marker.
    """
    from matplotlib import colormaps

    tab20 = colormaps["tab20"].colors
    out = {}
    for i, name in enumerate(dict.fromkeys(names)):
        block = i // 10
        out[name] = (tuple(tab20[2 * (i % 10) + block % 2]), _MARKERS[block % len(_MARKERS)])
    return out


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}".replace("-", "\u2212")


def metrics_line(report: Any, *, compact: bool = False) -> str:
    """The four Table 2 numbers of a ``GeometryReport`` as one line (two when ``compact``); silhouettes
    estimated from a sample of texts (``silhouette_sample``) are marked ``≈``, as in the tables."""
    est = "\u2248" if getattr(report, "silhouette_sample", 0) else ""
    st, sk = est + _fmt(report.silhouette_true), est + _fmt(report.silhouette_kmeans)
    if compact:
        return (f"true: sil {st} · DB {_fmt(report.davies_bouldin_true)}\n"
                f"KMeans: sil {sk} · DB {_fmt(report.davies_bouldin_kmeans)}")
    return (f"silhouette true {st} · DB true {_fmt(report.davies_bouldin_true)} · "
            f"silhouette KMeans {sk} · DB KMeans {_fmt(report.davies_bouldin_kmeans)}")


def _legend_handles(styles: Mapping[str, tuple], names: Sequence[str]) -> list:
    from matplotlib.lines import Line2D

    return [Line2D([], [], linestyle="none", marker=styles[n][1], markerfacecolor=styles[n][0],
                   markeredgecolor="black", markeredgewidth=0.4, markersize=8, label=n) for n in names]
