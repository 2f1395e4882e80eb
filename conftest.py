"""Root conftest: settings shared by tests/ and suites/.

Hypothesis profiles, picked with HYPOTHESIS_PROFILE (default ``dev``):
- ``ci``: derandomised (same examples every run), no deadline (shared runners stall),
  bounded examples, failing examples printed as reproduction blobs;
- ``dev``: random exploration with a deadline, for local runs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
