"""LoRA on the window task with the model's recipe: training time, evaluation time, peak memory and gain, over seeds.

    python bench/adapt.py [--model minilm|smollm2-135m] [--seeds 0 1 2] [--steps N] [--lr LR] [--top-layers N]
                          [--recipe auto|encoder|decoder]

Prints, per seed, the training wall time, the before/after evaluation time of the four sets
(task windows never trained on, the paper dataset, far windows, held-out families) and
silhouette / Davies–Bouldin (true labels) before → after on each, then the mean and standard
deviation of the task-window silhouette gain and the peak RSS of the whole run. The "before"
evaluation reads the base's vectors from the embedding cache once a seed has put them there
(a fresh cache directory per run of this script, so the first seed shows the cold cost).

Goals (2-core CPU): MiniLM (encoder recipe) task gain >= +0.35 in <= 60 s; SmolLM2-135M (decoder
recipe) task gain >= +0.30 (mean) in <= 4 min of training, before+after evaluation <= 60 s,
peak RSS <= 6 GB.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--lr", type=float, default=None, help="default: the recipe's")
    ap.add_argument("--top-layers", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--recipe", default="auto")
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--clip", type=float, default=None)
    ap.add_argument("--temperature", type=float, default=0.1)
    args = ap.parse_args()
    os.environ.setdefault("GEOMCHECK_CACHE_DIR", tempfile.mkdtemp(prefix="geomcheck-bench-"))

    from geomcheck.adapt import train_lora
    from geomcheck.models import load_model

    base = load_model(args.model, device="cpu")
    gains = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            run = train_lora(base, out_dir=out, max_steps=args.steps, lr=args.lr, top_layers=args.top_layers,
                             recipe=args.recipe, warmup_steps=args.warmup, max_grad_norm=args.clip,
                             temperature=args.temperature, seed=seed, progress=False)
        gains.append(run.gain("task"))
        ev = run.eval_seconds
        s = run.settings
        print(f"seed {seed}: recipe {s['recipe']} (r {s['r']}, lr {s['lr']}, {s['max_steps']} steps, top layers "
              f"{s['top_layers'] or 'all'}): {run.wall_time:.1f} s training, evaluation {ev['before']:.1f} s before + "
              f"{ev['after']:.1f} s after, {time.perf_counter() - t0:.1f} s in all; loss {run.loss_history[0]:.3f} -> "
              f"{run.loss_history[-1]:.3f}", flush=True)
        for name in ("task", "paper", "far", "heldout"):
            b, a = run.before[name], run.after[name]
            print(f"  {name:<8} silhouette {b['silhouette']:+.3f} -> {a['silhouette']:+.3f}   "
                  f"DB {b['davies_bouldin']:.2f} -> {a['davies_bouldin']:.2f}", flush=True)
    sd = statistics.stdev(gains) if len(gains) > 1 else 0.0
    print(f"task silhouette gain over {len(gains)} seeds: mean {statistics.mean(gains):+.3f}, sd {sd:.3f}, "
          f"variance {sd * sd:.4f}")
    print(f"peak RSS of the run: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
