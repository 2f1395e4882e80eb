"""Silhouette intervals on the paper's 24 texts with MiniLM: naive bootstrap vs geomcheck's.

    python bench/stats.py [model]   (default: minilm, runs offline on CPU)

Prints the sample silhouette with true family labels, the naive bootstrap interval
(stratified resampling with replacement, duplicates kept, percentile), the same with the
basic interval, geomcheck's interval (duplicates excluded, basic), and the permutation
p-value against random relabelling; then Davies-Bouldin for reference.
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    from geomcheck.data import paper_dataset
    from geomcheck.models import load_model
    from geomcheck.metrics import bootstrap_ci, permutation_pvalue

    name = sys.argv[1] if len(sys.argv) > 1 else "minilm"
    ds = paper_dataset()
    t = time.perf_counter()
    X = load_model(name, device="cpu").encode(ds.texts)
    print(f"{name}: {X.shape[0]} texts x {X.shape[1]} dims, encoded in {time.perf_counter() - t:.1f}s")
    y = ds.labels
    level, n_boot, seed = 0.95, 2000, 0
    rows = [
        ("naive bootstrap, percentile", dict(method="plugin", interval="percentile")),
        ("naive bootstrap, basic", dict(method="plugin", interval="basic")),
        ("geomcheck (no tied copies), percentile", dict(method="dedup", interval="percentile")),
        ("geomcheck (no tied copies), basic [default]", dict(method="dedup", interval="basic")),
    ]
    est = None
    for label, kw in rows:
        iv = bootstrap_ci(X, y, "silhouette", n_boot=n_boot, level=level, seed=seed, **kw)
        est = iv.estimate
        print(f"  silhouette {level:.0%} CI  {label:<44s} [{iv.low:+.4f}, {iv.high:+.4f}]")
    print(f"  silhouette (true labels) = {est:+.4f}; permutation p = "
          f"{permutation_pvalue(X, y, 'silhouette', n_perm=9999, seed=seed):.4f} (n_perm=9999)")
    iv = bootstrap_ci(X, y, "davies_bouldin", n_boot=n_boot, level=level, seed=seed)
    print(f"  davies_bouldin = {iv.estimate:.4f}; plug-in basic {level:.0%} [{iv.low:.4f}, {iv.high:.4f}] "
          f"(not calibrated); permutation p = {permutation_pvalue(X, y, 'davies_bouldin', n_perm=9999):.4f}")


if __name__ == "__main__":
    main()
