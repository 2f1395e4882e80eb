"""Hypothesis strategies over sequence families, windows of terms, texts and datasets.

In the style of ``hypothesis.extra.numpy``: small composable strategies with sensible
defaults. They shrink toward the paper families (listed first), small starts and short
windows, so a failing example reads like ``prime, start 0, 3 terms``.

- ``families``, ``sequences``, ``sequence_texts``, ``datasets``: sequence families, windows of
  their terms, rendered texts, sequence datasets (``SequenceDataset``);
- ``text_datasets``: labelled texts (``TextDataset``), always valid input for the metrics
  (>= 2 labels, >= 2 texts each, no duplicate texts), shrinking toward 2 labels x 2 short texts;
- ``format_changes``: the name of a formatting-only change (``geomcheck.data.reformat``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import reject
from hypothesis import strategies as st

from geomcheck.errors import InvalidInputError, TermTooLongError
from geomcheck.data import (
    FAMILIES,
    SEQUENCE_CHANGES,
    TEXT_CHANGES,
    Family,
    SequenceDataset,
    TextDataset,
    get_family,
    make_dataset,
    render,
    to_decimal,
)

__all__ = ["SequenceWindow", "families", "sequences", "sequence_texts", "datasets", "text_datasets",
           "format_changes"]


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


# Default label names and their disjoint vocabularies: texts of different labels share no word,
# so the classes differ in content, as a team's topics would.
_TOPICS: dict[str, tuple[str, ...]] = {
    "animals": ("cat", "dog", "horse", "bird", "fish", "cow", "sheep", "goat"),
    "weather": ("rain", "snow", "wind", "sun", "cloud", "storm", "fog", "frost"),
    "food": ("bread", "cheese", "apple", "soup", "rice", "butter", "honey", "salt"),
    "sports": ("football", "tennis", "golf", "rugby", "hockey", "cricket", "boxing", "rowing"),
    "music": ("guitar", "piano", "violin", "drum", "song", "choir", "melody", "flute"),
    "colours": ("red", "blue", "green", "yellow", "purple", "orange", "pink", "brown"),
    "tools": ("hammer", "saw", "drill", "wrench", "chisel", "shovel", "rake", "pliers"),
    "travel": ("train", "airport", "ticket", "hotel", "suitcase", "passport", "map", "luggage"),
}
_VOCABULARIES = tuple(_TOPICS.values())


def _sentences(vocabulary: tuple[str, ...]) -> st.SearchStrategy[str]:
    """2-6 words of ``vocabulary`` joined by single spaces: ``"cat dog horse"``."""
    return st.lists(st.sampled_from(vocabulary), min_size=2, max_size=6).map(" ".join)


def _checked_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"text_datasets(texts=...) drew {text!r}; the texts strategy must give non-empty, "
                                f"non-whitespace str (add .filter(str.strip))")
    return text


def text_datasets(
    *,
    labels: Sequence[str] | st.SearchStrategy[str] | None = None,
    min_labels: int = 2,
    max_labels: int = 4,
    min_per_label: int = 2,
    max_per_label: int = 6,
    texts: st.SearchStrategy[str] | None = None,
    unique: bool = True,
) -> st.SearchStrategy[TextDataset]:
    """A ``TextDataset`` of ``min_labels … max_labels`` labels with ``min_per_label … max_per_label``
    texts each, grouped in label order; no text occurs twice when ``unique``.

    ``labels``: a sequence of names to draw the labels from (kept in its order), a strategy of
    one name (drawn until the labels are distinct), or None: topics ("animals", "weather", …).
    ``texts``: a strategy of non-empty str, or None: 2-6 lowercase words from a vocabulary of
    the label's own (label k of the dataset uses the k-th topic's words), so classes differ.
    Shrinks toward 2 labels x 2 texts of 2 words.
    """
    if min_labels < 2 or max_labels < min_labels:
        raise InvalidInputError(f"text_datasets: need 2 <= min_labels <= max_labels (the metrics need two "
                                f"labels), got min_labels={min_labels}, max_labels={max_labels}")
    if min_per_label < 2 or max_per_label < min_per_label:
        raise InvalidInputError(f"text_datasets: need 2 <= min_per_label <= max_per_label (a label needs two "
                                f"texts), got min_per_label={min_per_label}, max_per_label={max_per_label}")
    if texts is not None and not isinstance(texts, st.SearchStrategy):
        raise InvalidInputError(f"text_datasets: texts must be a Hypothesis strategy of str or None, "
                                f"got {type(texts).__name__}")
    if labels is None:
        labels = tuple(_TOPICS)
    if isinstance(labels, st.SearchStrategy):
        names_st = st.lists(labels, min_size=min_labels, max_size=max_labels, unique=True)
        most = max_labels
    else:
        if isinstance(labels, str):
            raise InvalidInputError(f"text_datasets: labels must be a sequence of names, got the string "
                                    f"{labels!r}; wrap it in a list")
        pool = [str(n) for n in labels]
        if len(set(pool)) != len(pool) or not all(n.strip() for n in pool):
            raise InvalidInputError(f"text_datasets: label names must be distinct and non-empty, got {pool}")
        if len(pool) < min_labels:
            raise InvalidInputError(f"text_datasets: min_labels={min_labels} but only {len(pool)} label name(s) "
                                    f"given ({', '.join(pool)}); give more names or lower min_labels")
        most = min(max_labels, len(pool))
        names_st = st.lists(st.sampled_from(pool), min_size=min_labels, max_size=most, unique=True).map(
            lambda names: sorted(names, key=pool.index))
    if texts is None and most > len(_VOCABULARIES):
        raise InvalidInputError(f"text_datasets: the default texts have {len(_VOCABULARIES)} vocabularies, fewer "
                                f"than max_labels={most}; lower max_labels or pass texts=")

    @st.composite
    def dataset(draw) -> TextDataset:
        names = [str(n) for n in draw(names_st)]
        if not all(n.strip() for n in names):
            raise InvalidInputError(f"text_datasets(labels=...) drew an empty label name in {names}")
        counts = [draw(st.integers(min_per_label, max_per_label)) for _ in names]
        if texts is None:  # disjoint vocabularies: unique within each label is unique overall
            out = [t for k, n in enumerate(counts)
                   for t in draw(st.lists(_sentences(_VOCABULARIES[k]), min_size=n, max_size=n, unique=unique))]
        else:
            total = sum(counts)
            out = [_checked_text(t) for t in draw(st.lists(texts, min_size=total, max_size=total, unique=unique))]
        label_ids = [k for k, n in enumerate(counts) for _ in range(n)]
        return TextDataset(tuple(out), label_ids, tuple(names), source="geomcheck.strategies.text_datasets")

    return dataset()


def format_changes(kind: str = "text") -> st.SearchStrategy[str]:
    """The name of a formatting-only change for ``kind`` "text" (``TEXT_CHANGES``) or "sequence"
    (``SEQUENCE_CHANGES``); apply it with ``geomcheck.data.reformat``."""
    if kind == "text":
        return st.sampled_from(TEXT_CHANGES)
    if kind == "sequence":
        return st.sampled_from(SEQUENCE_CHANGES)
    raise InvalidInputError(f"format_changes: kind must be 'text' or 'sequence', got {kind!r}")
