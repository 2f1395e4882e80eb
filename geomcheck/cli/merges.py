"""``geomcheck merges``: the paper's merge claims for one model in one table (issue 14, part 2).

Trains (or reads from the cache) the LoRA run of ``--model`` on the default task
(``WindowTask``), builds every merged variant of it, embeds the task, paper and held-out
sets with each, and prints one row per variant plus the paper's three claims. The numbers
come from ``geomcheck.checks.merging``, the code the merge suite uses. Progress goes to
stderr; stdout holds the table or, with ``--json``, one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
import warnings
from typing import Any

from geomcheck.errors import GeomcheckError

__all__ = ["add_parser", "run", "DEFAULT_VARIANTS", "SETS", "say", "load_base", "lora_run", "embed_sets", "fraction"]

# Every variant the table shows by default, in its order (base and lora always come first).
DEFAULT_VARIANTS: tuple[str, ...] = ("soup", "slerp", "slerp_row", "slerp_gradient", "slerp_ckpt", "nuslerp",
                                     "nuslerp_row", "multislerp", "karcher", "model_stock", "ties", "dare_ties",
                                     "task_arithmetic")
SETS: tuple[str, ...] = ("task", "paper", "heldout")  # WindowTask().eval_sets() names; CKA, r and claims on "paper"
CKA_SET = "paper"


def say(text: str) -> None:
    """A progress line on stderr (stdout is the table or the JSON)."""
    print(f"geomcheck: {text}", file=sys.stderr, flush=True)


def fraction(text: str) -> float:
    """``--t``: a number in [0, 1]."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {v:g}")
    return v


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "merges",
        help="the paper's merge claims: LoRA, soup, SLERP and the other merges of one model in one table",
        description="Train (or read from the cache) the LoRA run of --model on the sequence-window task, build "
        "every merged variant (base, lora, " + ", ".join(DEFAULT_VARIANTS) + "), and print per variant: "
        "silhouette and Davies-Bouldin (true labels) on the task, paper and held-out sets; linear CKA to the "
        "base and to the LoRA model and the adapter position r (paper set); the share of changed tensors where "
        "SLERP = LERP (SLERP variants); the task gain and the share of the LoRA's gain kept; then the paper's "
        "three claims with their verdicts. The same numbers as the merge suite (geomcheck.checks.merging).",
        epilog="Example: geomcheck merges --model minilm;  geomcheck merges --model minilm --method slerp "
        "--method soup --json;  geomcheck merges --model minilm --method slerp --variant mine=./my-merge",
    )
    p.add_argument("--model", required=True, metavar="NAME", help="base model: registry alias, directory or HF id")
    p.add_argument("--method", action="append", metavar="M",
                   help="a variant to build (repeatable; default all of them); base and lora are always shown")
    p.add_argument("--variant", action="append", metavar="NAME=PATH",
                   help="your own merge beside the built ones (repeatable): NAME=DIR (a merged model directory) or "
                   "NAME=recipe.yml (a mergekit recipe, built once and cached); it must be a merge of --model")
    p.add_argument("--t", type=fraction, default=0.5, metavar="T",
                   help="interpolation weight of slerp, slerp_row and slerp_ckpt (default 0.5; nuslerp and "
                   "nuslerp_row always take 0.5, slerp_gradient its depth anchors 0 → 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object (rows, claims, settings, timings)")
    p.add_argument("--out", metavar="DIR", help="keep the variant model directories in DIR (default: the cache)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--trust-remote-code", action="store_true", help="let the model's own Python files (config.json auto_map) run; give it only for a model whose source you trust (without it such a model is refused)")
    p.set_defaults(func=run)


def load_base(name: str, device: str, trust_remote_code: bool = False) -> Any:
    """The base model, loaded for LoRA and merges."""
    from geomcheck.models import load_model

    say(f"loading {name}")
    return load_model(name, device=device, trust_remote_code=trust_remote_code)


def lora_run(base: Any) -> tuple[Any, bool]:
    """The default LoRA run of ``base`` (trained, or read from the cache) and whether it came from the cache."""
    from geomcheck.adapt.cached import cached_lora_run, lora_cache_dir, lora_steps

    cached = (lora_cache_dir(base) / "lora_run.json").is_file()
    say(f"LoRA on {base.name}: " + ("read from the cache" if cached else
                                    f"training {lora_steps(base)} steps (kept in the cache for later runs)"))
    with contextlib.redirect_stdout(sys.stderr):  # the progress bar, not the JSON
        run = cached_lora_run(base, progress=not cached and sys.stderr.isatty())
    return run, cached


