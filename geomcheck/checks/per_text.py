"""The per-text silhouettes a baseline stores and a comparison pairs: of every text, or of a stratified sample.

Up to ``exact_max`` texts (``geomcheck.metrics.EXACT_MAX_N`` unless told otherwise) a baseline stores
the silhouette of every text, and a comparison pairs all of them. Above, the Euclidean silhouette of
every text is O(N^2 d), out of reach at a few hundred thousand texts: the baseline stores the exact
silhouettes (each against all N texts) of a stratified sample of texts, ``sample_rows``, drawn with
the baseline's KMeans seed, and records which texts they are (``silhouette_rows`` in the file); a
later comparison recomputes the silhouettes of those same texts and pairs them, and its interval is
the stratified sample's (``geomcheck.metrics._sampled``), never a bootstrap over O(N^2) work. The
cosine silhouette is O(N k d) and is always stored whole.
"""

from __future__ import annotations

import numpy as np

__all__ = ["per_text_silhouettes", "sample_rows", "sampled_mean", "stratified_rows"]


def stratified_rows(labels: np.ndarray, exact_max: int, seed: int) -> np.ndarray:
    """The sorted indices of ``default_sample_size(N, exact_max)`` texts drawn within each label."""
    from geomcheck.metrics._sampled import default_sample_size, stratified_sample

    codes = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)
    return stratified_sample(codes, default_sample_size(codes.size, exact_max), seed)


def sample_rows(labels: np.ndarray, metric: str, exact_max: int, seed: int) -> np.ndarray | None:
    """The texts whose silhouettes stand for all of them (``stratified_rows``), or None when every
    text's silhouette is computed (cosine, or at most ``exact_max`` texts)."""
    if metric != "euclidean" or len(labels) <= exact_max:
        return None
    return stratified_rows(labels, exact_max, seed)


def per_text_silhouettes(X: np.ndarray, labels: np.ndarray, metric: str = "euclidean",
                         rows: np.ndarray | None = None) -> np.ndarray:
    """The silhouette of each text (float64 throughout), or of the texts ``rows`` only (each exact
    against all texts, O(len(rows) N d))."""
    from geomcheck.metrics import silhouette_samples

    if rows is None:
        return np.asarray(silhouette_samples(X, labels, precision="float64", metric=metric), dtype=np.float64)
    from geomcheck.metrics._progress import Progress
    from geomcheck.metrics._sampled import sampled_silhouettes

    codes = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1).astype(np.int64)
    X = np.asarray(X)
    what = f"geomcheck: euclidean silhouettes of {rows.size:,} sampled texts against {X.shape[0]:,}"
    with Progress(what, float(rows.size) * X.shape[0], None, unit="pairs") as prog:
        return np.asarray(sampled_silhouettes(X, [codes], rows, False, prog)[0], dtype=np.float64)


def sampled_mean(values: np.ndarray, labels: np.ndarray, rows: np.ndarray, confidence: float = 0.95):
    """The stratified estimate (``geomcheck.metrics._sampled.Estimate``) of the mean over all texts of a
    per-text quantity known at ``rows`` (``values[i]`` belongs to text ``rows[i]``)."""
    from geomcheck.metrics._sampled import stratified_mean

    codes = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)
    return stratified_mean(np.asarray(values, dtype=np.float64), codes[rows], np.bincount(codes).astype(np.float64),
                           confidence)
