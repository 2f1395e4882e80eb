"""``assert_*`` helpers for geometry tests; each failure explains itself.

Every helper accepts ``(X, labels, ...)`` arrays or an ``EmbeddedDataset`` (pass it in
place of ``X`` and leave ``labels`` out); the pairwise ones also accept ``Embedder``s plus
the dataset to embed. A failed check raises ``GeometryAssertionError`` (an
``AssertionError``) whose message names the metric, the measured value (and interval), the
threshold, the model, the worst families and what to look at next.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from geomcheck.errors import GeometryAssertionError, InvalidInputError
from geomcheck.metrics.geometry import KMEANS_SEED

__all__ = [
    "assert_silhouette_above",
    "assert_davies_bouldin_below",
    "assert_clusters_by_family",
    "assert_merge_preserves_base",
    "assert_no_adapter_dominance",
    "assert_no_regression",
    "DEFAULT_TOLERANCES",
]

# Which way is better for each GeometryReport field (True: higher is better).
HIGHER_IS_BETTER = {
    "silhouette_true": True, "silhouette_kmeans": True, "calinski_harabasz_true": True,
    "ari": True, "nmi": True, "v_measure": True,
    "davies_bouldin_true": False, "davies_bouldin_kmeans": False,
}
# Absolute slack per field for assert_no_regression (Calinski–Harabasz is scale-dependent: relative).
DEFAULT_TOLERANCES: dict[str, float] = {
    "silhouette_true": 0.02, "davies_bouldin_true": 0.15, "silhouette_kmeans": 0.05,
    "davies_bouldin_kmeans": 0.25,
}


# --- inputs -------------------------------------------------------------------------------


def _split(fn: str, data: Any, args: tuple, names: tuple[str, ...]) -> tuple[Any, Any, list]:
    """``(data, labels, rest)`` for the ``(emb, *names)`` and ``(X, labels, *names)`` call forms."""
    __tracebackhide__ = True  # failures point at the caller's line, not at geomcheck's source
    if hasattr(data, "X") and hasattr(data, "labels"):
        if len(args) != len(names):
            raise InvalidInputError(
                f"{fn}(emb, {', '.join(names)}): with an EmbeddedDataset pass {len(names)} more "
                f"positional argument(s), got {len(args)}"
            )
        return data, None, list(args)
    if len(args) != len(names) + 1:
        raise InvalidInputError(
            f"{fn}(X, labels, {', '.join(names)}): with an array pass labels and {', '.join(names)}; "
            f"got {len(args)} positional argument(s) after X"
        )
    return data, args[0], list(args[1:])


def _model_name(obj: Any) -> str:
    for attr in ("model", "name"):
        v = getattr(obj, attr, None)
        if isinstance(v, str) and v:
            return v
    return "the given embeddings"


def _xy(data: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, tuple[str, ...] | None]:
    __tracebackhide__ = True  # failures point at the caller's line, not at geomcheck's source
    from geomcheck.metrics._validation import as_xy

    return as_xy(data, labels)


def _space(obj: Any, dataset: Any, role: str) -> tuple[np.ndarray, str]:
    """Embeddings of ``dataset``'s texts from an Embedder, or the rows of an EmbeddedDataset / array."""
    __tracebackhide__ = True  # failures point at the caller's line, not at geomcheck's source
    if hasattr(obj, "encode") and hasattr(obj, "fingerprint"):
        if dataset is None:
            raise InvalidInputError(f"{role} is an Embedder: pass the dataset whose texts it should embed")
        texts = getattr(dataset, "texts", dataset)
        return obj.encode(list(texts)), obj.name
    if hasattr(obj, "X"):
        return np.asarray(obj.X, dtype=np.float64), _model_name(obj)
    X = np.asarray(obj, dtype=np.float64)
    if X.ndim != 2:
        raise InvalidInputError(f"{role} must be an Embedder, an EmbeddedDataset or a 2-D array, got shape {X.shape}")
    return X, f"{role} array"


