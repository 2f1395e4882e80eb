"""Cost of far windows: geomcheck's families vs sympy's n-th-term functions, in one run.

    python bench/sequences.py

Prints, per case, the seconds for ``Family.terms(start, count)`` in a cold process
(the first call pays for sieves and imports), a warm repeat, and the same terms from
sympy (``prime(n)``, ``composite(n)``: one search per term) with the ratio sympy ÷ ours.
"""

from __future__ import annotations

import subprocess
import sys
import time

CASES = [("prime", 10**6, 5), ("prime", 10**6, 200), ("composite", 10**6, 200), ("prime", 10**7, 50)]


def cold(name: str, start: int, count: int) -> float:
    code = (
        "import time; t = time.perf_counter(); from geomcheck.data import FAMILIES; "
        f"FAMILIES[{name!r}].terms({start}, {count}); print(time.perf_counter() - t)"
    )
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    import sympy

    from geomcheck.data import FAMILIES

    ref = {"prime": sympy.prime, "composite": sympy.composite}
    print(f"{'family':<10} {'start':>9} {'count':>6} {'cold s':>8} {'warm s':>8} {'sympy s':>8} {'sympy/ours':>10}")
    for name, start, count in CASES:
        c = cold(name, start, count)
        t = time.perf_counter()
        ours = FAMILIES[name].terms(start, count)
        warm = time.perf_counter() - t
        t = time.perf_counter()
        theirs = [int(ref[name](start + 1 + i)) for i in range(count)]
        s = time.perf_counter() - t
        assert ours == theirs, (name, start)
        print(f"{name:<10} {start:>9} {count:>6} {c:>8.3f} {warm:>8.3f} {s:>8.3f} {s / c:>10.1f}")
    for name in ("recaman", "semiprime", "abundant", "happy", "squarefree"):
        print(f"{name:<10} {10**6:>9} {5:>6} {cold(name, 10**6, 5):>8.3f}")


if __name__ == "__main__":
    main()
