"""2-D projections of an embedding space for pictures: t-SNE as the paper ran it, and PCA.

The paper (PAPER.md, protocol step 3): t-SNE to 2-D with perplexity 30, or 10 when there
are fewer than 50 samples, 1000 iterations, PCA initialisation. Projections are for
looking only: no metric is computed on them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geomcheck.errors import InvalidInputError

__all__ = ["MAX_POINTS", "METHODS", "Projection", "joint_projections", "project", "project_pca", "project_tsne", "thin",
           "tsne_perplexity"]

log = logging.getLogger("geomcheck")

METHODS = ("tsne", "pca")
# A picture shows at most this many points: a stratified sample of a larger set (t-SNE of 10k points
# takes about a minute on 2 cores; of a million, hours, and the scatter would be a blot anyway).
MAX_POINTS = 10_000


def thin(labels: np.ndarray, max_points: int = MAX_POINTS, seed: int = 0) -> np.ndarray | None:
    """Sorted indices of a stratified sample of ``max_points`` of the points (each label keeps its share,
    largest remainders rounded up, at least one point a label), or None when all of them fit. Same labels
    and seed, same sample."""
    n = len(labels)
    if n <= max_points:
        return None
    codes = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)
    sizes = np.bincount(codes)
    share = max_points * sizes / n
    want = np.minimum(sizes, np.maximum(1, np.floor(share).astype(np.int64)))
    left = max_points - int(want.sum())  # largest remainders first, so that exactly max_points are drawn
    if left > 0:
        room = np.flatnonzero(want < sizes)
        want[room[np.argsort(-(share[room] - np.floor(share[room])), kind="stable")[:left]]] += 1
    rng = np.random.default_rng(seed)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    picks = [order[s + rng.choice(size, size=w, replace=False)] for s, size, w in zip(starts, sizes, want)]
    return np.sort(np.concatenate(picks))


@dataclass(frozen=True)
class Projection:
    """2-D coordinates of ``N`` points and how they were obtained.

    ``estimator`` is the fitted sklearn object (``TSNE`` or ``PCA``); ``perplexity`` is the
    value t-SNE used (None for PCA); ``note`` says why a default was changed (e.g. a
    perplexity clamped for a tiny dataset), else None.
    """

    method: str
    coords: np.ndarray
    estimator: Any
    axis_labels: tuple[str, str]
    description: str
    perplexity: float | None = None
    max_iter: int | None = None
    seed: int = 0
    note: str | None = None


def tsne_perplexity(n: int) -> float:
    """The paper's rule: perplexity 30, or 10 when there are fewer than 50 samples."""
    return 30.0 if n >= 50 else 10.0