def _labels_of(dataset: Any, *spaces: Any) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    for src in (dataset, *spaces):
        if src is not None and hasattr(src, "labels") and not isinstance(src, np.ndarray):
            return np.asarray(src.labels), tuple(getattr(src, "label_names", ()) or ()) or None
    return None, None


# --- messages ------------------------------------------------------------------------------


def _fmt_interval(iv: tuple[float, float] | None, level: float | None) -> str:
    return f" [{level:.0%} CI {iv[0]:+.4f}, {iv[1]:+.4f}]" if iv is not None and level else ""


def _words(data: Any) -> tuple[str, str]:
    """("family", "families") for the sequence families and plain arrays, ("label", "labels") for your
    own labelled texts (an ``EmbeddedDataset`` of a ``TextDataset``): the paper's word means nothing there."""
    one = str(getattr(data, "class_word", "family") or "family")
    return one, ("families" if one == "family" else one + "s")


def _worst(samples: np.ndarray, labels: np.ndarray, names: tuple[str, ...] | None, k: int = 3) -> str:
    """The ``k`` families with the lowest mean silhouette, from per-sample values."""
    per = []
    for lab in np.unique(labels):
        name = names[int(lab)] if names is not None and 0 <= int(lab) < len(names) else str(lab)
        per.append((float(samples[labels == lab].mean()), name))
    per.sort()
    return ", ".join(f"{n} {v:+.3f}" for v, n in per[:k])


def _interval(X, labels, metric_name: str, level: float, n_boot: int, seed: int) -> tuple[float, float]:
    from geomcheck.metrics import bootstrap_ci

    res = bootstrap_ci(X, labels, metric_name, n_boot=n_boot, level=level, seed=seed)
    low, high = (res.low, res.high) if hasattr(res, "low") else res
    return float(low), float(high)


def _check_confidence(confidence: float | None) -> None:
    __tracebackhide__ = True
    if confidence is not None and not (_finite(confidence, "confidence") and 0 < confidence < 1):
        raise InvalidInputError(f"confidence must lie in (0, 1), e.g. 0.95, got {confidence!r}")


def _finite(value: Any, what: str) -> float:
    """``value`` as a finite float, else an ``InvalidInputError``: a NaN threshold would pass every check."""
    __tracebackhide__ = True
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be a finite number, got {value!r}") from None
    if not math.isfinite(v) or isinstance(value, bool):
        raise InvalidInputError(f"{what} must be a finite number, got {value!r}")
    return v


# --- single-space checks -----------------------------------------------------------------


def assert_silhouette_above(data: Any, *args: Any, metric: str = "euclidean", confidence: float | None = None,
                            n_boot: int = 1000, seed: int = 0) -> float:
    """Silhouette with the true labels must exceed ``threshold``.

    Call as ``(emb, threshold)`` or ``(X, labels, threshold)``. With ``confidence=0.95`` the
    lower bound of the interval (``geomcheck.metrics.bootstrap_ci``) must clear it. Returns the value.
    """
    __tracebackhide__ = True  # failures point at the caller's line, not at geomcheck's source
    from geomcheck.metrics import silhouette_samples

    data, labels, (threshold,) = _split("assert_silhouette_above", data, args, ("threshold",))
    threshold = _finite(threshold, "threshold")
    _check_confidence(confidence)
    if confidence and metric != "euclidean":
        raise InvalidInputError("confidence intervals are implemented for the euclidean silhouette only; "
                                "use metric='euclidean' or drop confidence")
    X, y, names = _xy(data, labels)
    samples = silhouette_samples(X, y, metric=metric)  # once: the value and the worst families
    value = float(samples.mean())
    iv = _interval(X, y, "silhouette", confidence, n_boot, seed) if confidence else None
    judged = iv[0] if iv else value
    if not judged > threshold:
        model = _model_name(data)
        one, many = _words(data)
        raise GeometryAssertionError(
            f"silhouette {judged:+.4f}{' (lower bound)' if iv else ''} <= {threshold:+.4f} ({model}, {len(y)} texts)\n"
            f"silhouette ({metric}, {'true family labels' if one == 'family' else 'true labels'}) of {model} on {len(y)} texts / "
            f"{len(np.unique(y))} {many} = {value:+.4f}{_fmt_interval(iv, confidence)}; "
            f"{'its lower bound is' if iv else 'it is'} not above the threshold {threshold:+.4f}. "
            f"Worst {many}: {_worst(samples, y, names)}. Look at a t-SNE plot of these embeddings "
            f"(geomcheck.reporting.plots.tsne_plot) and at the KMeans silhouette (geomcheck.metrics.cluster_report): "
            f"a model that groups the texts by another property scores low here"
            f"{f' ({data.hint})' if getattr(data, 'hint', '') else ''}.",
            metric="silhouette", value=value, threshold=threshold, interval=iv, model=model,
        )
    return value