def embed_sets(name: str, path: Any, sets: dict[str, Any], device: str, announced: set[str], *,
               label: str, trust_remote_code: bool = False) -> dict[str, Any]:
    """{set name → EmbeddedDataset} of the model at ``path``, loaded for this and dropped after (bounded memory).

    A dataset's truncation warning (texts longer than the model's limit) is shown once per set, not per model.
    """
    from geomcheck.models import load_model

    # a variant of a base that runs its own code carries that code: the base's consent covers it
    emb = load_model(str(path), device=device, trust_remote_code=trust_remote_code)
    emb.name = label
    out = {}
    for set_name, ds in sets.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out[set_name] = emb.embed(ds)
        for w in caught:
            if set_name not in announced:
                announced.add(set_name)
                say(f"{set_name} set: {w.message}")
    del emb
    return out


def variant_dirs(base: Any, run: Any, methods: Any, out: Any, *, device: str, t: float = 0.5) -> dict[str, Any]:
    """{variant name → model directory}: ``build_variants`` into ``out`` under its lock, as ``cached_variants``
    builds (several processes build it once), without loading the models (the callers load one at a time)."""
    from geomcheck.adapt.variants import build_variants
    from geomcheck.cache import lock_for

    with lock_for(out), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' deprecation notes, once per model saved
        return build_variants(base, run, methods=methods, t=t, out_dir=out, device=device, load=False)


def _user_variants(given: list[str] | None) -> list[Any]:
    """``--variant NAME=PATH`` values, checked (name free, path a model directory or a recipe)."""
    from geomcheck.adapt.user_variants import split_variants

    for g in given or ():
        if "=" not in g:
            raise GeomcheckError(f"--variant takes NAME=PATH (a merged model directory or a mergekit recipe), got "
                                 f"{g!r}; built-in variants go to --method")
    return split_variants(given or (), "--variant")[1]


def pipeline_report(dirs: dict[str, Any], names: list[str]) -> dict[str, list[str]]:
    """{variant → its pipeline's differences from the base's, one line each} (``geomcheck.checks.pipeline``)."""
    from geomcheck.checks.pipeline import pipeline_differences

    return {n: [d.message(n) for d in pipeline_differences(dirs["base"], dirs[n])] if n != "base" else []
            for n in names}


def _methods(given: list[str] | None) -> list[str]:
    from geomcheck.adapt.variants import variant_methods

    methods = [m for m in dict.fromkeys(given or DEFAULT_VARIANTS) if m not in ("base", "lora")]
    known = variant_methods()
    bad = [m for m in methods if m not in known]
    if bad:
        raise GeomcheckError(f"--method: unknown variant(s) {', '.join(bad)}; known: base, lora, {', '.join(known)}")
    return methods


