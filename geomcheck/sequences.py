"""Integer-sequence families (the classes whose geometry we test) and the datasets built from them.

``FAMILIES`` holds the six families of the paper (consecutive, even, odd, prime, Recamán,
composite) and held-out families for generalisation. Every family is indexed from 0:
``FAMILIES["prime"].terms(0, 3) == [2, 3, 5]``. ``paper_dataset()`` is the paper's exact
24 texts: per family, sequence k holds terms ``[k*50, (k+1)*50)`` rendered ``"2, 4, 6"``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from geomcheck import _numtheory as nt
from geomcheck.errors import (
    InvalidInputError,
    TermTooLongError,
    UndecidableMembershipError,
    UnknownFamilyError,
    unknown_name_message,
)

__all__ = [
    "Family",
    "FAMILIES",
    "PAPER_FAMILIES",
    "HELDOUT_FAMILIES",
    "SequenceDataset",
    "get_family",
    "register_family",
    "render",
    "to_decimal",
    "make_dataset",
    "paper_dataset",
    "heldout_dataset",
]


def _index(what: str, value: object, minimum: int) -> int:
    """``value`` as an int >= minimum, or an InvalidInputError that names the valid range."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{what} must be an integer >= {minimum}, got the bool {value!r}")
    try:
        n = operator.index(value)  # accepts numpy integers, refuses 2.0 and "3"
    except TypeError:
        raise InvalidInputError(
            f"{what} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})"
        ) from None
    if n < minimum:
        raise InvalidInputError(f"{what} must be an integer >= {minimum}, got {n}")
    return n


@dataclass(frozen=True)
class Family:
    """A named integer sequence with its OEIS id.

    ``generator(start, count)`` returns terms ``start … start+count-1`` (0-based) and
    ``membership(n)`` decides whether n is a term (None where that is not known to be
    decidable, e.g. Recamán's sequence).
    """

    name: str
    oeis: str
    description: str
    generator: Callable[[int, int], list[int]] = field(repr=False, compare=False)
    membership: Callable[[int], bool] | None = field(default=None, repr=False, compare=False)
    paper: bool = False
    increasing: bool = True  # strictly increasing from index 0

    @property
    def url(self) -> str:
        return f"https://oeis.org/{self.oeis}"

    @property
    def decidable(self) -> bool:
        return self.membership is not None

    def terms(self, start: int, count: int) -> list[int]:
        """Terms ``start … start+count-1`` of the sequence (0-based index)."""
        start = _index(f"{self.name}.terms: start (0-based index into the sequence)", start, 0)
        count = _index(f"{self.name}.terms: count (number of terms)", count, 1)
        return self.generator(start, count)

    def contains(self, n: int) -> bool:
        """Whether ``n`` is a term of the sequence."""
        if self.membership is None:
            raise UndecidableMembershipError(
                f"membership in {self.name!r} ({self.oeis}) is not known to be decidable; "
                f"compare against a window of terms instead: FAMILIES[{self.name!r}].terms(start, count)"
            )
        if isinstance(n, bool):
            raise InvalidInputError(f"{self.name}.contains expects an integer, got the bool {n!r}")
        try:
            n = operator.index(n)
        except TypeError:
            raise InvalidInputError(
                f"{self.name}.contains expects an integer, got {n!r} ({type(n).__name__})"
            ) from None
        return bool(self.membership(n))


# --- generators -----------------------------------------------------------------------


def _closed_form(f: Callable[[int], int]) -> Callable[[int, int], list[int]]:
    return lambda start, count: [f(i) for i in range(start, start + count)]


def _sieved(mask: nt.Mask, count_below: Callable[[int], int] | None = None):
    return nt.SievedSet(mask, count_below).nth


def _recurrence(first: Callable[[int], object], step: Callable[[object, int], object],
                value: Callable[[object], int] = lambda s: s) -> Callable[[int, int], list[int]]:
    """Terms from a closed form for term ``start`` and a one-step recurrence after it."""

    def generate(start: int, count: int) -> list[int]:
        state, out = first(start), []
        for n in range(start, start + count):
            out.append(value(state))
            state = step(state, n)
        return out

    return generate


def _next_pair(s, n):
    return s[1], s[0] + s[1]


def _first_of(s):
    return s[0]


