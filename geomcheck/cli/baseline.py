"""(Re)write a model's geometry baseline (``geomcheck baseline``), as ``--geomcheck-update-baseline`` does."""

from __future__ import annotations

import argparse

from geomcheck.cli._dataset import add_metric_flags, add_reading_flags, read_dataset

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    bl = sub.add_parser("baseline", help="(re)write a model's geometry baseline (what `pytest suites/` compares with)",
                        description="Embed the paper's and the held-out datasets (or, with --dataset PATH, your own "
                        "labelled texts) with --model and write the baseline JSON (embeddings, per-text silhouettes, "
                        "GeometryReports). An existing file keeps its tolerances. The same as `geomcheck check --model "
                        "NAME [--dataset PATH] --geomcheck-update-baseline`.")
    bl.add_argument("--model", required=True, help="registry alias, local directory or Hugging Face id")
    bl.add_argument("--out", required=True, metavar="PATH", help="baseline JSON to (re)write")
    bl.add_argument("--dataset", metavar="PATH", help="your own labelled texts (CSV, TSV, JSONL, JSON, Parquet) instead "
                    "of the paper's and the held-out sets; the dataset is named after the file, as in the suites")
    add_reading_flags(bl)
    bl.add_argument("--device", default="auto", help="auto (default, as `geomcheck table` and the suites), cpu, cuda, "
                    "cuda:N or mps; the file records it")
    add_metric_flags(bl, metric="; the baseline records it, and a run with the other --geomcheck-metric is "
                     "refused against it", above="the file stores the exact silhouettes of a stratified sample of texts, "
                     "which later runs pair")
    bl.add_argument("--dtype", default="float32", help="float32 (default), auto, bfloat16 or float16")
    bl.add_argument("--trust-remote-code", action="store_true", help="let the model's own Python files (config.json auto_map) run; give it only for a model whose source you trust (without it such a model is refused)")
    bl.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from geomcheck.checks.baseline import rewrite_baseline
    from geomcheck.data import heldout_dataset, paper_dataset
    from geomcheck.models import load_model

    if args.dataset is not None:  # read before the model loads: a bad file fails at once
        from geomcheck.data.text import dataset_name

        datasets = {dataset_name(args.dataset): read_dataset(args)}
    else:
        datasets = {"paper": paper_dataset(), "heldout": heldout_dataset()}
    emb = load_model(args.model, device=args.device, dtype=args.dtype, cache=False,
                     trust_remote_code=args.trust_remote_code)
    embedded = {name: emb.embed(ds) for name, ds in datasets.items()}
    b = rewrite_baseline(args.out, args.model, emb.fingerprint, embedded, meta={"device": emb.device, "dtype": emb.dtype},
                         metric=args.metric, exact_max=args.exact_max)
    for name, e in b.datasets.items():
        sampled = "" if e.silhouette_rows is None else f" (estimated from {e.silhouette_rows.size:,} sampled texts)"
        print(f"{args.out}: {name}: {len(e.texts)} texts, silhouette {e.report.silhouette_true:+.4f}{sampled}, "
              f"DB {e.report.davies_bouldin_true:.4f}, clusters by family: {b.expect[name]['clusters_by_family']}")
    return 0
