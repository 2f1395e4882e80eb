"""The checks stage: pass/fail verdicts with explanations, on embeddings and geometry reports.

- ``geomcheck.checks.assertions``: the ``assert_*`` helpers (raise ``GeometryAssertionError``);
- ``geomcheck.checks.baseline``: committed baseline files (``Baseline``, ``rewrite_baseline``);
- ``geomcheck.checks.comparison``: the paired comparison with a baseline (``compare``);
- ``geomcheck.checks.claims``: the paper's merge claims, one function each (``CLAIMS``);
- ``geomcheck.checks.paper``: a measurement against the paper's published Table 2 row
  (``assert_reproduces_paper``, tolerance by dtype and device).
"""

from __future__ import annotations

from geomcheck.checks.assertions import (
    assert_clusters_by_family,
    assert_davies_bouldin_below,
    assert_merge_preserves_base,
    assert_no_adapter_dominance,
    assert_no_regression,
    assert_silhouette_above,
)
from geomcheck.checks.baseline import Baseline, rewrite_baseline
from geomcheck.checks.claims import CLAIMS, ClaimResult, measure_claim
from geomcheck.checks.paper import PAPER_TOLERANCES, assert_reproduces_paper, paper_tolerance
from geomcheck.checks.comparison import (
    Comparison,
    assert_matches_baseline,
    compare,
    paired_interval,
)

__all__ = [
    "CLAIMS",
    "PAPER_TOLERANCES",
    "Baseline",
    "ClaimResult",
    "Comparison",
    "assert_clusters_by_family",
    "assert_davies_bouldin_below",
    "assert_matches_baseline",
    "assert_merge_preserves_base",
    "assert_no_adapter_dominance",
    "assert_no_regression",
    "assert_reproduces_paper",
    "assert_silhouette_above",
    "compare",
    "measure_claim",
    "paired_interval",
    "paper_tolerance",
    "rewrite_baseline",
]