def run(args: argparse.Namespace) -> int:
    """Handler of ``geomcheck merges``."""
    from pathlib import Path

    from geomcheck.adapt.cached import variants_cache_dir
    from geomcheck.adapt.tasks import WindowTask
    from geomcheck.adapt.variants import NAMED, buildable
    from geomcheck.checks.merging import measure_claims, variant_rows

    started = time.perf_counter()
    timings: dict[str, float] = {}
    methods = _methods(args.method)
    user = _user_variants(args.variant)
    base = load_base(args.model, args.device, args.trust_remote_code)
    t0 = time.perf_counter()
    run, cached = lora_run(base)
    timings["lora_s"] = time.perf_counter() - t0
    built = buildable(methods, len(run.checkpoint_dirs))
    if len(built) < len(methods):
        say(f"left out {', '.join(m for m in methods if m not in built)}: they merge checkpoints and the LoRA run "
            f"has {len(run.checkpoint_dirs)}")
    t0 = time.perf_counter()
    out = Path(args.out).expanduser() if args.out else variants_cache_dir(base, run, built, t=args.t)
    say(f"variants base, lora, {', '.join(built)}: " + ("reading or building" if (out / "variants.json").is_file()
                                                       else "building") + f" in {out}")
    dirs = variant_dirs(base, run, built, out, device=args.device, t=args.t)
    info = json.loads((out / "variants.json").read_text())
    if user:
        from geomcheck.adapt.user_variants import recipe_bind, user_variant_dirs

        bind = recipe_bind(user, dirs, run.checkpoint_dirs, out, trust_remote_code=args.trust_remote_code)
        dirs = {**dirs, **user_variant_dirs(user, dirs["base"], what="--variant", base_name=base.name, progress=say,
                                            bind=bind)}
    timings["variants_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    all_sets = WindowTask().eval_sets()
    sets = {s: all_sets[s] for s in SETS}
    names = ["base", "lora", *built, *(v.name for v in user)]
    pipelines = pipeline_report(dirs, names)
    embs: dict[str, dict[str, Any]] = {s: {} for s in SETS}
    announced: set[str] = set()
    for i, name in enumerate(names, 1):
        say(f"[{i}/{len(names)}] {name}: embedding the {', '.join(SETS)} sets")
        label = base.name if name == "base" else f"{base.name}+{name}"
        try:
            got = embed_sets(name, dirs[name], sets, args.device, announced, label=label,
                             trust_remote_code=args.trust_remote_code)
        except Exception as exc:  # noqa: BLE001 - a user's directory that does not load: say why, and its pipeline
            if name not in {v.name for v in user}:
                raise
            raise GeomcheckError(f"--variant {name}: {dirs[name]} cannot be loaded and embed the sets "
                                 f"({type(exc).__name__}: {exc})" + (f"; its pipeline: {'; '.join(pipelines[name])}"
                                                                      if pipelines[name] else "")) from None
        for s, e in got.items():
            embs[s][name] = e
    timings["embed_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rows = variant_rows(embs, info, task_set="task", cka_set=CKA_SET, names=names)
    for r in rows:
        r["pipeline"] = pipelines[r["variant"]]  # [] when it is the base's
    claims = measure_claims(embs[CKA_SET], info)
    timings["measure_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started
    settings = {
        "model": args.model, "device": base.device, "t": args.t, "variants": names, "variants_dir": str(out),
        "lora": {"dir": str(Path(run.adapter_dir).parent), "from_cache": cached, "settings": dict(run.settings),
                 "checkpoints": len(run.checkpoint_dirs)},
        "sets": {s: len(ds) for s, ds in sets.items()}, "task_set": "task", "cka_set": CKA_SET, "claims_set": CKA_SET,
        "user_variants": {v.name: str(v.path) for v in user},
        "named_variants": {n: {"method": v.method, "ends": v.ends, **v.params, **({"t": args.t} if v.uses_t else {})}
                           for n, v in NAMED.items() if n in built},
    }
    if args.json:
        from geomcheck._json import jsonable

        print(json.dumps(jsonable({"rows": rows, "claims": [c.to_dict() for c in claims], "settings": settings,
                                   "timings": timings}), indent=2))
        return 0
    print_table(rows, claims, title=f"merges of {base.name}: LoRA run {'from the cache' if cached else 'trained'}, "
                f"t = {args.t:g}", caption=f"silhouette (sil) and Davies-Bouldin (DB) with the true labels; CKA, r and "
                f"the claims on the {CKA_SET} set; gain: task-set silhouette − the base's; kept: gain / the LoRA's "
                f"gain; SLERP=LERP: share of changed tensors where SLERP falls back to LERP "
                f"(slerp_row: of changed rows); pipeline: the variant's sentence-transformers pipeline (modules, pooling, "
                f"Dense, normalisation, prompts, max_seq_length, tokenizer) against the base's; "
                f"{timings['total_s']:.0f} s")
    return 0


def _num(x: Any, signed: bool = False, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if pct:
        return f"{x:.0%}"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def print_table(rows: list[dict[str, Any]], claims: list[Any], *, title: str, caption: str) -> None:
    """The rows as a rich table, then one line per claim (measured numbers and verdict)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=caption)
    cols = ["variant"] + [f"{s} {m}" for s in SETS for m in ("sil", "DB")] + [
        "CKA base", "CKA lora", "r", "SLERP=LERP", "gain", "kept", "pipeline"]
    for c in cols:
        table.add_column(c, no_wrap=True, justify="left" if c == "variant" else "right")
    for r in rows:
        table.add_row(r["variant"], *[_num(r[f"{s}.{m}"], signed=m == "silhouette") for s in SETS
                                      for m in ("silhouette", "davies_bouldin")],
                      _num(r["cka_to_base"]), _num(r["cka_to_lora"]), _num(r["adapter_position"]),
                      _num(r["slerp_is_lerp"], pct=True), _num(r["task_gain"], signed=True),
                      _num(r["share_of_lora_gain"], pct=True),
                      "base's" if not r.get("pipeline") else f"{len(r['pipeline'])} DIFFER")
    console = Console(width=max(160, Console().width))
    console.print(table)
    for r in rows:  # the pipeline is part of the verdict: what differs, said in full
        for line in r.get("pipeline") or ():
            console.print(f"pipeline of {r['variant']} differs from the base's: {line}", soft_wrap=True)
    for c in claims:
        verdict = ("holds" if c.holds else "does not hold") if c.holds is not None else \
            f"not measured (needs --method {' --method '.join(c.missing)})"
        measured = "; ".join(f"{k} {v:+.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in c.measured.items())
        console.print(f"claim {c.name}: {c.text} — {verdict}" + (f" ({measured})" if measured else ""), soft_wrap=True)