def assert_davies_bouldin_below(data: Any, *args: Any) -> float:
    """Davies–Bouldin index with the true labels must be below ``threshold`` (lower is better).

    Call as ``(emb, threshold)`` or ``(X, labels, threshold)``. Returns the value. There is
    no ``confidence`` option: bootstrap intervals for Davies–Bouldin do not reach their
    nominal coverage on few points (6–60 % for a nominal 90 % in geomcheck's tests), so a
    gate with uncertainty should use the silhouette.
    """
    __tracebackhide__ = True  # failures point at the caller's line, not at geomcheck's source
    from geomcheck.metrics import davies_bouldin, silhouette_samples

    data, labels, (threshold,) = _split("assert_davies_bouldin_below", data, args, ("threshold",))
    threshold = _finite(threshold, "threshold")
    X, y, names = _xy(data, labels)
    value = davies_bouldin(X, y)
    if not value < threshold:
        model = _model_name(data)
        one, many = _words(data)
        raise GeometryAssertionError(
            f"Davies-Bouldin {value:.4f} >= {threshold:.4f} ({model}, {len(y)} texts)\n"
            f"Davies–Bouldin ({'true family labels' if one == 'family' else 'true labels'}) of {model} on {len(y)} texts = {value:.4f}; it is not below the "
            f"threshold {threshold:.4f} (lower is better: clusters are wide relative to their separation). "
            f"Worst {many} by silhouette: {_worst(silhouette_samples(X, y), y, names)}. Look at which {many} "
            f"overlap in a t-SNE plot (geomcheck.reporting.plots.tsne_plot).",
            metric="davies_bouldin", value=value, threshold=threshold, model=model,
        )
    return value


def assert_clusters_by_family(data: Any, *args: Any, margin: float = 0.05, seed: int = KMEANS_SEED,
                              metric: str = "euclidean") -> Any:
    """KMeans silhouette must not exceed the true-label silhouette by more than ``margin``.

    KMeans as the paper ran it (``n_init=10``, ``random_state=seed``, default 42).
    The paper's sign that a model clusters by something other than the family: KMeans
    finds tighter groups than the families themselves. ``metric``: the silhouette's distance
    ("euclidean", the paper's, or "cosine"). Returns the ``GeometryReport``.
    """
    __tracebackhide__ = True  # failures point at the caller's line, not at geomcheck's source
    from geomcheck.metrics import cluster_report

    data, labels, _ = _split("assert_clusters_by_family", data, args, ())
    margin = _finite(margin, "margin")
    X, y, names = _xy(data, labels)
    rep = cluster_report(X, y, seed=seed, label_names=names, metric=metric)
    gap = rep.silhouette_kmeans - rep.silhouette_true
    if gap > margin:
        model = _model_name(data)
        one, many = _words(data)
        raise GeometryAssertionError(
            f"KMeans beats the {many} by {gap:.4f} > margin {margin:.4f} ({model}, {len(y)} texts)\n"
            f"{model} clusters by something other than the {one}: KMeans silhouette "
            f"{rep.silhouette_kmeans:+.4f} exceeds the true-label silhouette {rep.silhouette_true:+.4f} by "
            f"{gap:.4f} > margin {margin:.4f} (KMeans vs {many}: ARI {rep.ari:.3f}, NMI {rep.nmi:.3f}). "
            f"Worst {many}: {', '.join(f'{n} {v:+.3f}' for n, v in rep.worst_families())}. Look at what the "
            f"KMeans clusters share (geomcheck.metrics.kmeans_labels)"
            f"{': ' + data.hint if getattr(data, 'hint', '') else ''}.",
            metric="silhouette_kmeans - silhouette_true", value=gap, threshold=margin, model=model,
        )
    return rep


