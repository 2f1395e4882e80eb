"""Input checks shared by the metrics: arrays and options in, clear ``InvalidInputError`` out.

Every public metric calls ``as_xy`` (points + labels) or ``as_matrix`` (points only) first,
and the ``check_*`` functions for its options, so a bad input fails here with a message
that names the problem and the fix, never deep inside sklearn or torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from geomcheck import _device
from geomcheck.errors import InvalidInputError
from geomcheck.metrics._kernels import METRICS, PRECISIONS

__all__ = [
    "as_matrix",
    "as_xy",
    "encode_labels",
    "check_n_labels",
    "check_metric",
    "check_precision",
    "check_block_size",
    "check_device",
    "check_int",
]


def _to_numpy(a: Any) -> Any:
    """A torch tensor (any device) as numpy, without importing torch; anything else as is."""
    if hasattr(a, "detach") and hasattr(a, "cpu") and hasattr(a, "numpy"):
        return a.detach().cpu().numpy()
    return a


def as_matrix(X: Any, *, what: str = "X", min_rows: int = 1, float32_ok: bool = False) -> np.ndarray:
    """``X`` as a finite float64, 2-D, C-contiguous array of shape (n_samples, n_features).

    ``float32_ok``: a float32 array stays float32 (no copy: the chunked kernels read it as it
    is, where a float64 copy of a million embeddings would take 3 GB).
    """
    X = _to_numpy(X)
    try:
        A = np.asarray(X)
    except Exception as exc:  # ragged nested lists and the like
        raise InvalidInputError(
            f"{what}: could not turn the input into an array ({exc}); pass a 2-D array of "
            f"shape (n_samples, n_features)"
        ) from None
    if A.dtype == object or A.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"{what}: expected a numeric array of shape (n_samples, n_features), got dtype "
            f"{A.dtype}; pass embeddings as floats (rows with different lengths also end up here)"
        )
    if A.ndim == 1:
        raise InvalidInputError(
            f"{what}: expected a 2-D array (n_samples, n_features), got a 1-D array of length "
            f"{A.shape[0]}; use X.reshape(-1, 1) for one feature per sample, or X.reshape(1, -1) "
            f"for a single sample"
        )
    if A.ndim != 2:
        raise InvalidInputError(
            f"{what}: expected a 2-D array (n_samples, n_features), got shape {A.shape}; "
            f"flatten the extra axes, e.g. X.reshape(len(X), -1)"
        )
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise InvalidInputError(
            f"{what}: empty input of shape {A.shape}; metrics need at least one sample with at "
            f"least one feature"
        )
    if A.shape[0] < min_rows:
        raise InvalidInputError(f"{what}: needs at least {min_rows} samples, got {A.shape[0]}")
    A = np.ascontiguousarray(A, dtype=np.float32 if float32_ok and A.dtype == np.float32 else np.float64)
    # One matrix-vector product finds any NaN/inf (it propagates into its row's sum) without an N x d
    # boolean temporary; only a row that does not sum to a finite number is looked at element-wise.
    with np.errstate(over="ignore", invalid="ignore"):
        suspect = ~np.isfinite(A @ np.ones(A.shape[1], dtype=A.dtype))
    finite = ~suspect
    if suspect.any():
        finite[suspect] = np.isfinite(A[suspect]).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InvalidInputError(
            f"{what}: {bad.size} of {A.shape[0]} rows contain NaN or inf (first bad row: {int(bad[0])}); "
            f"drop those rows (and their labels) or re-embed them, e.g. with dtype='float32'"
        )
    return A


def encode_labels(labels: Any, *, what: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)``: codes in 0..k-1 with ``uniques[codes] == labels``.

    Numbers are ordered by value (as sklearn's ``LabelEncoder``); anything else (strings,
    mixed hashables) in order of first appearance.
    """
    labels = _to_numpy(labels)
    if isinstance(labels, (str, bytes)):
        raise InvalidInputError(f"{what}: expected one label per sample, got a single string {labels!r}")
    try:
        arr = np.asarray(labels)
    except Exception:
        arr = np.empty(len(labels), dtype=object)
        arr[:] = list(labels)
    if arr.ndim == 0:
        raise InvalidInputError(f"{what}: expected a 1-D sequence of labels, got the scalar {labels!r}")
    if arr.ndim != 1:
        if arr.dtype != object and arr.ndim == 2 and 1 in arr.shape:
            arr = arr.reshape(-1)
        else:
            raise InvalidInputError(
                f"{what}: expected a 1-D sequence with one label per sample, got shape {arr.shape}; "
                f"one-hot labels can be turned into classes with labels.argmax(axis=1)"
            )
    if arr.dtype.kind in "biuf":
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            i = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise InvalidInputError(f"{what}: label {i} is {arr[i]}; every sample needs a finite label")
        if arr.dtype.kind == "b":
            arr = arr.astype(np.int64)
        uniques, codes = np.unique(arr, return_inverse=True)
        return codes.astype(np.int64).reshape(-1), uniques
    index: dict[Any, int] = {}
    codes = np.empty(arr.shape[0], dtype=np.int64)
    for i, v in enumerate(arr.tolist()):
        try:
            codes[i] = index.setdefault(v, len(index))
        except TypeError:
            raise InvalidInputError(
                f"{what}: label {i} ({v!r}) is not hashable; use strings or integers as labels"
            ) from None
    uniques = np.empty(len(index), dtype=object)
    uniques[:] = list(index)
    return codes, uniques


