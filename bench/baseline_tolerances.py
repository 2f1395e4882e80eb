"""What each baseline check measures under benign and harmful changes; basis of DEFAULT_TOLERANCES.

    /tmp/venv/bin/python bench/baseline_tolerances.py [--model minilm] [--conditions ...]
                                                       [--datasets paper,heldout] [--json OUT]

Builds a baseline in memory from the model on CPU, fp32, default batch size, then embeds
the same texts under each condition and runs ``geomcheck.checks.comparison.compare``:

- benign: ``copy`` (weights re-saved to another directory by ``noisy_copy(scale=0)``),
  ``bf16`` (``load_model(dtype="bfloat16")`` on CPU), ``batch1`` (batch size 1);
- harmful: ``noise<scale>[s<seed>]`` (``geomcheck.testing.noisy_copy``: Gaussian noise of
  ``scale * std(W)`` on every weight matrix).

Prints one row per (dataset, condition): the paired silhouette change and its 95% interval,
the worst family's paired change, the worsening of DB / KMeans silhouette / KMeans DB, CKA
and mutual 5-NN overlap with the stored embeddings, and which checks fail under
``DEFAULT_TOLERANCES``. ``--json`` writes the same numbers (the ``tolerance_basis``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_CONDITIONS = "copy,bf16,batch1,noise0.05,noise0.1,noise0.2,noise0.4,noise0.4s1"
SHORT = {"silhouette_true (paired)": "sil", "family_silhouette (paired)": "fam", "davies_bouldin_true": "DB",
         "silhouette_kmeans": "silKM", "davies_bouldin_kmeans": "DBKM", "cka_to_baseline": "CKA",
         "mutual_knn_to_baseline": "mkNN"}


def _load(model: str, condition: str, tmp: Path, source_dir: Path):
    from geomcheck.models import load_model
    from geomcheck.testing import noisy_copy

    if condition == "bf16":
        return load_model(model, device="cpu", dtype="bfloat16", cache=False)
    if condition == "batch1":
        return load_model(model, device="cpu", dtype="float32", batch_size=1, cache=False)
    if condition == "copy":
        scale, seed = 0.0, 0
    elif condition.startswith("noise"):
        spec = condition[len("noise"):]
        scale_s, _, seed_s = spec.partition("s")
        scale, seed = float(scale_s), int(seed_s or 0)
    else:
        raise SystemExit(f"unknown condition {condition!r}")
    path = noisy_copy(source_dir, tmp / condition, scale=scale, seed=seed)
    return load_model(str(path), device="cpu", dtype="float32", cache=False)


def measure(model: str, conditions: list[str], datasets: list[str]) -> dict:
    from geomcheck.checks.baseline import DEFAULT_TOLERANCES, make_baseline
    from geomcheck.checks.comparison import compare
    from geomcheck.data import heldout_dataset, paper_dataset
    from geomcheck.models import load_model

    makers = {"paper": paper_dataset, "heldout": heldout_dataset}
    data = {name: makers[name]() for name in datasets}
    t0 = time.perf_counter()
    clean = load_model(model, device="cpu", dtype="float32", cache=False)
    source_dir = clean.source_path
    base = make_baseline(model, clean.fingerprint, {n: clean.embed(ds) for n, ds in data.items()})
    print(f"{model}: baseline built in {time.perf_counter() - t0:.1f}s from {source_dir}", flush=True)
    out: dict = {"model": model, "device": "cpu", "reference": "fp32, default batch size",
                 "tolerances_at_measurement": dict(DEFAULT_TOLERANCES), "rows": []}
    with tempfile.TemporaryDirectory(prefix="geomcheck-bench-") as tmp:
        for cond in conditions:
            t = time.perf_counter()
            emb = _load(model, cond, Path(tmp), source_dir)
            for name, ds in data.items():
                comp = compare(base, name, emb.embed(ds))
                row = {"dataset": name, "condition": cond, "mean_difference": comp.mean_difference,
                       "interval": list(comp.interval)}
                for c in comp.checks:
                    change = c.value - c.baseline
                    row[SHORT[c.metric]] = c.value if c.rule == "minimum" else change
                row["failing"] = [SHORT[c.metric] for c in comp.failures]
                out["rows"].append(row)
            print(f"  {cond}: {time.perf_counter() - t:.1f}s", file=sys.stderr, flush=True)
            del emb
    return out


def print_table(result: dict) -> None:
    cols = ["dΔsil", "95% interval", "Δfam(worst)", "ΔDB", "ΔsilKM", "ΔDBKM", "CKA", "mkNN"]
    print(f"\n{result['model']} (CPU), changes vs the fp32 baseline; Δ = new - baseline")
    head = f"{'dataset':<8} {'condition':<11} " + " ".join(f"{c:>8}" for c in cols[:1]) + f" {cols[1]:>18} " + \
        " ".join(f"{c:>11}" if c == "Δfam(worst)" else f"{c:>7}" for c in cols[2:]) + "  failing"
    print(head)
    print("-" * len(head))
    for r in result["rows"]:
        lo, hi = r["interval"]
        print(f"{r['dataset']:<8} {r['condition']:<11} {r['sil']:+8.4f} {f'[{lo:+.4f}, {hi:+.4f}]':>18} "
              f"{r['fam']:+11.4f} {r['DB']:+7.3f} {r['silKM']:+7.3f} {r['DBKM']:+7.3f} {r['CKA']:7.4f} "
              f"{r['mkNN']:7.3f}  {','.join(r['failing']) or '-'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--conditions", default=DEFAULT_CONDITIONS)
    ap.add_argument("--datasets", default="paper,heldout")
    ap.add_argument("--json", default=None, help="write the measurements here")
    a = ap.parse_args()
    t = time.perf_counter()
    result = measure(a.model, a.conditions.split(","), a.datasets.split(","))
    print_table(result)
    print(f"\n{time.perf_counter() - t:.0f}s in all")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
