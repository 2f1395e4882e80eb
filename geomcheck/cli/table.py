"""Measure models on a dataset and print the paper's Table 2 layout (``geomcheck table``)."""

from __future__ import annotations

import argparse
import sys

from geomcheck.cli._dataset import add_metric_flags, add_reading_flags, read_dataset
from geomcheck.errors import GeomcheckError

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    tab.add_argument("--dataset", default="paper", metavar="paper|heldout|PATH",
                     help="the paper's 24 texts (default), the held-out families, or your own labelled texts "
                          "(CSV, TSV, JSONL, JSON, Parquet: geomcheck.load_dataset)")
    add_reading_flags(tab)
    tab.add_argument("--paper", action="store_true",
                     help="under each measured model the paper measured, its published row and the difference "
                     "(measured - published), then the paper's other published rows (all 14 in all); alone, print "
                     "just those. The JSON rows carry both whether or not --paper is given")
    tab.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")
    tab.add_argument("--plot", metavar="DIR", help="also write a t-SNE PNG per model into DIR")
    tab.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    tab.add_argument("--trust-remote-code", action="store_true", help="let the model's own Python files (config.json auto_map) run; give it only for a model whose source you trust (without it such a model is refused)")
    tab.add_argument("--prompt", metavar="TEXT", help="text put before every input (default: none, as the paper "
                     "ran its models, unless the model's own sentence-transformers config names a default prompt; "
                     "`geomcheck models --json` shows each card's document prompt)")
    tab.add_argument("--seed", type=int, default=42, help="seed of KMeans and t-SNE (default 42, the paper's KMeans "
                     "random_state; KMeans runs n_init=10 as the paper did)")
    add_metric_flags(tab, metric="", above="estimates from a stratified sample with 95-percent intervals, "
                     "marked in the table")
    tab.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    tab.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Measure each requested model on a dataset and print the paper's Table 2 layout."""
    from geomcheck.errors import ModelNotAvailableError
    from geomcheck.reporting.tables import Row, paper_rows, published_result, rich_table, to_json

    models = list(dict.fromkeys(args.model or []))
    if not models and not args.paper:
        raise GeomcheckError("give at least one --model NAME (`geomcheck models` lists them), "
                             "or --paper for the paper's published Table 2")
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    if models:
        from geomcheck.data import heldout_dataset, paper_dataset
        from geomcheck.metrics import cluster_report
        from geomcheck.models.loading import load_model

        if args.dataset in ("paper", "heldout"):
            ds = paper_dataset() if args.dataset == "paper" else heldout_dataset()
        else:
            from geomcheck.data.text import dataset_name

            ds = read_dataset(args)
            args.dataset = dataset_name(args.dataset)  # the name rows, notes and PNGs carry (as in the suites)
        for name in models:
            try:
                embedder = load_model(name, device=args.device, trust_remote_code=args.trust_remote_code,
                                      prompt=args.prompt)
            except ModelNotAvailableError as exc:
                why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                skipped[name] = why
                print(f"geomcheck: {name}: not available here: {why}", file=sys.stderr)
                continue
            emb = embedder.embed(ds)
            report = cluster_report(emb, seed=args.seed, metric=args.metric, exact_max=args.exact_max,
                                    progress=False if args.quiet else None)
            spec = embedder.spec
            rows.append(Row.measured(name, report, dataset=args.dataset, paper=published_result(spec, args.dataset),
                                     hf_id=spec.hf_id if spec is not None else None,
                                     device=embedder.device, dtype=embedder.dtype, prompt=embedder.prompt,
                                     fingerprint=emb.fingerprint))
            if args.plot:
                from pathlib import Path

                from geomcheck.models import model_id
                from geomcheck.reporting.plots import tsne_file_name, tsne_plot

                path = tsne_plot(emb, Path(args.plot) / tsne_file_name(args.dataset, model_id(name)), seed=args.seed,
                                 report=report)
                print(f"geomcheck: {name}: wrote {path}", file=sys.stderr)
        if not rows:
            raise GeomcheckError(
                f"none of the requested models is available here ({', '.join(models)}); "
                f"`geomcheck models` shows which are"
            )
    if args.paper:  # the published rows not already shown under their measured model
        shown = {r.extra.get("hf_id") for r in rows if r.paper is not None}
        rows += [r for r in paper_rows() if r.extra.get("hf_id") not in shown]
    if args.json:
        print(to_json(rows, skipped=skipped))
        return 0
    from rich.console import Console

    notes = []
    if models:
        notes.append(f"measured on the {args.dataset} dataset ({len(ds)} texts, {len(ds.label_names)} classes), "
                     f"KMeans n_init 10, seed {args.seed}")
    if args.paper:
        notes.append("(paper): published Table 2, paper dataset")
        if any(r.paper is not None for r in rows if r.source == "measured"):
            notes.append("\u0394: measured \u2212 published")
    if skipped:
        notes.append("not available here: " + ", ".join(skipped))
    Console().print(rich_table(rows, caption="; ".join(notes) or None, published=args.paper))
    return 0
