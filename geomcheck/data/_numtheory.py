"""Number theory behind the sieved families: segmented sieves, counting functions, n-th member.

Everything here is exact integer arithmetic. Sieves work on half-open segments
``[lo, hi)`` so their memory is O(segment) whatever the position; sympy is imported
only for the counting functions of very large indices (it costs ~0.3 s to import).
"""

from __future__ import annotations

import bisect
import functools
import math
import threading
from collections.abc import Callable

import numpy as np

Mask = Callable[[int, int], np.ndarray]

_BLOCK = 1 << 16


@functools.lru_cache(maxsize=8)
def small_primes(limit: int) -> np.ndarray:
    """All primes ``p <= limit`` (sieve of Eratosthenes)."""
    if limit < 2:
        return np.zeros(0, dtype=np.int64)
    is_p = np.ones(limit + 1, dtype=bool)
    is_p[:2] = False
    for p in range(2, math.isqrt(limit) + 1):
        if is_p[p]:
            is_p[p * p :: p] = False
    return np.flatnonzero(is_p).astype(np.int64)


def _primes_upto(limit: int) -> np.ndarray:
    # Round the cache key up to a power of two so neighbouring segments share one sieve.
    return small_primes(1 << max(4, int(limit).bit_length()))


def _first_multiple(m: int | np.ndarray, lo: int) -> int | np.ndarray:
    """Smallest multiple of ``m`` that is ``>= lo``."""
    return -(-lo // m) * m


def prime_mask(lo: int, hi: int) -> np.ndarray:
    """``mask[i]`` is True iff ``lo + i`` is prime (segmented sieve)."""
    mask = np.ones(hi - lo, dtype=bool)
    mask[: max(0, min(2, hi) - lo)] = False
    for p in _primes_upto(math.isqrt(max(hi - 1, 0))).tolist():
        if p * p >= hi:
            break
        first = max(p * p, _first_multiple(p, lo))
        mask[first - lo :: p] = False
    return mask


def composite_mask(lo: int, hi: int) -> np.ndarray:
    """Integers > 1 that are not prime (A002808)."""
    n = np.arange(lo, hi)
    return ~prime_mask(lo, hi) & (n > 1)


def squarefree_mask(lo: int, hi: int) -> np.ndarray:
    """Positive integers with no square factor > 1 (A005117)."""
    mask = np.arange(lo, hi) >= 1
    for p in _primes_upto(math.isqrt(max(hi - 1, 0))).tolist():
        q = p * p
        if q >= hi:
            break
        mask[_first_multiple(q, lo) - lo :: q] = False
    return mask


def big_omega(lo: int, hi: int) -> np.ndarray:
    """Ω(n) (prime factors counted with multiplicity) for n in ``[lo, hi)``; Ω(0) := 0."""
    n = np.arange(lo, hi, dtype=np.int64)
    rest = n.copy()
    omega = np.zeros(hi - lo, dtype=np.int64)
    for p in _primes_upto(math.isqrt(max(hi - 1, 0))).tolist():
        if p * p >= hi:
            break
        q = p
        while q < hi:
            idx = slice(_first_multiple(q, lo) - lo, None, q)
            omega[idx] += 1
            rest[idx] //= p
            q *= p
    omega += rest > 1  # one prime factor above sqrt(hi) may remain
    omega[n == 0] = 0
    return omega


def semiprime_mask(lo: int, hi: int) -> np.ndarray:
    """Products of exactly two primes, not necessarily distinct (A001358)."""
    return big_omega(lo, hi) == 2


def divisor_sigma(lo: int, hi: int) -> np.ndarray:
    """σ(n), the sum of divisors, for n in ``[lo, hi)``; σ(0) := 0.

    Each divisor pair (d, n/d) with d <= sqrt(n) is added once; O((hi-lo) log hi).
    """
    lo1 = max(lo, 1)
    sigma = np.zeros(hi - lo, dtype=np.int64)
    for d in range(1, math.isqrt(max(hi - 1, 0)) + 1):
        m = np.arange(max(d * d, _first_multiple(d, lo1)), hi, d, dtype=np.int64)
        sigma[m - lo] += d + m // d
        if m.size and m[0] == d * d:
            sigma[d * d - lo] -= d  # the pair (d, d) is one divisor
    return sigma


def abundant_mask(lo: int, hi: int) -> np.ndarray:
    """σ(n) > 2n (A005101)."""
    return divisor_sigma(lo, hi) > 2 * np.arange(lo, hi, dtype=np.int64)


def digit_square_sum(n: np.ndarray) -> np.ndarray:
    out = np.zeros_like(n)
    n = n.copy()
    while n.any():
        n, d = np.divmod(n, 10)
        out += d * d
    return out


@functools.lru_cache(maxsize=1)
def _happy_table() -> np.ndarray:
    """happy[n] for n < 1000, by following n -> digit-square-sum until 1 or a cycle."""
    table = np.zeros(1000, dtype=bool)
    for n in range(1000):
        table[n] = is_happy(n)
    return table


def is_happy(n: int) -> bool:
    """Iterating the sum of squared digits reaches 1 (A007770); 0 is not happy."""
    seen = set()
    while n != 1 and n not in seen:
        seen.add(n)
        n = sum(int(c) ** 2 for c in str(n))
    return n == 1


def happy_mask(lo: int, hi: int) -> np.ndarray:
    """Happy numbers (A007770)."""
    n = np.arange(lo, hi, dtype=np.int64)
    while n.size and n.max() >= 1000:  # one step maps n < 10**k below 81*k + 1
        n = np.where(n >= 1000, digit_square_sum(n), n)
    return _happy_table()[n]


def prime_count_below(x: int) -> int:
    """π(x - 1): the number of primes < x (sympy's Lucy–Hedgehog ``primepi``)."""
    if x <= 2:
        return 0
    if x <= _BLOCK:
        return int(prime_mask(0, x).sum())
    import sympy

    return int(sympy.primepi(x - 1))


def composite_count_below(x: int) -> int:
    """Composites < x: the integers in [2, x) that are not prime."""
    return max(0, x - 2) - prime_count_below(x)


@functools.lru_cache(maxsize=8)
def _mobius(limit: int) -> np.ndarray:
    """μ(d) for d <= limit (linear in limit, via Ω and the squarefree mask)."""
    mu = np.where(big_omega(0, limit + 1) % 2 == 0, 1, -1)
    mu[~squarefree_mask(0, limit + 1)] = 0
    return mu


def squarefree_count_below(x: int) -> int:
    """Q(x - 1) = Σ_{d <= sqrt(x-1)} μ(d) ⌊(x-1)/d²⌋ (Hardy & Wright, Thm 333)."""
    m = x - 1
    if m < 1:
        return 0
    r = math.isqrt(m)
    d = np.arange(r + 1, dtype=np.int64)
    mu = _mobius(1 << max(4, r.bit_length()))[: r + 1]
    return int((mu[1:] * (m // (d[1:] * d[1:]))).sum())


class SievedSet:
    """The members, in increasing order, of a set of non-negative integers given by a mask.

    ``nth(start, count)`` returns members ``start … start+count-1`` (0-based). Where an
    exact counting function is known it jumps straight to the neighbourhood of the
    start; otherwise it scans blocks and memoises the running count at block edges, so
    repeated windows (a dataset's sequences) cost one scan.
    """

    def __init__(self, mask: Mask, count_below: Callable[[int], int] | None = None):
        self._mask = mask
        self._count_below = count_below
        self._edges = [0]  # _edges[b] = members below b * _BLOCK
        self._lock = threading.Lock()
        self._block = functools.lru_cache(maxsize=16)(self._members_of_block)

    def _members_of_block(self, b: int) -> np.ndarray:
        lo = b * _BLOCK
        return np.flatnonzero(self._mask(lo, lo + _BLOCK)) + lo

    def _locate(self, start: int) -> tuple[int, int]:
        """A block ``b`` and the number of members below it, with that number <= start."""
        if self._count_below is not None:
            lo, hi = 0, 1
            while self._count_below(hi * _BLOCK) <= start:
                lo, hi = hi, hi * 2
            while hi - lo > 1:  # largest block edge with count <= start
                mid = (lo + hi) // 2
                if self._count_below(mid * _BLOCK) <= start:
                    lo = mid
                else:
                    hi = mid
            return lo, self._count_below(lo * _BLOCK)
        with self._lock:
            edges = self._edges
            while edges[-1] <= start:
                edges.append(edges[-1] + len(self._block(len(edges) - 1)))
            b = bisect.bisect_right(edges, start) - 1
            return b, edges[b]

    def nth(self, start: int, count: int) -> list[int]:
        b, below = self._locate(start)
        skip = start - below
        out: list[int] = []
        while len(out) < count:
            members = self._block(b)
            take = members[skip : skip + count - len(out)]
            out.extend(take.tolist())
            skip = max(0, skip - len(members))
            b += 1
        return out


def nth_palindrome(k: int) -> int:
    """The k-th (0-based) decimal palindrome (A002113: 0, 1, …, 9, 11, 22, …)."""
    if k < 10:
        return k
    k -= 10
    length = 2
    while True:
        half = (length + 1) // 2
        block = 9 * 10 ** (half - 1)
        if k < block:
            left = str(10 ** (half - 1) + k)
            return int(left + left[::-1][length % 2 :])
        k -= block
        length += 1


def fib_pair(n: int) -> tuple[int, int]:
    """(F(n), F(n+1)) by fast doubling: F(2k) = F(k)(2F(k+1) - F(k)), F(2k+1) = F(k)² + F(k+1)²."""
    if n == 0:
        return 0, 1
    a, b = fib_pair(n >> 1)
    c = a * (2 * b - a)
    d = a * a + b * b
    return (d, c + d) if n & 1 else (c, d)


def is_square(n: int) -> bool:
    return n >= 0 and math.isqrt(n) ** 2 == n


def integer_root(n: int, k: int) -> int:
    """⌊n^(1/k)⌋ exactly, for n >= 0 (Newton's method on integers)."""
    if n < 2:
        return n
    x = 1 << -(-n.bit_length() // k)  # an upper bound
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


class Recaman:
    """Recamán's sequence (A005132), memoised: a(0)=0, a(n) = a(n-1) - n if that is
    non-negative and new, else a(n-1) + n. Extending to n costs O(n) once."""

    def __init__(self) -> None:
        self._terms = [0]
        self._seen = bytearray(1)
        self._lock = threading.Lock()

    def terms(self, start: int, count: int) -> list[int]:
        end = start + count
        with self._lock:
            terms, seen = self._terms, self._seen
            seen[0] = 1
            while len(terms) < end:
                n, prev = len(terms), terms[-1]
                nxt = prev - n
                if nxt < 0 or seen[nxt]:
                    nxt = prev + n
                if nxt >= len(seen):
                    seen.extend(bytes(max(nxt + 1 - len(seen), len(seen))))
                seen[nxt] = 1
                terms.append(nxt)
            return terms[start:end]
