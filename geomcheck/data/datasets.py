"""Datasets of sequence texts: the paper's protocol, the held-out families, any mix of families.

``paper_dataset()`` is the paper's exact 24 texts: per family, sequence k holds terms
``[k*50, (k+1)*50)`` rendered ``"2, 4, 6"``; ``heldout_dataset()`` the same over the
families the paper never used, each text cut at ``HELDOUT_MAX_CHARS`` characters (at a term
boundary) so that every registry model sees it whole; ``make_dataset`` any families, counts
and lengths.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from geomcheck.data.families import (
    HELDOUT_FAMILIES,
    PAPER_FAMILIES,
    Family,
    as_index,
    get_family,
)
from geomcheck.errors import InvalidInputError, TermTooLongError

__all__ = ["SequenceDataset", "render", "to_decimal", "make_dataset", "paper_dataset", "heldout_dataset", "MAX_TERMS",
           "HELDOUT_MAX_CHARS"]

MAX_TERMS = 2_000_000  # make_dataset's default limit on terms computed (per_family x length x families)
# The held-out texts' character budget (terms: 50 a text, as the paper's). Uncut, the fast-growing families
# (factorial, Catalan, powers of two, Fibonacci, Lucas) rendered texts of up to 15,983 characters: a model with
# max_seq_length 2048 embedded thousands of tokens per text, one with 512 or 256 saw other (cut) texts, so two
# models' held-out numbers were not measured on the same input. No ASCII text takes more than one token a
# character with any tokenizer (digit-level ones, Gemma's, Qwen's, SmolLM2's, reach it; WordPiece is ~0.6), so
# 400 characters stay whole under 512 tokens with room for special tokens and a prompt, and under the 256 of
# all-MiniLM-L6-v2 (241 at most, measured; tests/test_datasets.py checks both with the local tokenizers).
HELDOUT_MAX_CHARS = 400

def to_decimal(n: int) -> str:
    """``str(n)`` without CPython's 4300-digit limit on int -> str conversion."""
    if n.bit_length() < 12_000:
        return str(n)
    if n < 0:
        return "-" + to_decimal(-n)
    k = int(n.bit_length() * 0.30103) // 2  # about half the decimal digits
    hi, lo = divmod(n, 10**k)
    return to_decimal(hi) + to_decimal(lo).zfill(k)


def render(terms: Sequence[int], *, sep: str = ", ", max_chars: int = 20_000) -> tuple[str, tuple[int, ...]]:
    """``(text, kept)``: the terms joined by ``sep``, cut at a term boundary so that
    ``len(text) <= max_chars``; ``kept`` are the terms the text holds."""
    parts: list[str] = []
    total = 0
    for t in terms:
        add = len(sep) if parts else 0
        if total + add + t.bit_length() * 0.30102 > max_chars + 1:  # clearly too long: no str()
            break
        s = to_decimal(t)
        if total + add + len(s) > max_chars:
            break
        parts.append(s)
        total += add + len(s)
    if not parts:
        raise TermTooLongError(
            f"the first term has {len(to_decimal(terms[0])) if terms else 0} digits, more than "
            f"max_chars={max_chars}; raise max_chars or use an earlier start"
        )
    return sep.join(parts), tuple(terms[: len(parts)])


