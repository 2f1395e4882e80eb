"""``import geomcheck`` and the plugin stay light: they import none of the heavy libraries.

How long the import takes is measured by ``python bench/import_time.py`` (a loaded machine is no
test failure); what it imports does not depend on the clock.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "sentence_transformers", "sklearn", "scipy", "sympy", "matplotlib", "peft", "rich")
CODE = f"""
import json, sys
import geomcheck, geomcheck.sequences, geomcheck.strategies, pytest_geomcheck.plugin
print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
"""


def test_import_loads_no_heavy_library():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
