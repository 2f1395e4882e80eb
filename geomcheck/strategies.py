"""Hypothesis strategies over sequence families, windows of terms, texts and datasets.

In the style of ``hypothesis.extra.numpy``: small composable strategies with sensible
defaults. They shrink toward the paper families (listed first), small starts and short
windows, so a failing example reads like ``prime, start 0, 3 terms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import reject
from hypothesis import strategies as st

from geomcheck.errors import InvalidInputError, TermTooLongError
from geomcheck.data import FAMILIES, Family, SequenceDataset, get_family, make_dataset, render, to_decimal

__all__ = ["SequenceWindow", "families", "sequences", "sequence_texts", "datasets"]


@dataclass(frozen=True)
class SequenceWindow:
    """``terms`` = ``family.terms(start, len(terms))``."""

    family: str
    start: int
    terms: tuple[int, ...]

    def text(self, sep: str = ", ") -> str:
        return sep.join(map(to_decimal, self.terms))


def _names(names: Sequence[str | Family] | None) -> list[str]:
    if names is None:
        return list(FAMILIES)  # registry order: the paper's six first, so they are the shrink target
    out = [get_family(n).name for n in names]
    if not out:
        raise InvalidInputError("families(names=...) needs at least one family name")
    return out


def _check_range(what: str, lo: int, hi: int) -> None:
    if lo < 0 or hi < lo:
        raise InvalidInputError(f"{what}: need 0 <= min <= max, got min={lo}, max={hi}")


def families(names: Sequence[str | Family] | None = None) -> st.SearchStrategy[Family]:
    """A ``Family`` from ``names`` (default: every registered family, paper ones first)."""
    return st.sampled_from(_names(names)).map(get_family)


def sequences(
    family: str | Family | st.SearchStrategy[Family] | None = None,
    *,
    min_length: int = 1,
    max_length: int = 50,
    max_start: int = 1_000,
) -> st.SearchStrategy[SequenceWindow]:
    """A window of consecutive terms of one family, ``start`` in ``[0, max_start]``."""
    _check_range("sequences(min_length, max_length)", min_length, max_length)
    if min_length < 1:
        raise InvalidInputError(f"sequences: min_length must be >= 1, got {min_length}")
    _check_range("sequences(max_start)", 0, max_start)
    if family is None:
        fam_st = families()
    elif isinstance(family, st.SearchStrategy):
        fam_st = family
    else:
        fam_st = st.just(get_family(family))

    @st.composite
    def window(draw) -> SequenceWindow:
        fam = draw(fam_st)
        start = draw(st.integers(0, max_start))
        length = draw(st.integers(min_length, max_length))
        return SequenceWindow(fam.name, start, tuple(fam.terms(start, length)))

    return window()


def sequence_texts(
    family: str | Family | st.SearchStrategy[Family] | None = None,
    *,
    min_length: int = 1,
    max_length: int = 50,
    max_start: int = 1_000,
    sep: str = ", ",
    max_chars: int = 20_000,
) -> st.SearchStrategy[str]:
    """A rendered window, ``"2, 3, 5"``, cut at a term boundary to ``max_chars``.

    Windows whose first term alone is longer than ``max_chars`` are skipped.
    """
    windows = sequences(family, min_length=min_length, max_length=max_length, max_start=max_start)
    return windows.filter(lambda w: len(to_decimal(w.terms[0])) <= max_chars).map(
        lambda w: render(w.terms, sep=sep, max_chars=max_chars)[0]
    )


def datasets(
    min_families: int = 2,
    max_families: int = 6,
    *,
    names: Sequence[str | Family] | None = None,
    per_family: int | st.SearchStrategy[int] = st.integers(1, 4),
    length: int | st.SearchStrategy[int] = st.integers(1, 20),
    max_start: int = 1_000,
    max_chars: int = 20_000,
) -> st.SearchStrategy[SequenceDataset]:
    """A ``SequenceDataset`` over ``min_families … max_families`` distinct families."""
    pool = _names(names)
    _check_range("datasets(min_families, max_families)", min_families, max_families)
    if min_families < 1 or min_families > len(pool):
        raise InvalidInputError(
            f"datasets: min_families must lie in [1, {len(pool)}] (families available), got {min_families}"
        )
    per_st = per_family if isinstance(per_family, st.SearchStrategy) else st.just(per_family)
    len_st = length if isinstance(length, st.SearchStrategy) else st.just(length)

    @st.composite
    def dataset(draw) -> SequenceDataset:
        fams = draw(st.lists(st.sampled_from(pool), min_size=min_families,
                             max_size=min(max_families, len(pool)), unique=True))
        try:
            # arbitrary windows share texts across families often (short ones of "1, 2, …"): expected
            # here, where the data themselves are tested, so not announced on every example
            return make_dataset(
                fams, draw(per_st), draw(len_st), start=draw(st.integers(0, max_start)), max_chars=max_chars,
                warn_duplicates=False,
            )
        except TermTooLongError:  # a fast-growing family far out, with a small max_chars
            reject()

    return dataset()
