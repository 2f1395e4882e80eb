"""The paired gate: does a new run of the baseline's texts keep the committed geometry?

``compare`` is paired: the unit is the text. With ``d_i = s_new(i) - s_base(i)`` (per-text
silhouettes, true labels), the mean change of the silhouette is ``mean(d)`` and its
interval comes from a stratified bootstrap of the texts (resampled within each family,
sizes kept; Davison & Hinkley 1997, section 3.2), percentile interval. Pairing removes the
text-to-text spread that dominates an unpaired comparison of two silhouettes on 24 texts.
The interval is over the choice of texts for these two fixed spaces, not over models.
Besides: the worst family, Davies–Bouldin, the KMeans metrics, and CKA / mutual k-NN of the
new embeddings to the stored ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geomcheck.checks.baseline import (
    KNN_K,
    UPDATE_HINT,
    Baseline,
    BaselineEntry,
    regenerate_hint,
    resolve_tolerances,
)
from geomcheck.checks.per_text import per_text_silhouettes, sample_rows, sampled_mean, stratified_rows
from geomcheck.errors import BaselineMismatchError, GeometryAssertionError, InvalidInputError
from geomcheck.metrics.geometry import KMEANS_SEED

__all__ = ["Check", "Comparison", "assert_matches_baseline", "compare", "paired_interval"]

_BOOT_CELLS = 20_000_000  # n_boot x texts past which paired_interval uses the bootstrap's normal limit


@dataclass(frozen=True)
class Check:
    """One gate: ``rule`` is "max drop", "max increase" (``tolerance`` is the slack) or "minimum"."""

    metric: str
    baseline: float
    value: float
    tolerance: float
    passed: bool
    detail: str = ""
    rule: str = "minimum"

    def verdict(self) -> str:
        """One line: what failed by how much, e.g. ``cka_to_baseline 0.9129 < 0.97``."""
        if self.rule == "minimum":
            return f"{self.metric} {self.value:.4f} < {self.tolerance:.4g}"
        change = self.baseline - self.value if self.rule == "max drop" else self.value - self.baseline
        verb = "dropped" if self.rule == "max drop" else "rose"
        return f"{self.metric} {verb} by {change:.4f} > {self.tolerance:.4g} ({self.baseline:.4f} -> {self.value:.4f})"

    def line(self) -> str:
        kind = "minimum" if self.rule == "minimum" else f"{self.rule} tolerance"
        return (f"{self.metric}: baseline {self.baseline:.4f}, now {self.value:.4f}, {kind} {self.tolerance:.4g}"
                + (f" ({self.detail})" if self.detail else ""))


@dataclass(frozen=True)
class Comparison:
    """The result of ``compare``: ``checks``, ``passed``, ``failures``, the paired interval."""

    model: str
    baseline_model: str
    dataset: str
    checks: tuple[Check, ...]
    mean_difference: float
    interval: tuple[float, float]
    confidence: float
    tolerances: dict[str, float]
    baseline_path: Path | None = None
    dataset_file: str = ""  # the file of your own labelled texts it measured, for the rewrite command

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        f = self.failures
        head = "all checks passed" if not f else f"{len(f)} of {len(self.checks)} checks failed: " + \
            ", ".join(c.metric for c in f)
        return (f"{head}; paired silhouette change {self.mean_difference:+.4f} "
                f"[{self.interval[0]:+.4f}, {self.interval[1]:+.4f}]")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "baseline_model": self.baseline_model, "dataset": self.dataset,
                "passed": self.passed, "summary": self.summary(), "mean_difference": self.mean_difference,
                "interval": list(self.interval), "confidence": self.confidence, "tolerances": self.tolerances,
                "checks": [{"metric": c.metric, "baseline": c.baseline, "value": c.value, "tolerance": c.tolerance,
                            "rule": c.rule, "passed": c.passed, "detail": c.detail} for c in self.checks]}

    def message(self) -> str:
        """First line the verdict (the first failing check, model, dataset), then every check, then the advice."""
        f = self.failures
        head = (f"{f[0].verdict()}{f' (+{len(f) - 1} more)' if len(f) > 1 else ''} ({self.model}, {self.dataset})"
                if f else f"{self.model} matches the {self.baseline_model} baseline on {self.dataset}")
        lines = [head, f"{self.model} vs the {self.baseline_model} baseline on the {self.dataset} dataset: "
                       f"{self.summary()}"]
        lines += [("  FAIL " if not c.passed else "  ok   ") + c.line() for c in self.checks]
        if f:
            where = f" at {self.baseline_path}" if self.baseline_path else ""
            lines.append(f"If the change is intended, rewrite the baseline{where} from {self.model}: "
                         f"{regenerate_hint(self.baseline_path, self.model, self.dataset, self.dataset_file)}.")
        return "\n".join(lines)

    def check(self) -> Comparison:
        """Raise ``GeometryAssertionError`` with ``message()`` when a check failed; else return self."""
        __tracebackhide__ = True
        if not self.passed:
            first = self.failures[0]
            raise GeometryAssertionError(self.message(), metric=", ".join(c.metric for c in self.failures),
                                         value=first.value, threshold=first.tolerance, interval=self.interval,
                                         model=self.model)
        return self


def _check_same_dataset(entry: BaselineEntry, embedded: Any, dataset: str) -> None:
    """The run measured the very texts, labels and label names the baseline stores, else a
    ``BaselineMismatchError`` saying the baseline is for another dataset and where they differ."""
    from geomcheck.cache import texts_digest

    texts = tuple(embedded.texts)
    labels = getattr(embedded, "labels", None)
    names = tuple(getattr(embedded, "label_names", entry.label_names))
    if texts != entry.texts:
        if len(texts) != len(entry.texts):
            where = f"the baseline has {len(entry.texts)} texts, this run {len(texts)}"
        else:
            diff = [i for i, (a, b) in enumerate(zip(entry.texts, texts)) if a != b]
            i = diff[0]
            where = (f"{len(diff)} of {len(texts)} texts differ, first at index {i}: baseline "
                     f"{entry.texts[i][:60]!r}, now {texts[i][:60]!r}")
        digests = f"texts digest {entry.texts_digest[:12]}, now {texts_digest(texts)[:12]}"
    elif names != entry.label_names:
        where, digests = f"label names {list(entry.label_names)} in the baseline, now {list(names)}", "same texts"
    elif labels is not None and not np.array_equal(np.asarray(labels), entry.labels):
        diff = np.flatnonzero(np.asarray(labels) != entry.labels)
        i = int(diff[0])
        where = (f"{diff.size} text(s) have another label, first at index {i} ({texts[i][:40]!r}): baseline "
                 f"{entry.label_names[entry.labels[i]]!r}, now {names[int(labels[i])]!r}")
        digests = "same texts"
    else:
        return
    raise BaselineMismatchError(f"the {dataset!r} baseline is for another dataset ({digests}): {where}. A paired "
                                f"comparison needs the very same labelled texts; if the dataset changed on purpose, "
                                f"rewrite the baseline (`{UPDATE_HINT}`)")


def _check_same_kmeans(baseline: Baseline, entry: BaselineEntry, dataset: str) -> None:
    """A baseline measured with another KMeans seed than the paper's (a file from before geomcheck took
    ``random_state=42``) has other KMeans numbers and verdicts: refused, with how to rewrite it."""
    seed = int(entry.report.seed)
    if seed == KMEANS_SEED:
        return
    where = f"baseline {str(baseline.path)!r}" if baseline.path is not None else f"the baseline of {baseline.model}"
    raise BaselineMismatchError(
        f"{where} was measured with another KMeans seed ({dataset!r}: KMeans n_init={entry.report.kmeans_n_init}, "
        f"random_state={seed}); geomcheck now measures the paper's protocol, KMeans(n_init=10, random_state="
        f"{KMEANS_SEED}), so its KMeans numbers and clusters-by-family verdicts are not comparable with this "
        f"run's. Rewrite it with the paper's KMeans (its tolerances are kept): "
        f"{regenerate_hint(baseline.path, baseline.model)}")


def paired_interval(d: Any, labels: Any, *, confidence: float = 0.95, n_boot: int = 2000,
                    seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``mean(d)`` over texts resampled within each family (``labels``), sizes kept.

    ``d``: one paired difference per text (e.g. per-text silhouettes of two spaces). Same
    inputs and ``seed`` give the same interval.
    """
    from geomcheck.metrics.stats import stratified_draws

    d = np.asarray(d, dtype=np.float64).reshape(-1)
    codes = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)
    if d.size != codes.size or d.size == 0:
        raise InvalidInputError(f"paired_interval: {d.size} differences for {codes.size} labels")
    if n_boot * d.size > _BOOT_CELLS:
        # Many texts: the bootstrap distribution of a stratified mean is normal to any precision that
        # matters, with variance sum_h (N_h/N)^2 var_h / N_h (var with ddof 0, as resampling with
        # replacement has); no n_boot x N matrix of draws.
        from statistics import NormalDist

        sizes = np.bincount(codes).astype(np.float64)
        means = np.bincount(codes, weights=d) / sizes
        var = np.bincount(codes, weights=(d - means[codes]) ** 2) / sizes
        w = sizes / d.size
        se = float(np.sqrt(np.sum(w * w * var / sizes)))
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        mean = float(d.mean())
        return mean - z * se, mean + z * se
    idx = stratified_draws(codes, n_boot, np.random.default_rng(seed), distinct=False)
    reps = d[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def compare(baseline: Baseline, dataset_name: str, embedded: Any, *, tolerances: Mapping[str, float] | None = None,
            confidence: float = 0.95, n_boot: int = 2000, seed: int = 0, metric: str | None = None,
            exact_max: int | None = None) -> Comparison:
    """Compare a new embedding of the baseline's texts with the stored one (see the module docstring).

    ``metric``: the silhouette's distance this run measures with; a baseline measured with another
    one is refused (``BaselineMismatchError``), never compared number with number. None: the
    baseline's own. Above ``exact_max`` texts (None: ``geomcheck.metrics.EXACT_MAX_N``) a Euclidean
    comparison pairs the texts of a stratified sample (each new silhouette exact against all
    texts) and its interval is the stratified sample's, not a bootstrap's.
    """
    from geomcheck.metrics import EXACT_MAX_N, cluster_report, linear_cka, mutual_knn

    if dataset_name not in baseline.datasets:
        raise InvalidInputError(f"baseline of {baseline.model} has no dataset {dataset_name!r}; "
                                f"it has: {', '.join(baseline.datasets)}")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise InvalidInputError(f"n_boot must be an integer >= 100, got {n_boot!r}")
    tol = resolve_tolerances(tolerances, baseline.tolerances)
    entry = baseline.datasets[dataset_name]
    _check_same_kmeans(baseline, entry, dataset_name)
    stored = entry.report.metric
    if metric is not None and metric != stored:
        where = f" at {baseline.path}" if baseline.path else ""
        raise BaselineMismatchError(
            f"the {dataset_name!r} baseline of {baseline.model}{where} was measured with the {stored} silhouette, and "
            f"this run measures the {metric} one: their numbers do not compare. Run with --geomcheck-metric {stored} "
            f"(ini geomcheck_metric), or rewrite the baseline with the {metric} silhouette "
            f"(--geomcheck-metric {metric} --geomcheck-update-baseline)")
    metric = stored
    _check_same_dataset(entry, embedded, dataset_name)
    X = np.asarray(embedded.X, dtype=np.float32)
    if X.shape[0] != len(entry.texts):
        raise InvalidInputError(f"embedded.X has {X.shape[0]} rows for {len(entry.texts)} texts")
    labels, names = entry.labels, entry.label_names
    uniq, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(-1)
    exact_max = EXACT_MAX_N if exact_max is None else exact_max
    base = entry.report
    rep = cluster_report(X, labels, seed=KMEANS_SEED, label_names=names, precision="float64", metric=metric,
                         exact_max=exact_max)
    # A baseline that stores a sample's silhouettes is paired on those texts; one that stores every text's,
    # on all of them, or above exact_max on a fresh stratified sample (geomcheck.checks.per_text).
    rows = entry.silhouette_rows if entry.silhouette_rows is not None else sample_rows(labels, metric, exact_max, seed)
    if rows is not None:
        stored = entry.silhouette_samples if entry.silhouette_rows is not None else entry.silhouette_samples[rows]
        d = per_text_silhouettes(X, labels, metric, rows) - stored
        est = sampled_mean(d, labels, rows, confidence)
        mean_d, lo, hi, d_codes, d_base = est.estimate, est.low, est.high, codes[rows], stored
        base_mean = sampled_mean(stored, labels, rows).estimate
    else:
        d = per_text_silhouettes(X, labels, metric) - entry.silhouette_samples
        mean_d, d_codes, d_base = float(d.mean()), codes, entry.silhouette_samples
        base_mean = float(d_base.mean())
        lo, hi = paired_interval(d, codes, confidence=confidence, n_boot=n_boot, seed=seed)
    level = f"{confidence:.0%}"
    sampled = f" ({rows.size:,} sampled texts of {codes.size:,})" if rows is not None else ""
    checks = [Check("silhouette_true (paired)", base_mean, base_mean + mean_d, tol["silhouette_true"],
                    not (-mean_d > tol["silhouette_true"] and hi < 0),
                    f"mean paired change {mean_d:+.4f}{sampled}, {level} interval [{lo:+.4f}, {hi:+.4f}]; fails when the drop "
                    f"exceeds the tolerance and the interval lies below 0", "max drop")]
    fam = {c: float(d[d_codes == c].mean()) for c in range(uniq.size)}
    w = min(fam, key=fam.get)
    worst = names[uniq[w]] if 0 <= uniq[w] < len(names) else str(uniq[w])
    fam_base = float(d_base[d_codes == w].mean())
    checks.append(Check("family_silhouette (paired)", fam_base, fam_base + fam[w], tol["family_silhouette"],
                        -fam[w] <= tol["family_silhouette"],
                        f"worst family {worst}: mean paired change {fam[w]:+.4f}", "max drop"))
    for key, higher in (("davies_bouldin_true", False), ("silhouette_kmeans", True), ("davies_bouldin_kmeans", False)):
        then, now = float(getattr(base, key)), float(getattr(rep, key))
        worse = (then - now) if higher else (now - then)
        ok = math.isnan(then) or (not math.isnan(now) and worse <= tol[key])
        checks.append(Check(key, then, now, tol[key], ok, f"change {now - then:+.4f}" if not math.isnan(worse) else
                            "KMeans found < 2 clusters", "max drop" if higher else "max increase"))
    cka = float(linear_cka(X, entry.X))
    checks.append(Check("cka_to_baseline", 1.0, cka, tol["cka_to_baseline"], cka >= tol["cka_to_baseline"],
                        "linear CKA between the new and the stored embeddings"))
    k = min(KNN_K, len(entry.texts) - 1)
    # Above exact_max, the neighbourhoods of sampled texts (each against all N): O(m N d), not O(N^2 d).
    knn_rows = None if codes.size <= exact_max else rows if rows is not None else stratified_rows(labels, exact_max, seed)
    knn = float(mutual_knn(X, entry.X, k, metric="cosine", rows=knn_rows))
    checks.append(Check("mutual_knn_to_baseline", 1.0, knn, tol["mutual_knn_to_baseline"],
                        knn >= tol["mutual_knn_to_baseline"], f"shared {k}-nearest neighbours (cosine)"
                        f"{f', mean over {knn_rows.size:,} sampled texts' if knn_rows is not None else ''}"))
    return Comparison(str(getattr(embedded, "model", "")), baseline.model, dataset_name, tuple(checks), mean_d,
                      (lo, hi), float(confidence), tol, baseline.path, _dataset_file(embedded))


def _dataset_file(embedded: Any) -> str:
    """The file the embedded texts were read from, when they came from one (``TextDataset.source``)."""
    source = str(getattr(embedded, "source", "") or "")
    return source if source and Path(source).is_file() else ""


def assert_matches_baseline(baseline: Baseline, dataset_name: str, embedded: Any, **kw: Any) -> Comparison:
    """``compare`` and raise ``GeometryAssertionError`` naming every failing check; returns the Comparison."""
    __tracebackhide__ = True
    return compare(baseline, dataset_name, embedded, **kw).check()


# --- (re)writing --------------------------------------------------------------------------------
