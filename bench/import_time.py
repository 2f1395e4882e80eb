"""How long ``import geomcheck`` and the pytest plugin take (goal: < 0.3 s; DESIGN.md), best of 5 fresh processes.

    python bench/import_time.py

The test suite checks what the import loads (tests/test_import.py), not how long it takes:
a loaded machine is no test failure.
"""

from __future__ import annotations

import json
import subprocess
import sys

CODE = """
import json, time
t = time.perf_counter()
import geomcheck, geomcheck.sequences, geomcheck.strategies, pytest_geomcheck.plugin
print(json.dumps(time.perf_counter() - t))
"""
GOAL_S = 0.3


def main() -> None:
    runs = [json.loads(subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                                      check=True).stdout) for _ in range(5)]
    best = min(runs)
    print(f"import geomcheck + plugin: best {best:.3f} s of 5 (all: {', '.join(f'{r:.3f}' for r in runs)}); "
          f"goal < {GOAL_S} s: {'met' if best < GOAL_S else 'NOT met'}")


if __name__ == "__main__":
    main()
