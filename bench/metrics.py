"""geomcheck's silhouette vs sklearn's silhouette_score, and its memory at 50k points.

    python bench/metrics.py [--repeats 3] [--skip-sklearn-50k] [--sweep] [--device auto|cpu|cuda]

Data: a Gaussian mixture in d = 1024 (12 clusters, float32, like model embeddings).
For N = 1k and 10k prints the best-of-N seconds of ``silhouette`` (default settings:
float32 input -> mixed precision), of ``silhouette(precision="float64")`` and of
``sklearn.metrics.silhouette_score``, run alternately so machine load hits all three, the
ratio ours / sklearn (goal at 10k: <= 0.67, i.e. >= 1.5x faster) and the relative
difference of the values (must be <= 1e-6). For N = 50k, in a fresh child process, the
time and the peak-memory growth during the call (ru_maxrss, and tracemalloc's peak for
numpy's allocations) against the 10 GB an N x N float32 matrix would take; sklearn's time
too unless --skip-sklearn-50k. --sweep times block sizes at 10k.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

D, K = 1024, 12


def mixture(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(K, D)).astype(np.float32)
    y = rng.integers(0, K, size=n)
    X = centers[y] + 2.0 * rng.normal(size=(n, D)).astype(np.float32)
    return X, y


def timed(fn) -> tuple[float, float]:
    t = time.perf_counter()
    v = fn()
    return time.perf_counter() - t, float(v)


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child_50k(n: int, device: str) -> None:
    """Runs in a fresh process, so ru_maxrss starts from this call's own baseline."""
    import tracemalloc

    from geomcheck.metrics import silhouette

    X, y = mixture(n, seed=1)
    silhouette(X[:5000], y[:5000], device=device)  # warm-up: BLAS threads, CUDA context, allocations
    before = maxrss_mb()
    tracemalloc.start()
    secs, value = timed(lambda: silhouette(X, y, device=device))
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"seconds": secs, "value": value, "rss_before_mb": before, "rss_after_mb": maxrss_mb(),
                      "traced_peak_mb": traced_peak / 2**20, "x_mb": X.nbytes / 2**20}))


def compare(n: int, repeats: int, device: str) -> None:
    from sklearn.metrics import silhouette_score

    from geomcheck.metrics import silhouette

    X, y = mixture(n)
    ours, f64, skl = [], [], []
    v_ours = v_f64 = v_skl = float("nan")
    for _ in range(repeats):
        t, v_ours = timed(lambda: silhouette(X, y, device=device))
        ours.append(t)
        t, v_f64 = timed(lambda: silhouette(X, y, precision="float64", device=device))
        f64.append(t)
        t, v_skl = timed(lambda: silhouette_score(X, y))
        skl.append(t)
    a, b, s = min(ours), min(f64), min(skl)
    rel = abs(v_ours - v_skl) / abs(v_skl)
    rel64 = abs(v_f64 - v_skl) / abs(v_skl)
    ok = "ok" if max(rel, rel64) <= 1e-6 else "MISMATCH"
    print(f"{n:>7,} {a:>9.3f} {b:>9.3f} {s:>9.3f} {a / s:>9.3f} {b / s:>9.3f} {s / a:>8.2f}x "
          f"{s / b:>8.2f}x   {rel:.1e} / {rel64:.1e} {ok}")
    print(f"{'':>7} (all runs, s: ours {', '.join(f'{t:.2f}' for t in ours)}; float64 "
          f"{', '.join(f'{t:.2f}' for t in f64)}; sklearn {', '.join(f'{t:.2f}' for t in skl)})")


def sweep(repeats: int, device: str) -> None:
    from geomcheck.metrics import silhouette

    X, y = mixture(10_000)
    print("\nblock-size sweep at N = 10,000 (best of runs, s):")
    for precision in ("mixed", "float64"):
        cells = []
        for bs in (256, 512, 1024, 2048):
            def run(bs=bs, precision=precision):
                return silhouette(X, y, block_size=bs, precision=precision, device=device)

            best = min(timed(run)[0] for _ in range(repeats))
            cells.append(f"{bs}: {best:.3f}")
        print(f"  {precision:<8} " + "  ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-sklearn-50k", action="store_true")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--device", default="auto", help="geomcheck's device (sklearn always runs on the CPU)")
    ap.add_argument("--child-50k", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_50k:
        child_50k(args.child_50k, args.device)
        return

    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    print(f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"numpy {np.__version__} ({blas}); d = {D}, {K} clusters, float32 input; geomcheck device={args.device}"
          f" (auto: CUDA if available and N >= 4096)")
    print(f"{'N':>7} {'ours s':>9} {'f64 s':>9} {'sklearn s':>9} {'ours/sk':>9} {'f64/sk':>9} "
          f"{'speed-up':>9} {'f64 up':>9}   rel. diff ours / f64 vs sklearn")
    for n in (1_000, 10_000):
        compare(n, args.repeats, args.device)

    n = 50_000
    out = subprocess.run([sys.executable, __file__, "--child-50k", str(n), "--device", args.device],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    grew = r["rss_after_mb"] - r["rss_before_mb"]
    nn = n * n * 4 / 2**20
    print(f"\nN = {n:,}: ours {r['seconds']:.1f} s, silhouette {r['value']:.6f}")
    print(f"  peak RSS {r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} MiB (+{grew:.0f} MiB during the call; "
          f"X itself is {r['x_mb']:.0f} MiB float32), tracemalloc peak {r['traced_peak_mb']:.0f} MiB; "
          f"an N x N float32 matrix would be {nn:,.0f} MiB ({grew / nn:.1%} of it)")
    if not args.skip_sklearn_50k:
        from sklearn.metrics import silhouette_score

        X, y = mixture(n, seed=1)
        t, v = timed(lambda: silhouette_score(X, y))
        rel = abs(r["value"] - v) / abs(v)
        print(f"  sklearn {t:.1f} s: ours/sklearn {r['seconds'] / t:.3f} ({t / r['seconds']:.2f}x faster), "
              f"rel. diff {rel:.1e} {'ok' if rel <= 1e-6 else 'MISMATCH'}")
    if args.sweep:
        sweep(args.repeats, args.device)


if __name__ == "__main__":
    main()
