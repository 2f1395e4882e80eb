"""geomcheck: test the geometry of text-embedding models with pytest.

Importing the package is cheap (no torch, no sklearn); submodules load what they need.
"""

from __future__ import annotations

__version__ = "0.1.0"

from geomcheck.errors import GeomcheckError  # noqa: E402

__all__ = ["__version__", "GeomcheckError"]
