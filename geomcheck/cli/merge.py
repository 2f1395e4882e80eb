"""The ``geomcheck merge`` subcommand: ``add_parser(subparsers)`` adds it to the main CLI.

Importing this module and building the parser import neither torch nor the merge methods;
they load when the command runs. Errors are raised as ``GeomcheckError`` for the main CLI
to print as ``geomcheck: error: …`` with exit status 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from geomcheck.errors import MergeError

__all__ = ["add_parser", "run", "METHOD_NAMES", "parse_value", "parse_t"]

# The names in geomcheck.merge.METHODS, spelled out so that `geomcheck --help` stays torch-free
# (a test checks that the two agree).
METHOD_NAMES = ("linear", "slerp", "nuslerp", "multislerp", "karcher", "task_arithmetic", "ties",
                "dare_linear", "dare_ties", "model_stock")
_ALIASES = {"lambda": "scale"}  # mergekit's spelling; `lambda` is a Python keyword


def parse_value(text: str) -> Any:
    """A parameter value: JSON (``0.2``, ``true``, ``[0, 0.5, 1]``, ``{"mlp": 0.7}``) or else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_t(text: str) -> Any:
    """``--t``: a number, comma-separated depth anchors (``0,0.5,1``) or JSON (list or filter dict)."""
    text = text.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise MergeError(f"--t {text!r} is not valid JSON ({exc}).") from None
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise MergeError(f"--t must be a number, comma-separated anchors like 0,0.5,1, or JSON such as "
                         f"'{{\"self_attn\": 0.3, \"default\": 0.5}}'; got {text!r}.") from None
    return values[0] if len(values) == 1 else values


def _weights(text: str) -> list[float]:
    try:
        return [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number; give --weights after the models, e.g. `A B --weights 0.3 0.7`") from None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``merge`` to an ``argparse`` subparsers object; returns the new parser (handler: ``func``)."""
    p = subparsers.add_parser(
        "merge",
        help="merge models (slerp, linear soup, ties, dare, model stock, …) into a new model directory",
        description="Merge models stored as safetensors, tensor by tensor, into a new directory that "
        "SentenceTransformer(OUT) loads: the first model's config, tokenizer and pipeline "
        "(modules.json, pooling…) are copied beside the merged weights. Methods: "
        + ", ".join(METHOD_NAMES) + ".",
        epilog="Examples: geomcheck merge --method slerp --t 0.5 A B --out AB;  "
        "geomcheck merge --config recipe.yml --out DIR (a mergekit YAML recipe);  "
        "geomcheck merge --method ties A B --base BASE --param density=0.2 --out T;  "
        "geomcheck merge --method slerp --t '{\"self_attn\": 0.3, \"mlp\": 0.7, \"default\": 0.5}' A B --out S",
    )
    p.add_argument("models", nargs="*", metavar="MODEL", help="model directories or .safetensors files")
    p.add_argument("--method", metavar="NAME", help="merge method: " + ", ".join(METHOD_NAMES))
    p.add_argument("--config", metavar="RECIPE.yml", help="build a mergekit YAML recipe instead (merge_method, models "
                   "or slices, parameters with gradients and filters, several stages); models are paths, registry "
                   "names or names given with --bind")
    p.add_argument("--bind", action="append", default=[], metavar="NAME=DIR",
                   help="with --config: the model directory a name in the recipe stands for (repeatable)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (must not exist, or be empty)")
    p.add_argument("--base", metavar="DIR", help="base model, for task_arithmetic, ties, dare_*, model_stock, "
                   "and optionally nuslerp, multislerp, karcher")
    p.add_argument("--t", metavar="T", help="interpolation factor for slerp/nuslerp: 0.5; depth anchors 0,0.5,1; "
                   "or JSON filters '{\"self_attn\": 0.3, \"default\": 0.5}'")
    p.add_argument("--weights", nargs="+", type=_weights, metavar="W",
                   help="one weight per model (space- or comma-separated)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a method parameter, VALUE as JSON or text (density=0.2, seed=1, granularity=row, "
                   "normalize=false); repeat for several")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=run)
    return p


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise MergeError(f"--param {item!r} is not KEY=VALUE (e.g. --param density=0.2).")
        key = _ALIASES.get(key, key)
        if key in params:
            raise MergeError(f"--param {key} is given twice; keep one.")
        params[key] = parse_value(value.strip())
    if args.t is not None:
        if "t" in params:
            raise MergeError("t is given both as --t and as --param t=…; keep one.")
        params["t"] = parse_t(args.t)
    for reserved in ("weights", "overwrite"):
        if reserved in params:
            raise MergeError(f"use --{reserved} instead of --param {reserved}=….")
    return params


