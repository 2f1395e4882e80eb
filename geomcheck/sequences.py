"""Sequence families and their datasets under their first public name.

The code lives in ``geomcheck.data`` (``families`` and ``datasets``); this module keeps
``from geomcheck.sequences import FAMILIES, paper_dataset, …`` working.
"""

from __future__ import annotations

from geomcheck.data import *  # noqa: F401,F403
from geomcheck.data import __all__  # noqa: F401
