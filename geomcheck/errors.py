"""Errors a user can cause. Each message says what was wrong and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "GeomcheckError",
    "InvalidInputError",
    "UnknownFamilyError",
    "TermTooLongError",
    "UndecidableMembershipError",
    "ModelNotAvailableError",
    "ModelLoadError",
    "UnknownModelError",
    "EmbeddingError",
    "GeometryAssertionError",
    "MergeError",
    "IncompatibleModelsError",
    "UnknownMergeMethodError",
    "BaselineMismatchError",
    "NonFiniteWeightsError",
    "DiskSpaceError",
    "unknown_name_message",
]


class GeomcheckError(Exception):
    """Base class of every error geomcheck raises on purpose."""


class InvalidInputError(GeomcheckError, ValueError):
    """An argument has the wrong type, shape or range."""


class UnknownFamilyError(GeomcheckError, LookupError):
    """A sequence-family name that is not in the registry."""


class TermTooLongError(InvalidInputError):
    """A single term has more digits than a text may hold (``max_chars``)."""


class UndecidableMembershipError(GeomcheckError):
    """``Family.contains`` on a family whose membership is not known to be decidable."""


class ModelNotAvailableError(GeomcheckError):
    """The weights of a model are not on this machine (no network, or not downloaded)."""


class ModelLoadError(GeomcheckError):
    """A path that is not a model directory, or a model that fails to load."""


class UnknownModelError(GeomcheckError, LookupError):
    """A model name that is neither a registry alias, a local path nor a Hugging Face id."""


class EmbeddingError(GeomcheckError):
    """A model produced unusable embeddings (NaN / inf), or encoding failed."""


class MergeError(InvalidInputError):
    """A merge was asked for with inputs or parameters that cannot work."""


class IncompatibleModelsError(MergeError):
    """The models to merge do not have the same tensor names, shapes or weight files."""


class UnknownMergeMethodError(GeomcheckError, LookupError):
    """A merge-method name that is not in ``geomcheck.merge.METHODS``."""


class BaselineMismatchError(InvalidInputError):
    """A baseline was written for another dataset (other texts, labels or label names) than the one measured."""


class NonFiniteWeightsError(MergeError):
    """A model to merge holds NaN or inf weights: a merge would spread them (linear, slerp) or hide them (ties)."""


class DiskSpaceError(GeomcheckError):
    """Too little free space to write a model (found up front, or the disk filled while writing)."""


class GeometryAssertionError(AssertionError):
    """A geometry check failed: the message says the metric, the value, the threshold and what to look at.

    Not a ``GeomcheckError``: nothing was used wrongly, the model's geometry is off. The
    measured numbers are attributes too, for reports: ``metric``, ``value``, ``threshold``,
    ``interval``, ``model``.
    """

    def __init__(self, message: str, *, metric: str = "", value: float | None = None,
                 threshold: float | None = None, interval: tuple[float, float] | None = None,
                 model: str = ""):
        super().__init__(message)
        self.metric, self.value, self.threshold, self.interval, self.model = metric, value, threshold, interval, model


def unknown_name_message(what: str, name: object, known: Iterable[str]) -> str:
    """``"unknown family 'primes'; did you mean 'prime'? Known: …"``."""
    known = sorted(known)
    msg = f"unknown {what} {name!r}"
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    msg += "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else "."
    return msg + f" Known {what} names: {', '.join(known)}."
