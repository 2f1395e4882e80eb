"""Integer-sequence families: the classes whose geometry the paper's protocol tests.

``FAMILIES`` holds the six families of the paper (consecutive, even, odd, prime, Recamán,
composite) and held-out families for generalisation. Every family is indexed from 0:
``FAMILIES["prime"].terms(0, 3) == [2, 3, 5]``. The datasets built from them are in
``geomcheck.data.datasets``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

from geomcheck.data import _numtheory as nt
from geomcheck.errors import (
    InvalidInputError,
    UndecidableMembershipError,
    UnknownFamilyError,
    unknown_name_message,
)

__all__ = [
    "Family",
    "FAMILIES",
    "PAPER_FAMILIES",
    "HELDOUT_FAMILIES",
    "as_index",
    "get_family",
    "register_family",
]


def as_index(what: str, value: object, minimum: int) -> int:
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
        start = as_index(f"{self.name}.terms: start (0-based index into the sequence)", start, 0)
        count = as_index(f"{self.name}.terms: count (number of terms)", count, 1)
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
