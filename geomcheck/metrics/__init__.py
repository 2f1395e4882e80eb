"""Geometry metrics of embeddings: cluster quality of one space, similarity of two, their uncertainty.

Pure functions on arrays (or an ``EmbeddedDataset``): ``silhouette``, ``davies_bouldin``,
``calinski_harabasz``, ``kmeans_labels``, ``cluster_report`` -> ``GeometryReport``;
``linear_cka``, ``mutual_knn``, ``procrustes_distance``; ``bootstrap_ci`` -> ``Interval``
and ``permutation_pvalue``. Importing this package is light: numpy only; sklearn, scipy
and torch load inside the functions that need them.
"""

from __future__ import annotations

from geomcheck.metrics.cluster import (
    KMEANS_RESTARTS,
    METRICS,
    calinski_harabasz,
    cluster_report,
    davies_bouldin,
    kmeans_labels,
    silhouette,
    silhouette_samples,
)
from geomcheck.metrics._sampled import EXACT_MAX_N
from geomcheck.metrics.geometry import KMEANS_SEED, GeometryReport
from geomcheck.metrics.similarity import linear_cka, mutual_knn, procrustes_distance
from geomcheck.metrics.stats import Interval, bootstrap_ci, permutation_pvalue

__all__ = [
    "EXACT_MAX_N",
    "GeometryReport",
    "Interval",
    "KMEANS_RESTARTS",
    "KMEANS_SEED",
    "METRICS",
    "bootstrap_ci",
    "calinski_harabasz",
    "cluster_report",
    "davies_bouldin",
    "kmeans_labels",
    "linear_cka",
    "mutual_knn",
    "permutation_pvalue",
    "procrustes_distance",
    "silhouette",
    "silhouette_samples",
]
