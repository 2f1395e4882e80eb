"""What the shipped suites need wherever they run (a checkout, or installed as ``geomcheck.suites``).

- the short option forms (``--model``, ``--merge``, ``--device``, …) as aliases of the
  plugin's namespaced ``--geomcheck-*`` options: they exist exactly when the suites run, so a
  project's own ``--device`` never collides with them elsewhere;
- nothing else: Hypothesis settings the suites rely on sit on the tests themselves, so they
  hold under any profile the project loads.
"""

from __future__ import annotations

from pytest_geomcheck import add_short_options


def pytest_addoption(parser):
    add_short_options(parser)
