"""LoRA on the window task: time and geometry gain with the default recipe, over seeds.

    python bench/adapt.py [--model minilm] [--seeds 0 1 2] [--steps 17] [--lr 3e-3] [--warmup 0] [--clip none]

Prints, per seed, the training wall time and silhouette / Davies–Bouldin (true labels)
before → after on the four evaluation sets (task windows never trained on, the paper
dataset, far windows, held-out families), then the mean and standard deviation of the
task-window silhouette gain. Goal (MiniLM, 2-core CPU): <= 60 s, task gain >= +0.35.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=17)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--clip", type=float, default=None)
    ap.add_argument("--temperature", type=float, default=0.1)
    args = ap.parse_args()
    os.environ.setdefault("GEOMCHECK_CACHE_DIR", tempfile.mkdtemp(prefix="geomcheck-bench-"))

    from geomcheck.adapt import train_lora

    gains = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as out:
            run = train_lora(args.model, out_dir=out, max_steps=args.steps, lr=args.lr, warmup_steps=args.warmup,
                             max_grad_norm=args.clip, temperature=args.temperature, seed=seed, progress=False)
        gains.append(run.gain("task"))
        print(f"seed {seed}: {run.wall_time:.1f} s training, loss {run.loss_history[0]:.3f} -> {run.loss_history[-1]:.3f}")
        for name in ("task", "paper", "far", "heldout"):
            b, a = run.before[name], run.after[name]
            print(f"  {name:<8} silhouette {b['silhouette']:+.3f} -> {a['silhouette']:+.3f}   "
                  f"DB {b['davies_bouldin']:.2f} -> {a['davies_bouldin']:.2f}")
    sd = statistics.stdev(gains) if len(gains) > 1 else 0.0
    print(f"task silhouette gain over {len(gains)} seeds: mean {statistics.mean(gains):+.3f}, sd {sd:.3f}, "
          f"variance {sd * sd:.4f}")


if __name__ == "__main__":
    main()
