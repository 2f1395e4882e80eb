"""The sieves against brute force (sympy) on segments anywhere, including block edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from geomcheck.data import _numtheory as nt

segments = st.tuples(st.integers(0, 3_000_000), st.integers(1, 300)).map(lambda t: (t[0], t[0] + t[1]))

REFERENCE = {
    nt.prime_mask: lambda n: sympy.isprime(n),
    nt.composite_mask: lambda n: n > 1 and not sympy.isprime(n),
    nt.squarefree_mask: lambda n: n >= 1 and all(e == 1 for e in sympy.factorint(n).values()),
    nt.semiprime_mask: lambda n: n >= 2 and sum(sympy.factorint(n).values()) == 2,
    nt.abundant_mask: lambda n: n >= 1 and sympy.divisor_sigma(n) > 2 * n,
    nt.happy_mask: lambda n: n >= 1 and nt.is_happy(n),
}


@pytest.mark.parametrize("mask", list(REFERENCE), ids=lambda m: m.__name__)
@given(seg=segments)
def test_masks_match_brute_force(mask, seg):
    lo, hi = seg
    assert mask(lo, hi).tolist() == [bool(REFERENCE[mask](n)) for n in range(lo, hi)]


@pytest.mark.parametrize("mask", list(REFERENCE), ids=lambda m: m.__name__)
def test_masks_from_zero(mask):
    assert mask(0, 400).tolist() == [bool(REFERENCE[mask](n)) for n in range(400)]


def test_divisor_sigma_and_omega_match_sympy():
    lo, hi = 999_900, 1_000_100
    assert nt.divisor_sigma(lo, hi).tolist() == [int(sympy.divisor_sigma(n)) for n in range(lo, hi)]
    assert nt.big_omega(lo, hi).tolist() == [sum(sympy.factorint(n).values()) for n in range(lo, hi)]
    assert nt.divisor_sigma(0, 10).tolist() == [0, 1, 3, 4, 7, 6, 12, 8, 15, 13]


@pytest.mark.parametrize("x", [0, 1, 2, 3, 100, 65_536, 65_537, 1_000_000, 12_345_679])
def test_counting_functions_match_mask_sums(x):
    assert nt.prime_count_below(x) == int(nt.prime_mask(0, x).sum())
    assert nt.composite_count_below(x) == int(nt.composite_mask(0, x).sum())
    assert nt.squarefree_count_below(x) == int(nt.squarefree_mask(0, x).sum())


def test_sieved_set_with_and_without_counting_function_agree():
    plain = nt.SievedSet(nt.prime_mask)
    counted = nt.SievedSet(nt.prime_mask, nt.prime_count_below)
    for start in (0, 6_540, 6_541, 6_542, 50_000, 400_000):
        assert plain.nth(start, 30) == counted.nth(start, 30) == [sympy.prime(start + 1 + i) for i in range(30)]


def test_window_longer_than_a_block():
    got = nt.SievedSet(nt.squarefree_mask, nt.squarefree_count_below).nth(10, 100_000)
    assert got == np.flatnonzero(nt.squarefree_mask(0, 200_000))[10:100_010].tolist()


@given(st.integers(0, 10**6))
def test_nth_palindrome_is_the_kth_palindrome(k):
    p = nt.nth_palindrome(k)
    assert str(p) == str(p)[::-1]
    # count palindromes below p in closed form: 10 one-digit, then 9*10**(ceil(L/2)-1) of length L
    s = str(p)
    below = sum(10 if L == 1 else 9 * 10 ** ((L + 1) // 2 - 1) for L in range(1, len(s)))
    half = s[: (len(s) + 1) // 2]
    below += int(half) - (10 ** (len(half) - 1) if len(s) > 1 else 0)
    assert below == k


@given(st.integers(0, 5_000))
def test_fib_pair_matches_sympy(n):
    assert nt.fib_pair(n) == (sympy.fibonacci(n), sympy.fibonacci(n + 1))


@given(st.integers(0, 10**60), st.integers(2, 7))
def test_integer_root(n, k):
    r = nt.integer_root(n, k)
    assert r**k <= n < (r + 1) ** k


def test_is_square():
    assert [n for n in range(-5, 50) if nt.is_square(n)] == [0, 1, 4, 9, 16, 25, 36, 49]
    assert nt.is_square(10**40) and not nt.is_square(10**40 + 1)
    assert math.isqrt(10**40) == 10**20
