"""The ``geomcheck`` console script."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from geomcheck import __version__
from geomcheck.errors import GeomcheckError


def _families(args: argparse.Namespace) -> int:
    from geomcheck.sequences import FAMILIES

    rows = [
        {"name": f.name, "oeis": f.oeis, "paper": f.paper, "first_terms": f.terms(0, 8),
         "description": f.description}
        for f in FAMILIES.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} sequence families (0-based terms)")
    for col in ("name", "OEIS", "set", "first terms"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["oeis"], "paper" if r["paper"] else "held-out",
                      ", ".join(map(str, r["first_terms"])) + ", …")
    Console().print(table)
    return 0


def _dataset(args: argparse.Namespace) -> int:
    from geomcheck.sequences import heldout_dataset, make_dataset, paper_dataset

    if args.families:
        ds = make_dataset(args.families.split(","), args.per_family, args.length,
                          start=args.start, max_chars=args.max_chars)
    elif args.heldout:
        ds = heldout_dataset(args.per_family, args.length, max_chars=args.max_chars, start=args.start)
    else:
        if args.start:
            raise GeomcheckError("--start applies to --families or --heldout; the paper dataset starts at 0")
        ds = paper_dataset(args.per_family, args.length, max_chars=args.max_chars)
    for text, label, start in zip(ds.texts, ds.labels.tolist(), ds.starts):
        if args.json:
            print(json.dumps({"family": ds.label_names[label], "label": label, "start": start, "text": text}))
        else:
            print(f"{ds.label_names[label]}\t{start}\t{text}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from geomcheck.models import REGISTRY
    from geomcheck.models.loading import availability

    rows = [
        {"alias": s.alias, "hf_id": s.hf_id, "kind": s.kind, "pooling": s.pooling, "dim": s.dim,
         "params": s.params, "available": availability(s)}
        for s in REGISTRY.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} registered models (`pytest suites/ --model ALIAS`)")
    for col in ("alias", "Hugging Face id", "kind", "pooling", "dim", "params", "available here"):
        table.add_column(col)
    style = {"packaged": "green", "hf-cache": "green", "not available": "dim"}
    for r in rows:
        table.add_row(r["alias"], r["hf_id"], r["kind"], r["pooling"], str(r["dim"]), r["params"],
                      f"[{style[r['available']]}]{r['available']}[/]")
    Console().print(table)
    return 0


def _table(args: argparse.Namespace) -> int:
    """Measure each requested model on a dataset and print the paper's Table 2 layout."""
    from geomcheck.errors import ModelNotAvailableError
    from geomcheck.report import Row, paper_rows, rich_table, to_json

    models = list(dict.fromkeys(args.model or []))
    if not models and not args.paper:
        raise GeomcheckError("give at least one --model NAME (`geomcheck models` lists them), "
                             "or --paper for the paper's published Table 2")
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    if models:
        from geomcheck.metrics import cluster_report
        from geomcheck.models.loading import load_model
        from geomcheck.sequences import heldout_dataset, paper_dataset

        ds = paper_dataset() if args.dataset == "paper" else heldout_dataset()
        for name in models:
            try:
                embedder = load_model(name, device=args.device)
            except ModelNotAvailableError as exc:
                why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                skipped[name] = why
                print(f"geomcheck: {name}: not available here: {why}", file=sys.stderr)
                continue
            emb = embedder.embed(ds)
            report = cluster_report(emb, seed=args.seed)
            spec = embedder.spec
            rows.append(Row.measured(name, report, dataset=args.dataset,
                                     hf_id=spec.hf_id if spec is not None else None,
                                     device=embedder.device, dtype=embedder.dtype, fingerprint=emb.fingerprint))
            if args.plot:
                from pathlib import Path

                from geomcheck.plots import tsne_plot

                safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "model"
                path = tsne_plot(emb, Path(args.plot) / f"{safe}-{args.dataset}-tsne.png", seed=args.seed,
                                 report=report)
                print(f"geomcheck: {name}: wrote {path}", file=sys.stderr)
        if not rows:
            raise GeomcheckError(
                f"none of the requested models is available here ({', '.join(models)}); "
                f"`geomcheck models` shows which are"
            )
    if args.paper:
        rows += paper_rows()
    if args.json:
        print(to_json(rows, skipped=skipped))
        return 0
    from rich.console import Console

    notes = []
    if models:
        notes.append(f"measured on the {args.dataset} dataset ({len(ds)} texts, {len(ds.label_names)} families), "
                     f"seed {args.seed}")
    if args.paper:
        notes.append("(paper): published Table 2, paper dataset")
    if skipped:
        notes.append("not available here: " + ", ".join(skipped))
    Console().print(rich_table(rows, caption="; ".join(notes) or None))
    return 0


