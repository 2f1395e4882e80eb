"""``GeometryReport``: the numbers one embedding space gets on one labelled dataset."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from geomcheck.errors import InvalidInputError

# The paper's KMeans random_state (with n_init=10): with it and no prompt, EmbeddingGemma-300M gives its published
# Table 2 row to the last printed digit (float32, CPU); seed 0 moved its KMeans columns by 0.01 (PAPER.md, step 4).
KMEANS_SEED = 42
# What a report that records no seed was measured with: geomcheck's KMeans seed before it took the paper's
LEGACY_KMEANS_SEED = 0


@dataclass(frozen=True)
class GeometryReport:
    """Cluster geometry of ``n`` points in ``dim`` dimensions with ``n_clusters`` true classes.

    ``*_true`` use the true family labels; ``*_kmeans`` use KMeans(n_clusters) labels (the
    paper's Table 2). ``ari``, ``nmi``, ``v_measure`` compare KMeans labels with the true
    ones. ``per_family_silhouette`` is the mean silhouette of each family's points. ``seed`` and
    ``kmeans_n_init`` are the KMeans ``random_state`` and starts the KMeans numbers came from.
    ``intervals`` optionally holds confidence intervals, ``{"silhouette_true": (lo, hi)}``.
    ``metric``: the silhouette's distance ("euclidean", the paper's, or "cosine").
    ``silhouette_sample``: 0 when every text's silhouette was computed (exact); else the number
    of texts of the stratified sample both silhouettes were estimated from (a large set), with
    their 95% intervals in ``intervals`` and the sample's means per family.
    """

    silhouette_true: float
    davies_bouldin_true: float
    calinski_harabasz_true: float
    silhouette_kmeans: float
    davies_bouldin_kmeans: float
    ari: float
    nmi: float
    v_measure: float
    per_family_silhouette: dict[str, float]
    n: int
    dim: int
    n_clusters: int
    metric: str = "euclidean"
    seed: int = KMEANS_SEED
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    kmeans_n_init: int = 10  # k-means++ starts: the protocol's 10, 1 for very many clusters
    silhouette_sample: int = 0  # 0: exact; else the silhouettes are estimates from this many sampled texts

    @property
    def sampled(self) -> bool:
        """Whether the silhouettes are estimates from a sample of the texts (``silhouette_sample``)."""
        return self.silhouette_sample > 0

    def sample_note(self) -> str | None:
        """``"silhouettes estimated from a stratified sample of 2,000 of 1,000,000 texts (95% intervals)"``, or None."""
        if not self.sampled:
            return None
        return (f"{self.metric} silhouettes estimated from a stratified sample of {self.silhouette_sample:,} of "
                f"{self.n:,} texts (95% intervals)")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (intervals as two-item lists)."""
        d = asdict(self)
        d["intervals"] = {k: [float(a), float(b)] for k, (a, b) in self.intervals.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeometryReport:
        """Inverse of ``to_dict`` and of its JSON form (a NaN stored as null comes back as NaN);
        unknown keys are an error (a baseline from another version). A dict without ``seed`` was written
        before reports recorded it, when geomcheck's KMeans seed was ``LEGACY_KMEANS_SEED`` (0)."""
        from geomcheck._json import nan_if_none

        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InvalidInputError(f"GeometryReport.from_dict: unknown fields {unknown}; known: {sorted(names)}")
        d = {k: (nan_if_none(v) if k in _FLOAT_FIELDS and v is None else v) for k, v in d.items()}
        d.setdefault("seed", LEGACY_KMEANS_SEED)
        d["intervals"] = {k: (nan_if_none(v[0]), nan_if_none(v[1])) for k, v in (d.get("intervals") or {}).items()}
        d["per_family_silhouette"] = {str(k): nan_if_none(v) for k, v in (d.get("per_family_silhouette") or {}).items()}
        try:
            return cls(**d)
        except TypeError as exc:
            raise InvalidInputError(f"GeometryReport.from_dict: {exc}") from None

    def to_json_dict(self) -> dict[str, Any]:
        """``to_dict`` as strict JSON: NaN (a metric undefined on this data) becomes null."""
        from geomcheck._json import jsonable

        return jsonable(self.to_dict())

    def worst_families(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` families with the lowest mean silhouette."""
        items = [(n, v) for n, v in self.per_family_silhouette.items() if not math.isnan(v)]
        return sorted(items, key=lambda t: t[1])[:k]


_FLOAT_FIELDS = {f.name for f in fields(GeometryReport) if f.type == "float"}
