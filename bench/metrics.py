"""geomcheck's silhouettes at scale vs scikit-learn: cosine to a million points, Euclidean exact and sampled.

    python bench/metrics.py [--repeats 3] [--skip-1m] [--skip-100k-euclidean] [--draws 50]
                            [--memory-50k] [--device auto|cpu|cuda]

Data: Gaussian mixtures in d = 384 (MiniLM's width), float32 like model embeddings. Prints, in one run:

1. cosine silhouette at N = 10k (12 classes): ours vs ``sklearn.metrics.silhouette_score(metric="cosine")``,
   best of ``--repeats`` each, the relative difference (must be <= 1e-6) and the speed ratio;
2. cosine at 100k and 1M x 384 (50 classes): the seconds to generate the samples, to compute, and both
   together (goal at 1M: <= 10 s), with the peak RSS of the process;
3. Euclidean exact at 10k vs sklearn (goal >= 3x: ours computes each distance once, as float32 GEMM
   tiles, sklearn twice), and ours at the default ``exact_max`` (60k) and at 100k (exact, O(N^2 d));
4. the sampled Euclidean path (``cluster_report`` above ``exact_max``): at N = 20k, the exact silhouette,
   then ``--draws`` seeded stratified samples of 1,000 points, each with its 95% interval; how many
   intervals cover the exact value (goal >= 90%), their mean width, and the seconds per draw; then the
   calibration over 4,000 more draws (on the exact per-text values, which each sampled s(i) equals).

``--memory-50k`` adds the peak memory of an exact Euclidean silhouette at 50k points (fresh process).
Timings depend on the machine's load: the first line prints the load average; run it when quiet.
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
import torch  # imported here, not inside a timed call: mixture() draws its noise with torch

D = 384


def mixture(n: int, k: int, seed: int = 0, spread: float = 2.0, torch_noise: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 points around ``k`` unit-variance centres, noise ``spread`` per coordinate (one N x d
    float32 array, filled block by block: no second N x d temporary, which would be 1.5 GB at 1M).
    ``torch_noise``: draw the noise with torch's seeded generator, 3x faster than numpy's on two cores
    (the million-point sets), instead of numpy's (every other set: the data the figures were first taken on)."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    centers = rng.normal(size=(k, D)).astype(np.float32)
    y = rng.integers(0, k, size=n)
    X = np.empty((n, D), dtype=np.float32)
    for a in range(0, n, 65_536):
        block = X[a:a + 65_536]
        if torch_noise:
            torch.from_numpy(block).normal_(0.0, spread, generator=gen)
        else:
            rng.standard_normal(dtype=np.float32, out=block)
            block *= spread
        block += centers[y[a:a + 65_536]]
    return X, y


def best(fn, repeats: int) -> tuple[float, float]:
    times, value = [], float("nan")
    for _ in range(repeats):
        t = time.perf_counter()
        value = float(fn())
        times.append(time.perf_counter() - t)
    return min(times), value


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cosine_10k(repeats: int) -> None:
    from sklearn.metrics import silhouette_score

    from geomcheck.metrics import silhouette

    X, y = mixture(10_000, 12)
    ours, v = best(lambda: silhouette(X, y, metric="cosine", progress=False), repeats)
    skl, w = best(lambda: silhouette_score(X, y, metric="cosine"), max(1, repeats - 1))
    rel = abs(v - w) / abs(w)
    print(f"cosine, N = 10,000, 12 classes: ours {ours:.3f} s, sklearn {skl:.2f} s: {skl / ours:,.0f}x faster; "
          f"silhouette {v:.8f} vs {w:.8f}, rel. diff {rel:.1e} {'ok' if rel <= 1e-6 else 'MISMATCH'}")


def cosine_large(n: int) -> None:
    from geomcheck.metrics import silhouette

    t = time.perf_counter()
    X, y = mixture(n, 50, seed=1, torch_noise=n >= 1_000_000)
    gen = time.perf_counter() - t
    t = time.perf_counter()
    v = silhouette(X, y, metric="cosine", progress=False)
    secs = time.perf_counter() - t
    goal = f" (goal <= 10 s: {'met' if gen + secs <= 10 else 'MISSED'})" if n >= 1_000_000 else ""
    print(f"cosine, N = {n:,} x {D}, 50 classes: samples {gen:.1f} s + silhouette {secs:.1f} s = "
          f"{gen + secs:.1f} s{goal}; value {v:.6f}; peak RSS {maxrss_mb():,.0f} MiB (X is "
          f"{X.nbytes / 2**20:,.0f} MiB)")


def euclidean_10k(repeats: int, device: str) -> None:
    from sklearn.metrics import silhouette_score

    from geomcheck.metrics import silhouette

    X, y = mixture(10_000, 12)
    silhouette(X[:5000], y[:5000], device=device)  # warm-up: BLAS threads, allocations, the torch import of device="auto"
    ours, f64, skl = [], [], []
    for _ in range(repeats):  # alternately, so that the machine's load hits all three alike
        ours.append(best(lambda: silhouette(X, y, device=device, progress=False), 1))
        f64.append(best(lambda: silhouette(X, y, precision="float64", device=device, progress=False), 1))
        skl.append(best(lambda: silhouette_score(X, y), 1))
    (a, va), (b, vb), (s, vs) = min(ours), min(f64), min(skl)
    rel, rel64 = abs(va - vs) / abs(vs), abs(vb - vs) / abs(vs)
    ok = "ok" if max(rel, rel64) <= 1e-6 else "MISMATCH"
    print(f"euclidean exact, N = 10,000, 12 classes: ours {a:.3f} s (float64 {b:.3f} s), sklearn {s:.3f} s: "
          f"{s / a:.2f}x faster (float64 {s / b:.2f}x; goal >= 3x: {'met' if s / a >= 3 else 'MISSED'}); "
          f"rel. diff {rel:.1e} / {rel64:.1e} {ok}")
    print(f"  (all runs, s: ours {', '.join(f'{t:.2f}' for t, _ in ours)}; float64 "
          f"{', '.join(f'{t:.2f}' for t, _ in f64)}; sklearn {', '.join(f'{t:.2f}' for t, _ in skl)})")


def euclidean_100k(device: str) -> None:
    from geomcheck.metrics import EXACT_MAX_N, silhouette

    X, y = mixture(100_000, 50, seed=2)
    for n in (EXACT_MAX_N, 100_000):  # at the default exact_max (the most a run computes exactly), and above
        t = time.perf_counter()
        v = silhouette(X[:n], y[:n], device=device, progress=False)
        secs = time.perf_counter() - t
        print(f"euclidean exact, N = {n:,} x {D}, 50 classes: {secs:.1f} s, value {v:.6f}"
              + (" (the default exact_max: cluster_report samples above it unless told otherwise)"
                 if n == EXACT_MAX_N else ""))


def sampled_coverage(draws: int) -> None:
    from geomcheck.metrics import silhouette_samples
    from geomcheck.metrics._progress import Progress
    from geomcheck.metrics._sampled import sampled_silhouettes, stratified_mean, stratified_sample

    X, y = mixture(20_000, 20, seed=3, spread=4.0)
    t = time.perf_counter()
    per_text = np.asarray(silhouette_samples(X, y, progress=False))
    exact = float(per_text.mean())
    t_exact = time.perf_counter() - t
    sizes = np.bincount(y).astype(np.float64)
    hits, widths, errs = 0, [], []
    t = time.perf_counter()
    for seed in range(draws):
        rows = stratified_sample(y, 1_000, seed)
        s = sampled_silhouettes(X, [y], rows, True, Progress("", 1, False))[0]
        est = stratified_mean(s, y[rows], sizes)
        hits += est.low <= exact <= est.high
        widths.append(est.high - est.low)
        errs.append(est.estimate - exact)
    per = (time.perf_counter() - t) / draws
    print(f"sampled euclidean, N = 20,000, 20 classes, {draws} seeded draws of 1,000 points: 95% intervals cover "
          f"the exact {exact:.5f} in {hits}/{draws} = {hits / draws:.0%} (goal >= 90%: "
          f"{'met' if hits >= 0.9 * draws else 'MISSED'}); mean width {np.mean(widths):.4f}, mean error "
          f"{np.mean(errs):+.5f}, rms {np.sqrt(np.mean(np.square(errs))):.4f}; {per:.2f} s a draw vs {t_exact:.1f} s "
          f"exact")
    # 50 draws of a calibrated 95% interval miss the 90% goal ~10% of the time by chance alone; many draws
    # on the exact per-text values (what each sampled s(i) equals, to ~1e-9) show the calibration itself.
    many, hits = 4_000, 0
    for seed in range(draws, draws + many):
        rows = stratified_sample(y, 1_000, seed)
        est = stratified_mean(per_text[rows], y[rows], sizes)
        hits += est.low <= exact <= est.high
    print(f"  calibration: {many:,} further draws on the exact per-text silhouettes cover it in {hits / many:.1%} "
          f"(nominal 95%)")


def child_50k(n: int, device: str) -> None:
    """In a fresh process, so ru_maxrss starts from this call's own baseline."""
    import tracemalloc

    from geomcheck.metrics import silhouette

    X, y = mixture(n, 12, seed=1)
    silhouette(X[:5000], y[:5000], device=device)
    before = maxrss_mb()
    tracemalloc.start()
    t = time.perf_counter()
    value = silhouette(X, y, device=device, progress=False)
    secs = time.perf_counter() - t
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"seconds": secs, "value": value, "rss_before_mb": before, "rss_after_mb": maxrss_mb(),
                      "traced_peak_mb": traced_peak / 2**20, "x_mb": X.nbytes / 2**20}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-1m", action="store_true", help="cosine at 100k only")
    ap.add_argument("--skip-100k-euclidean", action="store_true")
    ap.add_argument("--draws", type=int, default=50)
    ap.add_argument("--memory-50k", action="store_true")
    ap.add_argument("--device", default="auto", help="geomcheck's device for Euclidean (sklearn: the CPU)")
    ap.add_argument("--child-50k", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_50k:
        child_50k(args.child_50k, args.device)
        return
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    print(f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; numpy "
          f"{np.__version__} ({blas}); d = {D}, float32 input; geomcheck device={args.device}")
    cosine_10k(args.repeats)
    cosine_large(100_000)
    if not args.skip_1m:
        cosine_large(1_000_000)
    euclidean_10k(args.repeats, args.device)
    if not args.skip_100k_euclidean:
        euclidean_100k(args.device)
    sampled_coverage(args.draws)
    if args.memory_50k:
        out = subprocess.run([sys.executable, __file__, "--child-50k", "50000", "--device", args.device],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        nn = 50_000**2 * 4 / 2**20
        print(f"euclidean exact, N = 50,000: {r['seconds']:.1f} s; peak RSS {r['rss_before_mb']:.0f} -> "
              f"{r['rss_after_mb']:.0f} MiB, tracemalloc peak {r['traced_peak_mb']:.0f} MiB (an N x N float32 "
              f"matrix: {nn:,.0f} MiB)")
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
