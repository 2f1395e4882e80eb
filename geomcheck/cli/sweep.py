"""``geomcheck sweep``: interpolate base → LoRA at several t with several methods (issue 14, part 3).

For each ``--method`` and each t the two-model interpolation of the base and its LoRA model
(slerp(base, lora, t); linear with weights (1 − t, t); nuslerp, multislerp, karcher likewise;
task_arithmetic as base + t·(lora − base)) is merged, embedded on the task and paper sets and
measured with ``geomcheck.checks.merging.sweep_rows``: task gain, CKA to the base (and to the
LoRA), paper-set silhouette, adapter position r. ``--plot`` draws gain against CKA, one line per
method (``geomcheck.reporting.sweep``). t = 0 is the base and t = 1 the LoRA model, for every method.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from geomcheck.errors import GeomcheckError

__all__ = ["add_parser", "run", "parse_ts", "DEFAULT_TS", "SWEEP_SETS"]

DEFAULT_TS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
SWEEP_SETS: tuple[str, ...] = ("task", "paper")
# geomcheck.adapt.variants.INTERPOLATING, spelled out so that `geomcheck --help` stays light (a test compares them)
INTERPOLATING_NAMES: tuple[str, ...] = ("slerp", "nuslerp", "linear", "multislerp", "karcher", "task_arithmetic")


def parse_ts(text: str) -> list[float]:
    """``--t``: comma-separated numbers in [0, 1] (``0,0.25,0.5,0.75,1``)."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        ts = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--t takes comma-separated numbers in [0, 1] such as 0,0.5,1; got {text!r}") \
            from None
    bad = [t for t in ts if not 0 <= t <= 1]
    if not ts or bad:
        raise argparse.ArgumentTypeError(f"every t must lie in [0, 1], got {text!r}")
    return list(dict.fromkeys(ts))


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="interpolate base → LoRA at several t per merge method: task gain against CKA to the base",
        description="For each --method and each t, merge the base and its LoRA model at t (t = 0: the base, "
        "t = 1: the LoRA model), embed the task and paper sets, and print the task gain (task-set silhouette "
        "minus the base's), CKA to the base and to the LoRA model, the paper-set silhouette and the adapter "
        "position r. Methods that interpolate two models: " + ", ".join(INTERPOLATING_NAMES) + ".",
        epilog="Example: geomcheck sweep --model minilm --method slerp --method linear --t 0,0.25,0.5,0.75,1 "
        "--plot sweep.png",
    )
    p.add_argument("--model", required=True, metavar="NAME", help="base model: registry alias, directory or HF id")
    p.add_argument("--method", action="append", metavar="M",
                   help="interpolation method (repeatable; default slerp and linear): " + ", ".join(INTERPOLATING_NAMES))
    p.add_argument("--variant", action="append", metavar="NAME=RECIPE.yml",
                   help="your own mergekit recipe, swept over the same t (its last stage's parameters.t is set to "
                   "each; it may name base, lora and checkpoint-N); repeatable")
    p.add_argument("--t", type=parse_ts, default=list(DEFAULT_TS), metavar="T,T,…",
                   help="the t to sweep, comma-separated (default 0,0.25,0.5,0.75,1)")
    p.add_argument("--plot", metavar="FILE.png", help="draw task gain against CKA to the base, one line per method")
    p.add_argument("--json", action="store_true", help="print one JSON object (rows, ends, settings, timings)")
    p.add_argument("--out", metavar="DIR", help="keep the model directories in DIR (default: the cache)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--trust-remote-code", action="store_true", help="let the model's own Python files (config.json auto_map) run; give it only for a model whose source you trust (without it such a model is refused)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``geomcheck sweep``."""
    from pathlib import Path

    from geomcheck.adapt.cached import variants_cache_dir
    from geomcheck.adapt.tasks import WindowTask
    from geomcheck.adapt.variants import build_sweep, interpolating
    from geomcheck.checks.merging import sweep_rows, variant_rows
    from geomcheck.cli.merges import _user_variants, embed_sets, load_base, lora_run, say, variant_dirs
    from geomcheck.errors import InvalidInputError

    started = time.perf_counter()
    user = _user_variants(args.variant)
    for v in user:
        if not v.recipe:
            raise GeomcheckError(f"--variant {v.name}: {str(v.path)!r} is a merged model directory, one point with no "
                                 "t to vary; a sweep takes a mergekit recipe with parameters.t (geomcheck merges "
                                 "--variant shows a directory beside the built variants)")
        from geomcheck.merge.recipe import read_recipe

        read_recipe(v.path).with_t(0.5)  # a recipe with no single t to vary is refused before any work
    try:
        methods = interpolating(args.method or ["slerp", "linear"]) if args.method or not user else []
    except InvalidInputError as exc:
        raise GeomcheckError(f"--method: {exc}") from None
    if args.plot and not args.plot.lower().endswith(".png"):
        raise GeomcheckError(f"--plot writes a PNG; give a path ending in .png, got {args.plot!r}")
    timings: dict[str, float] = {}
    base = load_base(args.model, args.device, args.trust_remote_code)
    t0 = time.perf_counter()
    run, cached = lora_run(base)
    timings["lora_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    out = Path(args.out).expanduser() if args.out else variants_cache_dir(base, run, ())
    dirs = variant_dirs(base, run, (), out, device=args.device)
    points = build_sweep(out, methods, args.t, progress=say) if methods else {}
    if user:
        from geomcheck.adapt.user_variants import recipe_bind, variant_dir

        bind = recipe_bind(user, dirs, run.checkpoint_dirs, out, trust_remote_code=args.trust_remote_code)
        for v in user:
            for t in args.t:
                points[(v.name, t)] = variant_dir(v, bind=bind, t=t, progress=say)
    timings["merge_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    all_sets = WindowTask().eval_sets()
    sets = {s: all_sets[s] for s in SWEEP_SETS}
    announced: set[str] = set()
    ends = {}
    for name in ("base", "lora"):
        say(f"{name}: embedding the {', '.join(SWEEP_SETS)} sets")
        ends[name] = embed_sets(name, dirs[name], sets, args.device, announced,
                                label=base.name if name == "base" else f"{base.name}+lora",
                                trust_remote_code=args.trust_remote_code)
    measured = {}
    for i, ((m, t), path) in enumerate(points.items(), 1):
        say(f"[{i}/{len(points)}] {m} at t = {t:g}: embedding")
        measured[(m, t)] = embed_sets(m, path, sets, args.device, announced, label=f"{base.name}+{m}@t={t:g}",
                                     trust_remote_code=args.trust_remote_code)
    timings["embed_s"] = time.perf_counter() - t0
    rows = sweep_rows(measured, ends, task_set="task", cka_set="paper")
    end_rows = variant_rows({s: {n: ends[n][s] for n in ends} for s in SWEEP_SETS}, task_set="task", cka_set="paper")
    plot = None
    if args.plot:
        from geomcheck.reporting.sweep import sweep_plot

        plot = str(sweep_plot(rows, args.plot, model=base.name))
        say(f"wrote {plot}")
    timings["total_s"] = time.perf_counter() - started
    settings = {"model": args.model, "device": base.device, "methods": methods, "t": args.t, "models_dir": str(out),
                "variants": {v.name: str(v.path) for v in user},
                "lora": {"dir": str(Path(run.adapter_dir).parent), "from_cache": cached}, "task_set": "task",
                "cka_set": "paper", "sets": {s: len(ds) for s, ds in sets.items()}}
    if args.json:
        from geomcheck._json import jsonable

        print(json.dumps(jsonable({"rows": rows, "ends": end_rows, "plot": plot, "settings": settings,
                                   "timings": timings}), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"t-sweep base → LoRA of {base.name}",
                  caption=f"gain: task-set silhouette − the base's ({end_rows[1]['task_gain']:+.3f} for the LoRA); "
                  f"CKA and r on the paper set; {timings['total_s']:.0f} s")
    for c in ("method", "t", "task gain", "CKA base", "CKA lora", "paper sil", "r"):
        table.add_column(c, justify="left" if c == "method" else "right", no_wrap=True)
    for r in rows:
        table.add_row(r["method"], f"{r['t']:g}", f"{r['task_gain']:+.4f}", f"{r['cka_to_base']:.4f}",
                      f"{r['cka_to_lora']:.4f}", f"{r['paper.silhouette']:+.4f}", f"{r['adapter_position']:.3f}")
    Console().print(table)
    return 0