# --- two-space checks ------------------------------------------------------------------------


def assert_merge_preserves_base(merged: Any, base: Any, dataset: Any = None, *, min_cka: float | None = 0.9,
                                min_mutual_knn: float | None = None, max_silhouette_drop: float | None = None,
                                k: int = 5) -> dict[str, float]:
    """The merged model's space must stay close to the base model's on the same texts.

    Linear CKA >= ``min_cka``; optionally mutual k-NN >= ``min_mutual_knn`` and
    silhouette(base) - silhouette(merged) <= ``max_silhouette_drop`` (labels from the
    dataset). Returns the measured values.
    """
    __tracebackhide__ = True  # failures point at the caller's line, not at geomcheck's source
    from geomcheck.metrics import linear_cka, mutual_knn, silhouette

    min_cka, min_mutual_knn, max_silhouette_drop = (
        None if v is None else _finite(v, what) for v, what in
        ((min_cka, "min_cka"), (min_mutual_knn, "min_mutual_knn"), (max_silhouette_drop, "max_silhouette_drop")))
    Xm, m_name = _space(merged, dataset, "merged")
    Xb, b_name = _space(base, dataset, "base")
    if Xm.shape[0] != Xb.shape[0]:
        raise InvalidInputError(f"merged and base embed different numbers of texts: {Xm.shape[0]} vs {Xb.shape[0]}")
    values: dict[str, float] = {}
    fails: list[str] = []
    if min_cka is not None:
        values["cka"] = linear_cka(Xm, Xb)
        if values["cka"] < min_cka:
            fails.append(f"linear CKA {values['cka']:.4f} < {min_cka:.4f}")
    if min_mutual_knn is not None:
        values["mutual_knn"] = mutual_knn(Xm, Xb, k)
        if values["mutual_knn"] < min_mutual_knn:
            fails.append(f"mutual {k}-NN {values['mutual_knn']:.4f} < {min_mutual_knn:.4f}")
    if max_silhouette_drop is not None:
        labels, _ = _labels_of(dataset, merged, base)
        if labels is None:
            raise InvalidInputError("max_silhouette_drop needs family labels: pass a SequenceDataset or EmbeddedDatasets")
        values["silhouette_drop"] = silhouette(Xb, labels) - silhouette(Xm, labels)
        if values["silhouette_drop"] > max_silhouette_drop:
            fails.append(f"silhouette dropped by {values['silhouette_drop']:.4f} > {max_silhouette_drop:.4f}")
    if fails:
        raise GeometryAssertionError(
            f"{'; '.join(fails)} ({m_name} vs {b_name}, {Xm.shape[0]} texts)\n"
            f"{m_name} does not keep the geometry of {b_name} on {Xm.shape[0]} texts: {'; '.join(fails)}. "
            f"Look at a side-by-side plot (geomcheck.reporting.plots.grid_plot) and at the merge weight: the adapter or "
            f"fine-tuned checkpoint may dominate the merge.",
            metric=", ".join(values), value=values.get("cka"), threshold=min_cka, model=m_name,
        )
    return values