def project_tsne(X: np.ndarray, *, perplexity: float | None = None, max_iter: int = 1000,
                 seed: int = 0, progress: bool | None = None) -> Projection:
    """t-SNE of ``X`` to 2-D: ``sklearn.manifold.TSNE(perplexity, max_iter, random_state=seed,
    init="pca")`` with the paper's perplexity rule when ``perplexity`` is None.

    t-SNE needs perplexity < N. An explicit value that breaks this is an error; the default
    for a tiny dataset (N <= 10) is clamped to max(1, (N - 1) / 3), said in ``note``.
    ``progress``: the elapsed time on stderr while a t-SNE of 2,000 points or more runs (None:
    when stderr is a terminal).
    """
    from sklearn.manifold import TSNE

    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n < 3 or X.ndim != 2 or X.shape[1] < 2:
        raise InvalidInputError(f"t-SNE needs at least 3 points of dimension >= 2, got shape {X.shape}")
    if not isinstance(max_iter, int) or max_iter < 250:
        raise InvalidInputError(f"max_iter must be an integer >= 250 (sklearn's minimum), got {max_iter!r}")
    note = None
    if perplexity is None:
        perplexity = tsne_perplexity(n)
        if perplexity >= n:
            clamped = max(1.0, (n - 1) / 3)
            note = f"perplexity {perplexity:g} >= {n} points; clamped to {clamped:g}"
            log.warning("geomcheck: t-SNE %s", note)
            perplexity = clamped
    else:
        if not isinstance(perplexity, (int, float)) or isinstance(perplexity, bool) or not perplexity > 0:
            raise InvalidInputError(f"perplexity must be a positive number, got {perplexity!r}")
        if perplexity >= n:
            raise InvalidInputError(
                f"t-SNE perplexity must be smaller than the number of points: perplexity={perplexity:g}, "
                f"N={n}; pass a smaller perplexity or leave it out for the paper's rule "
                f"(30, or 10 below 50 points)"
            )
    perplexity = float(perplexity)
    from geomcheck.metrics._progress import heartbeat

    tsne = TSNE(n_components=2, perplexity=perplexity, max_iter=max_iter, random_state=seed, init="pca")
    with heartbeat(f"geomcheck: t-SNE of {n:,} points", progress if n >= 2_000 else False):
        coords = tsne.fit_transform(X)
    return Projection(
        method="tsne",
        coords=np.asarray(coords),
        estimator=tsne,
        axis_labels=("t-SNE 1", "t-SNE 2"),
        description=f"t-SNE, perplexity {perplexity:g}, {max_iter} iterations, seed {seed}",
        perplexity=perplexity,
        max_iter=max_iter,
        seed=seed,
        note=note,
    )


def project_pca(X: np.ndarray, *, seed: int = 0) -> Projection:
    """First two principal components of ``X`` (``sklearn.decomposition.PCA(2)``); the axis
    labels give each component's share of the variance."""
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 2 or X.shape[1] < 2:
        raise InvalidInputError(f"PCA to 2-D needs at least 2 points of dimension >= 2, got shape {X.shape}")
    pca = PCA(n_components=2, random_state=seed)
    coords = pca.fit_transform(X)
    ratio = np.nan_to_num(pca.explained_variance_ratio_)
    labels = (f"PC1 ({100 * ratio[0]:.1f}% of variance)", f"PC2 ({100 * ratio[1]:.1f}% of variance)")
    return Projection(
        method="pca",
        coords=np.asarray(coords),
        estimator=pca,
        axis_labels=labels,
        description=f"PCA, {100 * ratio[:2].sum():.1f}% of variance in 2-D",
        seed=seed,
    )


def project(X: np.ndarray, method: str, *, perplexity: float | None = None, max_iter: int = 1000,
            seed: int = 0) -> Projection:
    """``project_tsne`` or ``project_pca`` by name (``METHODS``)."""
    if method == "tsne":
        return project_tsne(X, perplexity=perplexity, max_iter=max_iter, seed=seed)
    if method == "pca":
        return project_pca(X, seed=seed)
    raise InvalidInputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def joint_projections(Xs: Sequence[np.ndarray], method: str, *, perplexity: float | None = None, max_iter: int = 1000,
                      seed: int = 0, first: str = "the first") -> list[Projection] | None:
    """One projection for several spaces of the same texts: a t-SNE of all their points together, or a
    PCA fitted on the first (the base) and applied to the others. None when the dimensions differ."""
    from dataclasses import replace

    Xs = [np.asarray(X, dtype=np.float64) for X in Xs]
    if len({X.shape[1] for X in Xs}) != 1:
        return None
    if method == "pca":
        base = project_pca(Xs[0], seed=seed)
        what = f"PCA fitted on {first}, {base.description.split(', ', 1)[1]}"
        return [replace(base, coords=np.asarray(base.estimator.transform(X)), description=what) for X in Xs]
    whole = project(np.vstack(Xs), method, perplexity=perplexity, max_iter=max_iter, seed=seed)
    bounds = np.cumsum([0] + [len(X) for X in Xs])
    return [replace(whole, coords=whole.coords[a:b], description=f"joint {whole.description}")
            for a, b in zip(bounds[:-1], bounds[1:])]