def check_n_labels(n_labels: int, n_samples: int, *, what: str, min_clusters: int = 2) -> None:
    """sklearn's rule for silhouette / Davies-Bouldin / Calinski-Harabasz: 2 <= n_labels <= n_samples - 1."""
    if n_labels < min_clusters:
        raise InvalidInputError(
            f"{what}: needs at least {min_clusters} clusters, but all {n_samples} samples carry "
            f"{'the same label' if n_labels == 1 else f'only {n_labels} distinct labels'}; "
            f"pass labels from at least {min_clusters} families"
        )
    if min_clusters >= 2 and n_labels > n_samples - 1:
        raise InvalidInputError(
            f"{what}: {n_samples} samples in {n_labels} clusters; cluster metrics need "
            f"2 <= n_clusters <= n_samples - 1 (here at most {n_samples - 1}), i.e. some cluster "
            f"with two or more samples; embed more samples per family"
        )


def as_xy(
    emb_or_X: Any,
    labels: Any = None,
    *,
    min_clusters: int = 2,
    what: str = "metric",
    label_names: Sequence[Any] | None = None,
    float32_ok: bool = False,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...] | None]:
    """``(X, codes, names)`` from an ``EmbeddedDataset`` (anything with ``.X``, ``.labels``) or ``(X, labels)``.

    ``X`` is float64, 2-D, C-contiguous and finite; ``codes`` is int64 in ``0..k-1``; ``names[c]``
    names code ``c``: ``label_names[label]`` when names are given (the dataset's or the
    argument), the label itself for string labels, ``str(label)`` for numbers. ``names`` is
    None only when the labels already are the codes ``0..k-1`` and no names were given.
    """
    if hasattr(emb_or_X, "X") and hasattr(emb_or_X, "labels"):
        if labels is not None:
            raise InvalidInputError(
                f"{what}: got an embedded dataset and separate labels; pass either the dataset "
                f"alone or (X, labels)"
            )
        X, labels = emb_or_X.X, emb_or_X.labels
        if label_names is None:
            label_names = getattr(emb_or_X, "label_names", None)
    else:
        X = emb_or_X
        if labels is None:
            raise InvalidInputError(
                f"{what}: labels are missing; call it as {what}(X, labels) with one label per row "
                f"of X, or pass an EmbeddedDataset"
            )
    X = as_matrix(X, what=f"{what}: X", float32_ok=float32_ok)
    codes, uniques = encode_labels(labels, what=f"{what}: labels")
    if codes.shape[0] != X.shape[0]:
        raise InvalidInputError(
            f"{what}: X has {X.shape[0]} rows but labels has {codes.shape[0]} entries; pass one "
            f"label per row of X"
        )
    check_n_labels(len(uniques), X.shape[0], what=what, min_clusters=min_clusters)
    names: tuple[str, ...] | None
    if label_names is not None:
        label_names = tuple(label_names)
        if uniques.dtype.kind not in "iu" or uniques.min() < 0 or uniques.max() >= len(label_names):
            raise InvalidInputError(
                f"{what}: label_names has {len(label_names)} entries, so labels must be integers in "
                f"0..{len(label_names) - 1}; got {uniques[:5].tolist()}{'…' if len(uniques) > 5 else ''}"
            )
        names = tuple(str(label_names[int(u)]) for u in uniques)
    elif uniques.dtype.kind in "iu" and np.array_equal(uniques, np.arange(len(uniques))):
        names = None
    else:
        names = tuple(u if isinstance(u, str) else str(u) for u in uniques.tolist())
    return X, codes, names


def check_metric(metric: str) -> str:
    """``metric`` if the silhouette implements it (``METRICS``), else an ``InvalidInputError``."""
    if metric not in METRICS:
        raise InvalidInputError(f"unknown metric {metric!r}; use one of {', '.join(repr(m) for m in METRICS)}")
    return metric


def check_precision(precision: str) -> str:
    """``precision`` if it is one of ``PRECISIONS``, else an ``InvalidInputError``."""
    if precision not in PRECISIONS:
        raise InvalidInputError(
            f"unknown precision {precision!r}; use one of {', '.join(repr(p) for p in PRECISIONS)}"
        )
    return precision


def check_block_size(block_size: int | None) -> int | None:
    """``block_size`` if it is None (automatic) or a positive integer, else an ``InvalidInputError``."""
    if block_size is not None and (
        isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1
    ):
        raise InvalidInputError(f"block_size must be a positive integer or None (automatic), got {block_size!r}")
    return block_size


def check_device(device: Any) -> str:
    """The device name (None: "auto") if ``geomcheck._device.check_device`` takes it and it is not "mps".

    Validates only, without torch: whether CUDA is there is ``_kernels.torch_device``'s question.
    """
    name = _device.check_device(device, what="device")
    if name == "mps":
        # The distance sums run in float64, which MPS does not have.
        raise InvalidInputError("device='mps' is not supported by the metrics (no float64 on MPS); "
                                "use 'auto', 'cpu' or 'cuda'")
    return name


def check_int(value: Any, name: str, lo: int, hi: int | None = None, hint: str = "") -> int:
    """``value`` as an int if it is an integer with ``lo <= value <= hi`` (no upper bound: None).

    ``hint`` is appended to the message, to say where the bounds come from.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name} must be an integer, got {value!r}{hint}")
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo} <= {name} <= {hi}" if hi is not None else f"{name} >= {lo}"
        raise InvalidInputError(f"{name}={value} is out of range: need {rng}{hint}")
    return int(value)
