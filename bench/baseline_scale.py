"""Writing and checking a baseline of a large labelled set: time and peak memory, sampled above ``exact_max``.

    python bench/baseline_scale.py [--n 200000] [--classes 20] [--exact-max 60000]

Data: a Gaussian mixture in d = 384 (``bench/metrics.py``'s), float32, as a model's embeddings of ``--n``
texts. Prints the seconds of ``make_baseline`` (KMeans with the paper's 10 starts, the report, the
per-text silhouettes: above ``exact_max`` those of a stratified sample of texts, each exact against
all N) and of ``compare`` against a slightly moved copy (the paired change on the stored texts, the
mutual 5-NN over them), the sample size, and the process's peak RSS; then the Euclidean pair
distances each path computes beside the exact path's N^2 / 2, and the exact path's seconds
extrapolated from ``bench/metrics.py``'s 100k figure if given (``--exact-100k-seconds``); and the
seconds to save the baseline file and to load it, with the embeddings beside the JSON (a ``.npy``, as
past 32 MiB) and, for comparison, inline as base64 (peak RSS is the process's high-water mark, so
the inline line's is the larger of the two).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import mixture  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--exact-max", type=int, default=None)
    ap.add_argument("--exact-100k-seconds", type=float, default=22.5,
                    help="the exact Euclidean silhouette at 100k on this machine (bench/metrics.py), to extrapolate")
    args = ap.parse_args()

    from geomcheck.checks.baseline import Baseline, make_baseline
    from geomcheck.checks.comparison import compare
    from geomcheck.metrics import EXACT_MAX_N
    from geomcheck.metrics._sampled import default_sample_size
    from geomcheck.models.embedder import EmbeddedDataset

    print(f"{os.cpu_count()} CPUs, load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    X, y = mixture(args.n, args.classes, seed=5, spread=3.0)
    names = tuple(f"class{i}" for i in range(args.classes))
    texts = tuple(f"text {i:>7} " + "x" * 388 for i in range(args.n))  # 400 characters each, as the held-out texts
    emb = EmbeddedDataset(X, y, names, texts, "synthetic", "fp")
    t = time.perf_counter()
    b = make_baseline("synthetic", "fp", {"big": emb}, exact_max=args.exact_max)
    t_make = time.perf_counter() - t
    e = b.datasets["big"]
    m = 0 if e.silhouette_rows is None else e.silhouette_rows.size
    moved = EmbeddedDataset(X + np.random.default_rng(1).normal(scale=0.3, size=X.shape).astype(np.float32), y,
                            names, texts, "moved", "fp2")
    t = time.perf_counter()
    c = compare(b, "big", moved, exact_max=args.exact_max)
    t_cmp = time.perf_counter() - t
    exact_max = EXACT_MAX_N if args.exact_max is None else args.exact_max
    print(f"baseline of N = {args.n:,} x 384, {args.classes} classes, exact_max {exact_max:,}: make_baseline "
          f"{t_make:.1f} s, compare {t_cmp:.1f} s; per-text silhouettes of {m:,} sampled texts "
          f"(default_sample_size {default_sample_size(args.n, exact_max):,}); peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB (X is {X.nbytes / 2**20:,.0f} MiB)")
    print(f"  report silhouette {e.report.silhouette_true:+.5f}, 95% interval "
          f"[{e.report.intervals['silhouette_true'][0]:+.5f}, {e.report.intervals['silhouette_true'][1]:+.5f}]"
          if e.report.intervals else f"  report silhouette {e.report.silhouette_true:+.5f} (exact)")
    print(f"  compare: paired change {c.mean_difference:+.5f} [{c.interval[0]:+.5f}, {c.interval[1]:+.5f}], "
          f"{'passed' if c.passed else 'failed'}: " + "; ".join(f"{k.metric} {k.value:.4f} {'ok' if k.passed else 'FAIL'}"
                                                         for k in c.checks))
    from geomcheck.checks import _arrays

    for inline in (False, True):  # the file a team commits: JSON and a .npy past 32 MiB; then all in the JSON
        limit = _arrays.INLINE_MAX_BYTES
        _arrays.INLINE_MAX_BYTES = 2**62 if inline else limit
        try:
            with tempfile.TemporaryDirectory() as folder:
                t = time.perf_counter()
                path = b.save(Path(folder) / "big.json")
                t_save = time.perf_counter() - t
                t = time.perf_counter()
                Baseline.load(path)
                t_load = time.perf_counter() - t
                files = ", ".join(f"{f.name} {f.stat().st_size / 2**20:,.0f} MiB" for f in sorted(Path(folder).iterdir()))
        finally:
            _arrays.INLINE_MAX_BYTES = limit
        print(f"  {'embeddings inline (base64)' if inline else 'embeddings beside it'}: saved in {t_save:.1f} s, "
              f"loaded in {t_load:.1f} s, peak RSS so far "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB: {files}")
    pairs = m * args.n if m else args.n * (args.n - 1) / 2
    exact_s = args.exact_100k_seconds * (args.n / 100_000) ** 2
    print(f"  pair distances per silhouette pass: {pairs:,.0f} ({'sampled' if m else 'exact'}; the exact path is "
          f"{args.n * (args.n - 1) / 2:,.0f}, ~{exact_s:,.0f} s a pass in float32 tiles here; a baseline and a "
          f"comparison each run two passes in float64, and the comparison's mutual k-NN {'the sampled' if m else 'all'} "
          f"texts' neighbourhoods in both spaces)")


if __name__ == "__main__":
    main()