def assert_no_adapter_dominance(merged: Any, base: Any, adapter: Any, dataset: Any = None, *, weight: float = 0.5,
                                margin: float = 0.1) -> float:
    """The merged space must not sit closer to the adapter-only model than its merge weight implies.

    With CKA distances d(A, B) = 1 - linear_CKA(A, B), the merged model's relative position
    on the way from base to adapter is r = d(M, base) / (d(M, base) + d(M, adapter)):
    0 at the base, 1 at the adapter. A merge that puts weight ``weight`` on the adapter
    (soup of base and adapter: 0.5; SLERP: t) should land near r = weight; it is
    adapter-dominated when r > weight + margin. Returns r.
    """
    __tracebackhide__ = True  # failures point at the caller's line, not at geomcheck's source
    from geomcheck.metrics import linear_cka

    weight, margin = _finite(weight, "weight"), _finite(margin, "margin")
    if not 0 <= weight <= 1:
        raise InvalidInputError(f"weight (the merge weight on the adapter) must lie in [0, 1], got {weight}")
    Xm, m_name = _space(merged, dataset, "merged")
    Xb, b_name = _space(base, dataset, "base")
    Xa, a_name = _space(adapter, dataset, "adapter")
    if not Xm.shape[0] == Xb.shape[0] == Xa.shape[0]:
        raise InvalidInputError("merged, base and adapter must embed the same texts (same number of rows)")
    d_base = 1.0 - linear_cka(Xm, Xb)
    d_adapter = 1.0 - linear_cka(Xm, Xa)
    if d_base + d_adapter <= 1e-12:  # all three spaces coincide: nothing dominates
        return weight
    r = d_base / (d_base + d_adapter)
    if r > weight + margin:
        raise GeometryAssertionError(
            f"adapter position r {r:.3f} > {weight + margin:.3f} ({m_name}: {a_name} dominates)\n"
            f"{a_name} dominates {m_name}: on the way from {b_name} (r=0) to {a_name} (r=1) the merged space "
            f"sits at r = {r:.3f} (CKA distance to base {d_base:.4f}, to adapter {d_adapter:.4f}), beyond the "
            f"merge weight {weight:.2f} + margin {margin:.2f}. Look at the merge method and weight: SLERP or a "
            f"lower adapter weight keeps more of the base geometry than a plain average.",
            metric="adapter position r", value=r, threshold=weight + margin, model=m_name,
        )
    return r


def assert_no_regression(report: Any, baseline: Any, *, tolerances: Mapping[str, float] | None = None) -> None:
    """No metric of ``report`` may be worse than ``baseline``'s by more than its tolerance.

    ``tolerances`` maps ``GeometryReport`` fields to absolute slack (default
    ``DEFAULT_TOLERANCES``); higher is better for silhouettes, CH, ARI, NMI, V-measure,
    lower for Davies–Bouldin.
    """
    __tracebackhide__ = True  # failures point at the caller's line, not at geomcheck's source
    tol = {k: _finite(v, f"tolerances[{k!r}]") for k, v in (DEFAULT_TOLERANCES if tolerances is None
                                                              else tolerances).items()}
    unknown = sorted(set(tol) - set(HIGHER_IS_BETTER))
    if unknown:
        raise InvalidInputError(f"unknown fields in tolerances: {unknown}; known: {sorted(HIGHER_IS_BETTER)}")
    worse = []
    for name, slack in tol.items():
        now, then = float(getattr(report, name)), float(getattr(baseline, name))
        delta = now - then if HIGHER_IS_BETTER[name] else then - now  # > 0: better
        if delta < -slack:
            worse.append(f"{name} {then:.4f} -> {now:.4f} (worse by {-delta:.4f} > tolerance {slack:.4f})")
    if worse:
        raise GeometryAssertionError(
            f"{worse[0]}{f' (+{len(worse) - 1} more)' if len(worse) > 1 else ''}\n"
            f"geometry regressed against the baseline on {len(worse)} metric(s): {'; '.join(worse)}. "
            f"If the change is intended, write a new baseline (pytest --geomcheck-update-baseline).",
            metric=", ".join(w.split()[0] for w in worse), model=str(getattr(report, "model", "")),
        )
