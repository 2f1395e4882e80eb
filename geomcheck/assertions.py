"""The ``assert_*`` geometry checks under their first public name.

The code lives in ``geomcheck.checks.assertions``; this module keeps
``from geomcheck.assertions import assert_silhouette_above, …`` working.
"""

from __future__ import annotations

from geomcheck.checks.assertions import *  # noqa: F401,F403
from geomcheck.checks.assertions import DEFAULT_TOLERANCES, __all__  # noqa: F401
