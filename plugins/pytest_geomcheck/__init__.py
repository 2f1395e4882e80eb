"""pytest plugin of geomcheck (entry point ``pytest11: geomcheck = pytest_geomcheck.plugin``).

``add_short_options(parser)``, called from a ``conftest.py``'s ``pytest_addoption``, adds the
short forms (``--model``, ``--merge``, ``--device``, …) of the namespaced ``--geomcheck-*``
options, as the shipped suites do.

PYTEST_DONT_REWRITE: ``geomcheck check`` imports this package before it starts pytest.
"""

from __future__ import annotations

from pytest_geomcheck.options import add_short_options

__all__ = ["add_short_options"]