def _baseline(args: argparse.Namespace) -> int:
    from geomcheck.baseline import rewrite_baseline
    from geomcheck.models import load_model
    from geomcheck.sequences import heldout_dataset, paper_dataset

    emb = load_model(args.model, device=args.device, dtype=args.dtype, cache=False)
    embedded = {"paper": emb.embed(paper_dataset()), "heldout": emb.embed(heldout_dataset())}
    b = rewrite_baseline(args.out, args.model, emb.fingerprint, embedded, meta={"device": emb.device, "dtype": emb.dtype})
    for name, e in b.datasets.items():
        print(f"{args.out}: {name}: {len(e.texts)} texts, silhouette {e.report.silhouette_true:+.4f}, "
              f"DB {e.report.davies_bouldin_true:.4f}, clusters by family: {b.expect[name]['clusters_by_family']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geomcheck",
        description="Test the geometry of text-embedding models: do sequence families separate, "
        "does a LoRA fine-tune or a merge keep its base model's geometry? "
        "The tests themselves run under pytest: `pytest suites/ --model NAME`.",
    )
    parser.add_argument("--version", action="version", version=f"geomcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fam = sub.add_parser("families", help="list the sequence families with their OEIS ids")
    fam.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fam.set_defaults(func=_families)

    mod = sub.add_parser("models", help="list the registered models and whether each is available here")
    mod.add_argument("--json", action="store_true", help="print JSON instead of a table")
    mod.set_defaults(func=_models)

    ds = sub.add_parser("dataset", help="print a dataset's texts (default: the paper's 24)")
    which = ds.add_mutually_exclusive_group()
    which.add_argument("--heldout", action="store_true", help="the held-out families instead of the paper's")
    which.add_argument("--families", metavar="A,B,…", help="comma-separated family names")
    ds.add_argument("--per-family", type=int, default=4, help="sequences per family (default 4)")
    ds.add_argument("--length", type=int, default=50, help="terms per sequence (default 50)")
    ds.add_argument("--start", type=int, default=0, help="0-based index of the first term (default 0)")
    ds.add_argument("--max-chars", type=int, default=20_000, help="cut texts at a term boundary (default 20000)")
    ds.add_argument("--json", action="store_true", help="one JSON object per line")
    ds.set_defaults(func=_dataset)

    tab = sub.add_parser(
        "table",
        help="measure models on the paper's dataset and print the paper's Table 2 layout",
        description="Embed a dataset with each --model, compute silhouette / Davies-Bouldin with the true "
        "family labels and with KMeans labels, and print them in the layout of the paper's Table 2. "
        "A model whose weights are not on this machine is reported and skipped; the exit code is 2 "
        "when no model ran.",
    )
    tab.add_argument("--model", action="append", metavar="NAME",
                     help="registry alias, local directory or Hugging Face id; repeat for several")
    tab.add_argument("--dataset", choices=("paper", "heldout"), default="paper",
                     help="the paper's 24 texts (default) or the held-out families")
    tab.add_argument("--paper", action="store_true",
                     help="add the paper's published rows (every registry model it measured, all 14); "
                     "alone, print just those")
    tab.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")
    tab.add_argument("--plot", metavar="DIR", help="also write a t-SNE PNG per model into DIR")
    tab.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    tab.add_argument("--seed", type=int, default=0, help="seed of KMeans and t-SNE (default 0)")
    tab.set_defaults(func=_table)
    bl = sub.add_parser("baseline", help="(re)write a model's geometry baseline (what `pytest suites/` compares with)",
                        description="Embed the paper's and the held-out datasets with --model and write the baseline "
                        "JSON (embeddings, per-text silhouettes, GeometryReports). An existing file keeps its "
                        "tolerances. The same as `pytest suites/ --model NAME --geomcheck-update-baseline`.")
    bl.add_argument("--model", required=True, help="registry alias, local directory or Hugging Face id")
    bl.add_argument("--out", required=True, metavar="PATH", help="baseline JSON to (re)write")
    bl.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N or mps")
    bl.add_argument("--dtype", default="float32", help="float32 (default), auto, bfloat16 or float16")
    bl.set_defaults(func=_baseline)
    from geomcheck.merge._cli import add_parser as add_merge_parser

    add_merge_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except GeomcheckError as exc:
        print(f"geomcheck: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