@dataclass(frozen=True, eq=False)
class SequenceDataset:
    """Texts of integer sequences with their family labels.

    ``texts[i]`` renders ``sequences[i]`` (the terms it holds, after any ``max_chars``
    cut), which are terms ``starts[i] …`` of family ``label_names[labels[i]]``;
    ``families[j]`` is the ``Family`` of label j.
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    sequences: tuple[tuple[int, ...], ...]
    families: tuple[Family, ...]
    starts: tuple[int, ...]

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels, dtype=np.int64)
        labels.flags.writeable = False
        object.__setattr__(self, "labels", labels)
        n = len(self.texts)
        if not (len(labels) == len(self.sequences) == len(self.starts) == n):
            raise InvalidInputError(
                f"SequenceDataset fields disagree in length: {n} texts, {len(labels)} labels, "
                f"{len(self.sequences)} sequences, {len(self.starts)} starts"
            )
        if n and (labels.min() < 0 or labels.max() >= len(self.label_names)):
            raise InvalidInputError(f"labels must lie in [0, {len(self.label_names)}), got {labels}")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def hint(self) -> str:
        """What a failing check should suggest for sequence texts."""
        return "number magnitude or text length are usual"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SequenceDataset):
            return NotImplemented
        return (
            self.texts == other.texts
            and np.array_equal(self.labels, other.labels)
            and self.label_names == other.label_names
            and self.starts == other.starts
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"SequenceDataset({len(self)} texts, {len(self.label_names)} families: "
            f"{', '.join(self.label_names)})"
        )


def make_dataset(
    families: Iterable[str | Family] | str,
    per_family: int,
    length: int,
    *,
    start: int = 0,
    sep: str = ", ",
    max_chars: int = 20_000,
    max_terms: int | None = None,
    warn_duplicates: bool = True,
) -> SequenceDataset:
    """``per_family`` texts per family; sequence k holds terms ``[start + k*length, start + (k+1)*length)``.

    Labels follow the order of ``families``; texts are grouped by family. At most ``max_terms``
    terms in all (default ``MAX_TERMS``, 2,000,000: 22 families x 1,000 texts x 90 terms);
    more is refused before any work. A text that stands for two families (short windows of
    overlapping sequences) is announced with a ``UserWarning`` unless ``warn_duplicates=False``.
    """
    if max_terms is None:
        max_terms = MAX_TERMS
    fams = [get_family(f) for f in ([families] if isinstance(families, (str, Family)) else families)]
    if not fams:
        raise InvalidInputError("make_dataset needs at least one family; see geomcheck.sequences.FAMILIES")
    names = [f.name for f in fams]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInputError(f"families must be distinct; repeated: {', '.join(dupes)}")
    per_family = as_index("per_family", per_family, 1)
    length = as_index("length (terms per sequence)", length, 1)
    start = as_index("start (0-based index of the first term)", start, 0)
    max_chars = as_index("max_chars", max_chars, 1)
    max_terms = as_index("max_terms", max_terms, 1)
    n_texts, n_terms = len(fams) * per_family, len(fams) * per_family * length
    if n_terms > max_terms:  # refused up front: past this it runs for hours or runs out of memory
        raise InvalidInputError(
            f"make_dataset would compute {n_terms:,} terms ({len(fams)} famil{'y' if len(fams) == 1 else 'ies'} x {per_family:,} texts x "
            f"{length:,} terms, {n_texts:,} texts); the limit is {max_terms:,} terms. Pass max_terms= to raise it "
            f"(a text's embedding sees at most a few hundred terms anyway)")
    if not isinstance(sep, str) or not sep or any(c.isdigit() or c == "-" for c in sep):
        raise InvalidInputError(f"sep must be a non-empty string without digits or '-', got {sep!r}")

    texts, labels, seqs, starts = [], [], [], []
    for label, fam in enumerate(fams):
        terms = fam.terms(start, per_family * length)
        for k in range(per_family):
            text, kept = render(terms[k * length : (k + 1) * length], sep=sep, max_chars=max_chars)
            texts.append(text)
            labels.append(label)
            seqs.append(kept)
            starts.append(start + k * length)
    if warn_duplicates:
        _warn_duplicates(texts, labels, names)
    return SequenceDataset(tuple(texts), np.array(labels), tuple(names), tuple(seqs), tuple(fams), tuple(starts))


def _warn_duplicates(texts: Sequence[str], labels: Sequence[int], names: Sequence[str]) -> None:
    """Say so when the same text stands for two families (short windows of overlapping sequences):
    no model can place one text in two clusters, and a metric would blame the model."""
    seen: dict[str, set[str]] = {}
    for t, lab in zip(texts, labels):
        seen.setdefault(t, set()).add(names[lab])
    shared = {t: fams for t, fams in seen.items() if len(fams) > 1}
    if shared:
        import warnings

        pairs = sorted({" & ".join(sorted(f)) for f in shared.values()})
        many = len(shared) > 1
        warnings.warn(f"geomcheck: {len(shared)} text{'s occur' if many else ' occurs'} in more than one family "
                      f"({'; '.join(pairs)}), "
                      f"e.g. {next(iter(shared))!r}; use longer windows (length) or a later start",
                      stacklevel=3)


def paper_dataset(
    per_family: int = 4,
    length: int = 50,
    families: Iterable[str | Family] = PAPER_FAMILIES,
    max_chars: int = 20_000,
) -> SequenceDataset:
    """The paper's dataset: 4 sequences of 50 terms for each of its six families, 24 texts."""
    return make_dataset(families, per_family, length, max_chars=max_chars)


def heldout_dataset(
    per_family: int = 4,
    length: int = 50,
    families: Iterable[str | Family] = HELDOUT_FAMILIES,
    max_chars: int = HELDOUT_MAX_CHARS,
    *,
    start: int = 0,
) -> SequenceDataset:
    """Like ``paper_dataset`` over families the paper never used (generalisation probe), each text cut at
    ``max_chars`` characters at a term boundary (``HELDOUT_MAX_CHARS``, 400: every registry tokenizer sees it
    whole; a fast-growing family's later windows hold fewer terms, the factorial's last one a single term)."""
    fams = [get_family(f) for f in ([families] if isinstance(families, (str, Family)) else families)]
    in_paper = [f.name for f in fams if f.paper]
    if in_paper:
        raise InvalidInputError(
            f"heldout_dataset takes families outside the paper; {', '.join(in_paper)} "
            f"{'is a paper family' if len(in_paper) == 1 else 'are paper families'} (use make_dataset to mix them)"
        )
    return make_dataset(fams, per_family, length, start=start, max_chars=max_chars)