def _run_recipe(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from geomcheck.merge.recipe import build_recipe, read_recipe

    given = [flag for flag, v in (("MODEL", args.models), ("--method", args.method), ("--base", args.base),
                                  ("--t", args.t), ("--weights", args.weights), ("--param", args.param)) if v]
    if given:
        raise MergeError(f"--config takes the models and parameters from the recipe; drop {', '.join(given)}.")
    bind = {}
    for item in args.bind:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise MergeError(f"--bind {item!r} is not NAME=DIR (e.g. --bind lora=./my-finetune).")
        if not Path(path).expanduser().is_dir():
            raise MergeError(f"--bind {name}: no model directory at {path!r}.")
        bind[name.strip()] = Path(path).expanduser()

    def resolve(name: str) -> Path:
        from geomcheck.models import resolve as resolve_model

        return resolve_model(name).path

    recipe = read_recipe(args.config)
    out = build_recipe(recipe, args.out, overwrite=args.overwrite, bind=bind, resolve=resolve,
                       progress=lambda text: print(f"geomcheck: {text}", file=sys.stderr, flush=True))
    stages = recipe.stages
    summary = {"out_dir": str(out), "recipe": str(recipe.path), "stages": [
        {"name": st.name, "method": st.method.name, "base_model": st.base.text if st.base else None,
         "models": [r.text for r in st.refs()]} for st in stages]}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"wrote {out}: {len(stages)} stage{'s' if len(stages) > 1 else ''} of {recipe.path}")
    for st in summary["stages"]:
        print(f"  {st['name'] or 'result'}: {st['method']} of {', '.join(st['models'])}"
              + (f" (base {st['base_model']})" if st["base_model"] else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    """Handler of ``geomcheck merge``: merge, then print what was written."""
    from geomcheck.merge.files import merge_files

    if args.config:
        return _run_recipe(args)
    if args.bind:
        raise MergeError("--bind names models of a recipe; use it with --config.")
    if not args.method:
        raise MergeError("give --method NAME and the models to merge, or --config RECIPE.yml.")
    if not args.models:
        raise MergeError("give the models to merge (directories or .safetensors files), or --config RECIPE.yml.")

    weights = [w for chunk in args.weights for w in chunk] if args.weights else None
    result = merge_files(args.method, args.models, args.out, base=args.base, weights=weights,
                         overwrite=args.overwrite, **_params(args))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return 0
    params = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in result.params.items())
    print(f"wrote {result.out_dir}: {result.method}{f' ({params})' if params else ''} of "
          f"{', '.join(args.models)}{f' on base {args.base}' if args.base else ''}")
    print(f"  weights: {', '.join(result.weight_files)} — {result.tensors} tensors, {result.parameters:,} "
          f"parameters, {result.seconds:.1f} s")
    if result.copied:
        print(f"  copied from {args.models[0]}: {', '.join(result.copied)}")
    if result.kept:
        print(f"  kept from the first model (not floating point): {', '.join(result.kept)}")
    if result.skipped:
        print(f"  not copied (other weight formats, would not match the merge): {', '.join(result.skipped)}")
    return 0