# F(n), F(n+1) by fast doubling, then F(n+2) = F(n) + F(n+1).
_fibonacci = _recurrence(nt.fib_pair, _next_pair, _first_of)
# L(n) = 2F(n+1) - F(n), L(n+1) = 2F(n+2) - F(n+1) = 2F(n) + F(n+1); same recurrence.
_lucas = _recurrence(lambda n: (lambda f, g: (2 * g - f, 2 * f + g))(*nt.fib_pair(n)), _next_pair, _first_of)
# C(n+1) = C(n)·2(2n+1)/(n+2), always exact.
_catalan = _recurrence(lambda n: math.comb(2 * n, n) // (n + 1), lambda c, n: c * 2 * (2 * n + 1) // (n + 2))
_factorial = _recurrence(math.factorial, lambda f, n: f * (n + 1))


# --- membership -------------------------------------------------------------------------
# Decided independently of the generators (closed forms, sympy), so tests that compare
# the two check each against the other.


def _isprime(n: int) -> bool:
    import sympy

    return bool(sympy.isprime(n))


def _factor_exponents(n: int) -> list[int]:
    import sympy

    return list(sympy.factorint(n).values())


def _is_catalan(n: int) -> bool:
    c, k = 1, 0
    while c < n:
        c, k = c * 2 * (2 * k + 1) // (k + 2), k + 1
    return n >= 1 and c == n


def _is_factorial(n: int) -> bool:
    k = 1
    while n > 1 and n % k == 0:
        n //= k
        k += 1
    return n == 1


def _is_five_square(m: int) -> bool:
    return m >= 0 and m % 5 == 0 and nt.is_square(m // 5)


def _abundant(n: int) -> bool:
    import sympy

    return n >= 1 and int(sympy.divisor_sigma(n)) > 2 * n


def _family(name: str, oeis: str, description: str, generator, membership=None, **kw) -> Family:
    return Family(name, oeis, description, generator, membership, **kw)


_ALL = [
    # The paper's six, in its label order.
    _family("consecutive", "A000027", "positive integers 1, 2, 3, …",
            _closed_form(lambda i: i + 1), lambda n: n >= 1, paper=True),
    _family("even", "A299174", "positive even integers 2, 4, 6, …",
            _closed_form(lambda i: 2 * i + 2), lambda n: n >= 2 and n % 2 == 0, paper=True),
    _family("odd", "A005408", "odd numbers 1, 3, 5, …",
            _closed_form(lambda i: 2 * i + 1), lambda n: n >= 1 and n % 2 == 1, paper=True),
    _family("prime", "A000040", "primes 2, 3, 5, 7, …",
            _sieved(nt.prime_mask, nt.prime_count_below), _isprime, paper=True),
    _family("recaman", "A005132", "Recamán: a(n) = a(n-1) - n if new and >= 0, else a(n-1) + n",
            nt.Recaman().terms, None, paper=True, increasing=False),
    _family("composite", "A002808", "composite numbers 4, 6, 8, 9, 10, …",
            _sieved(nt.composite_mask, nt.composite_count_below),
            lambda n: n > 1 and not _isprime(n), paper=True),
    # Held out: never in the paper's data.
    _family("squares", "A000290", "squares 0, 1, 4, 9, …",
            _closed_form(lambda i: i * i), nt.is_square),
    _family("cubes", "A000578", "cubes 0, 1, 8, 27, …",
            _closed_form(lambda i: i**3), lambda n: n >= 0 and nt.integer_root(n, 3) ** 3 == n),
    _family("triangular", "A000217", "triangular numbers n(n+1)/2: 0, 1, 3, 6, …",
            _closed_form(lambda i: i * (i + 1) // 2), lambda n: n >= 0 and nt.is_square(8 * n + 1)),
    _family("pentagonal", "A000326", "pentagonal numbers n(3n-1)/2: 0, 1, 5, 12, …",
            _closed_form(lambda i: i * (3 * i - 1) // 2),
            lambda n: n == 0 or (n > 0 and nt.is_square(24 * n + 1) and math.isqrt(24 * n + 1) % 6 == 5)),
    _family("hexagonal", "A000384", "hexagonal numbers n(2n-1): 0, 1, 6, 15, …",
            _closed_form(lambda i: i * (2 * i - 1)),
            lambda n: n == 0 or (n > 0 and nt.is_square(8 * n + 1) and math.isqrt(8 * n + 1) % 4 == 3)),
    _family("fibonacci", "A000045", "Fibonacci numbers 0, 1, 1, 2, 3, 5, …", _fibonacci,
            lambda n: n >= 0 and (nt.is_square(5 * n * n + 4) or nt.is_square(5 * n * n - 4)),
            increasing=False),
    _family("lucas", "A000032", "Lucas numbers 2, 1, 3, 4, 7, 11, …", _lucas,
            lambda n: n >= 1 and (_is_five_square(n * n - 4) or _is_five_square(n * n + 4)),
            increasing=False),
    _family("powers_of_two", "A000079", "powers of two 1, 2, 4, 8, …",
            _closed_form(lambda i: 1 << i), lambda n: n > 0 and n & (n - 1) == 0),
    _family("catalan", "A000108", "Catalan numbers 1, 1, 2, 5, 14, …", _catalan, _is_catalan,
            increasing=False),
    _family("factorial", "A000142", "factorials 1, 1, 2, 6, 24, …", _factorial, _is_factorial,
            increasing=False),
    _family("semiprime", "A001358", "products of two primes 4, 6, 9, 10, 14, …",
            _sieved(nt.semiprime_mask), lambda n: n >= 4 and sum(_factor_exponents(n)) == 2),
    _family("squarefree", "A005117", "squarefree numbers 1, 2, 3, 5, 6, 7, 10, …",
            _sieved(nt.squarefree_mask, nt.squarefree_count_below),
            lambda n: n >= 1 and all(e == 1 for e in _factor_exponents(n))),
    _family("palindrome", "A002113", "decimal palindromes 0, 1, …, 9, 11, 22, …",
            _closed_form(nt.nth_palindrome), lambda n: n >= 0 and str(n) == str(n)[::-1]),
    _family("happy", "A007770", "happy numbers 1, 7, 10, 13, 19, …",
            _sieved(nt.happy_mask), lambda n: n >= 1 and nt.is_happy(n)),
    _family("abundant", "A005101", "abundant numbers σ(n) > 2n: 12, 18, 20, 24, …",
            _sieved(nt.abundant_mask), _abundant),
    _family("multiples_of_3", "A008585", "multiples of 3: 0, 3, 6, 9, …",
            _closed_form(lambda i: 3 * i), lambda n: n >= 0 and n % 3 == 0),
]

FAMILIES: dict[str, Family] = {f.name: f for f in _ALL}
PAPER_FAMILIES: tuple[str, ...] = tuple(f.name for f in _ALL if f.paper)
HELDOUT_FAMILIES: tuple[str, ...] = tuple(f.name for f in _ALL if not f.paper)


def get_family(name: str | Family) -> Family:
    """The registered family called ``name`` (a ``Family`` is returned as is)."""
    if isinstance(name, Family):
        return name
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise UnknownFamilyError(unknown_name_message("family", name, FAMILIES)) from None


def register_family(family: Family, *, replace: bool = False) -> Family:
    """Add a user-defined family to ``FAMILIES`` (so datasets, strategies and options see it)."""
    if not isinstance(family, Family):
        raise InvalidInputError(f"register_family expects a Family, got {type(family).__name__}")
    if family.name in FAMILIES and not replace:
        raise InvalidInputError(
            f"a family named {family.name!r} is already registered; pass replace=True to override it"
        )
    FAMILIES[family.name] = family
    return family


# --- datasets ---------------------------------------------------------------------------


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
) -> SequenceDataset:
    """``per_family`` texts per family; sequence k holds terms ``[start + k*length, start + (k+1)*length)``.

    Labels follow the order of ``families``; texts are grouped by family.
    """
    fams = [get_family(f) for f in ([families] if isinstance(families, (str, Family)) else families)]
    if not fams:
        raise InvalidInputError("make_dataset needs at least one family; see geomcheck.sequences.FAMILIES")
    names = [f.name for f in fams]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInputError(f"families must be distinct; repeated: {', '.join(dupes)}")
    per_family = _index("per_family", per_family, 1)
    length = _index("length (terms per sequence)", length, 1)
    start = _index("start (0-based index of the first term)", start, 0)
    max_chars = _index("max_chars", max_chars, 1)
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
    return SequenceDataset(tuple(texts), np.array(labels), tuple(names), tuple(seqs), tuple(fams), tuple(starts))


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
    max_chars: int = 20_000,
    *,
    start: int = 0,
) -> SequenceDataset:
    """Like ``paper_dataset`` over families the paper never used (generalisation probe)."""
    fams = [get_family(f) for f in ([families] if isinstance(families, (str, Family)) else families)]
    in_paper = [f.name for f in fams if f.paper]
    if in_paper:
        raise InvalidInputError(
            f"heldout_dataset takes families outside the paper; {', '.join(in_paper)} "
            f"{'is a paper family' if len(in_paper) == 1 else 'are paper families'} (use make_dataset to mix them)"
        )
    return make_dataset(fams, per_family, length, start=start, max_chars=max_chars)
