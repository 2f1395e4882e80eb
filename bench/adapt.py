"""LoRA on the window task with the model's recipe: training time, evaluation time, peak memory and gain, over seeds.

    python bench/adapt.py [--model minilm|smollm2-135m|replica|PATH] [--seeds 0 1 2] [--steps N] [--lr LR]
                          [--top-layers N] [--recipe auto|encoder|decoder|encoder-large|decoder-large]
                          [--eval-sets task paper far heldout] [--token-budget N] [--no-checkpointing]

Prints, per seed, the recipe, the training wall time, the before/after evaluation time of the
evaluation sets (task windows never trained on, the paper dataset, far windows, held-out
families) and silhouette / Davies–Bouldin (true labels) before → after on each, then the mean
and standard deviation of the task-window silhouette gain, the peak RSS of the run against the
goals, the memory model's prediction for this model (``geomcheck.adapt.memory``) and its
prediction for 7B Mistral / Qwen2 shapes on CUDA with the large-decoder recipe. The "before"
evaluation reads the base's vectors from the embedding cache once a seed has put them there (a
fresh cache directory per run of this script, so the first seed shows the cold cost).

``--model replica`` builds a random-weight replica of EmbeddingGemma-300M
(``geomcheck.testing.gemma3_replica``: 24 layers, hidden 768, vocabulary 262,144, Dense
768→3072→768) in a child process (its build is not in the peak) under ``--replica-dir`` (kept
for the next run). Run it under a memory guard: the encoder recipe on this shape was OOM-killed
at 17.4 GB before the large recipe existed.

Goals (2-core CPU): MiniLM (encoder recipe) task gain >= +0.35 in <= 60 s; SmolLM2-135M (decoder
recipe) task gain >= +0.30 (mean) in <= 4 min of training, before+after evaluation <= 60 s,
peak RSS <= 6 GB; the replica (encoder-large recipe): peak RSS <= 6 GB, training <= 10 min.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOALS = {"minilm": (0.35, 60.0, None), "smollm2-135m": (0.30, 240.0, 6.0), "replica": (None, 600.0, 6.0)}


def _replica(path: Path) -> str:
    if not (path / "modules.json").is_file():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"from geomcheck.testing import gemma3_replica; gemma3_replica({str(path)!r})"],
                       check=True)
        print(f"replica built in {path} in {time.perf_counter() - t0:.1f} s", flush=True)
    return str(path)


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def _memory_lines(config, name: str, recipe, budget: int, peak_gb: float) -> None:
    from geomcheck.adapt.memory import MISTRAL_7B, QWEN2_7B, lora_memory, shape_of
    from geomcheck.adapt.microbatch import TRAIN_TOKEN_BUDGETS
    from geomcheck.adapt.recipes import RECIPES

    texts = 6 * recipe.per_family
    shape = shape_of(config, name)
    here = lora_memory(shape, tokens=min(budget, texts * recipe.max_seq_length), seq_len=recipe.max_seq_length,
                       texts=texts, top_layers=recipe.top_layers, r=recipe.r, checkpointing=recipe.checkpointing)
    print(f"memory model for this run ({shape.params() / 1e6:.0f}M parameters, float32, {recipe.name}): "
          f"{_gb(here['total'])} predicted vs {peak_gb:.2f} GB measured peak RSS "
          f"(weights {_gb(here['weights'])}, LoRA+AdamW {_gb(here['lora'])}, saved {_gb(here['saved'])}, "
          f"working {_gb(here['working'])}, overhead {_gb(here['overhead'])})")
    big = RECIPES["decoder-large"]
    cuda = TRAIN_TOKEN_BUDGETS["cuda"]
    for s in (MISTRAL_7B, QWEN2_7B):
        for tokens, seq, what in ((6 * big.per_family * big.max_seq_length, big.max_seq_length, "the recipe's batch"),
                                  (cuda, 512, f"a full {cuda}-token micro-batch of 512-token texts")):
            m = lora_memory(s, tokens=tokens, seq_len=seq, texts=6 * big.per_family, top_layers=big.top_layers,
                            r=big.r, checkpointing=True, weight_bytes=2, act_bytes=2, cuda=True, overhead=1.5e9)
            print(f"  predicted on CUDA, {s.name} ({m['params'] / 1e9:.2f}B, bf16, {big.name}: top {big.top_layers} "
                  f"layers, r {big.r}, checkpointing), {what}: {_gb(m['total'])} (weights {_gb(m['weights'])}, "
                  f"LoRA+AdamW {_gb(m['lora'])}, saved {_gb(m['saved'])}, working {_gb(m['working'])}) "
                  f"-> {'fits' if m['total'] <= 80e9 else 'does NOT fit'} 80 GB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--replica-dir", default=None, help="where --model replica is built (default: a temp dir)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--lr", type=float, default=None, help="default: the recipe's")
    ap.add_argument("--top-layers", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--recipe", default="auto")
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--clip", type=float, default=None)
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--token-budget", type=int, default=None, help="padded tokens a micro-batch (default: the device's)")
    ap.add_argument("--no-checkpointing", action="store_true", help="gradient checkpointing off whatever the recipe says")
    ap.add_argument("--eval-sets", nargs="+", default=["task", "paper", "far", "heldout"])
    args = ap.parse_args()
    os.environ.setdefault("GEOMCHECK_CACHE_DIR", tempfile.mkdtemp(prefix="geomcheck-bench-"))

    name = args.model
    if name == "replica":
        path = Path(args.replica_dir or tempfile.mkdtemp(prefix="geomcheck-replica-")) / "embeddinggemma-replica"
        args.model = _replica(path)

    from geomcheck.adapt import train_lora
    from geomcheck.adapt.recipes import recipe_for
    from geomcheck.adapt.tasks import WindowTask
    from geomcheck.models import load_model

    base = load_model(args.model, device="cpu")
    recipe = recipe_for(base, args.recipe)
    print(f"{name}: {sum(p.numel() for p in base.model.parameters()) / 1e6:.1f}M parameters, recipe {recipe.name}, "
          f"load average {os.getloadavg()[0]:.2f} at start", flush=True)
    config, base_name = base.model[0].auto_model.config, base.name
    del base  # train_lora loads its own copy (it changes the weights): not two copies of a 1.2 GB model
    gc.collect()

    class Task(WindowTask):  # the recipe's training draws, only the evaluation sets asked for
        def eval_sets(self):
            return {k: v for k, v in super().eval_sets().items() if k in args.eval_sets}

    gains, walls = [], []
    for seed in args.seeds:
        t0 = time.perf_counter()
        task = Task(per_family=recipe.per_family, lengths=recipe.lengths)
        with tempfile.TemporaryDirectory() as out:
            run = train_lora(args.model, task, out_dir=out, max_steps=args.steps, lr=args.lr, top_layers=args.top_layers,
                             recipe=args.recipe, warmup_steps=args.warmup, max_grad_norm=args.clip,
                             temperature=args.temperature, seed=seed, progress=False, token_budget=args.token_budget,
                             gradient_checkpointing=False if args.no_checkpointing else None)
        walls.append(run.wall_time)
        ev = run.eval_seconds
        s = run.settings
        print(f"seed {seed}: recipe {s['recipe']} (r {s['r']}, lr {s['lr']}, {s['max_steps']} steps, top layers "
              f"{s['top_layers'] or 'all'}, checkpointing {s['gradient_checkpointing']}, token budget "
              f"{s['token_budget']}, up to {s['micro_batches']} micro-batch(es) a step): {run.wall_time:.1f} s training "
              f"({s['train_cpu_seconds']:.0f} CPU-s), "
              f"evaluation {ev['before']:.1f} s before + {ev['after']:.1f} s after, {time.perf_counter() - t0:.1f} s "
              f"in all; loss {run.loss_history[0]:.3f} -> {run.loss_history[-1]:.3f}", flush=True)
        for set_name in args.eval_sets:
            b, a = run.before[set_name], run.after[set_name]
            print(f"  {set_name:<8} silhouette {b['silhouette']:+.3f} -> {a['silhouette']:+.3f}   "
                  f"DB {b['davies_bouldin']:.2f} -> {a['davies_bouldin']:.2f}", flush=True)
        if "task" in args.eval_sets:
            gains.append(run.gain("task"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    if gains:
        sd = statistics.stdev(gains) if len(gains) > 1 else 0.0
        print(f"task silhouette gain over {len(gains)} seeds: mean {statistics.mean(gains):+.3f}, sd {sd:.3f}, "
              f"variance {sd * sd:.4f}")
    print(f"training time: mean {statistics.mean(walls):.1f} s, max {max(walls):.1f} s")
    print(f"peak RSS of the run: {peak:.2f} GB; load average {os.getloadavg()[0]:.2f} at the end")
    gain_goal, time_goal, rss_goal = GOALS.get(name, (None, None, None))
    verdicts = []
    if gain_goal is not None and gains:
        verdicts.append(f"gain {statistics.mean(gains):+.3f} >= +{gain_goal}: {statistics.mean(gains) >= gain_goal}")
    if time_goal is not None:
        verdicts.append(f"training {max(walls):.0f} s <= {time_goal:.0f} s: {max(walls) <= time_goal}")
    if rss_goal is not None:
        verdicts.append(f"peak RSS {peak:.2f} GB <= {rss_goal} GB: {peak <= rss_goal}")
    if verdicts:
        print("goals: " + "; ".join(verdicts))
    _memory_lines(config, base_name, recipe, args.token_budget or 8192, peak)


if __name__ == "__main__":
    main()
