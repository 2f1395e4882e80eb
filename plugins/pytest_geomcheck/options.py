"""The plugin's options and ini keys in one table, their typed parsers, and the validated settings.

The plugin loads in every pytest run of an environment, so every option it registers is
namespaced (``--geomcheck-model``, ``--geomcheck-device``, …): a project's own ``--device``
never collides. The short forms the shipped suites promise (``--model``, ``--merge``,
``--device``, …) are aliases of the same settings that ``add_short_options`` adds; the suites'
``conftest.py`` calls it, and so may a project that wants them for its own tests.

Each command-line option and its ``geomcheck_*`` ini key share one parser: on the command
line it is argparse's ``type=`` (a bad value is pytest's usage error naming the option), in
an ini file it runs when the settings are built. ``SuiteSettings.validate`` then checks what
needs the file system or the registries (models, families, merge methods, paths), without
loading a model. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import functools
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from geomcheck.errors import GeomcheckError, InvalidInputError
from pytest_geomcheck.parsing import (
    _argparse_type,
    _dataset_format,
    _device,
    _dtype,
    _families,
    _fraction,
    _ini_model,
    _int_at_least,
    _metric,
    _tolerances,
)

__all__ = ["OPTIONS", "Option", "SuiteSettings", "add_options", "add_short_options", "settings_from_config",
           "DEFAULT_MERGES"]

DEFAULT_MERGES: tuple[str, ...] = ("soup", "slerp")
DEFAULT_MIN_GAIN_SHARE = 0.25


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One setting: its command-line flag, its ini key (or None), and how its text is parsed."""

    dest: str  # the SuiteSettings field
    flag: str | None
    help: str
    ini: str | None = None
    ini_type: str = "string"  # pytest's addini type
    parse: Callable[[Any], Any] | None = None
    repeat: bool = False  # the flag may be given several times (a list)
    switch: bool = False  # a flag without value
    metavar: str | None = None
    short: str | None = None  # the shipped suites' alias (``--model``), see ``add_short_options``

    def add_to(self, group: Any, flag: str | None = None, help: str | None = None) -> None:
        flag = flag or self.flag
        if flag is None:
            return
        kw: dict[str, Any] = {"dest": f"geomcheck_{self.dest}", "help": help or self.help}
        if self.switch:
            kw.update(action="store_true", default=None)
        else:
            kw.update(action="append" if self.repeat else "store", default=None, metavar=self.metavar)
            if self.parse is not None:
                kw["type"] = _argparse_type(self.parse)
        group.addoption(flag, **kw)


OPTIONS: tuple[Option, ...] = (
    Option("models", "--geomcheck-model", "model under test: a registry alias (geomcheck models), a local directory or a "
           "Hugging Face id; repeat to run the suites once per model. Default: ini geomcheck_model, else minilm",
           ini="geomcheck_model", ini_type="args", repeat=True, metavar="NAME", short="--model"),
    Option("base_model", "--geomcheck-base-model", "base model for LoRA and merges (default: the model under test)",
           ini="geomcheck_base_model", metavar="NAME", short="--base-model"),
    Option("adapter", "--geomcheck-adapter", "an existing peft LoRA adapter of the base model (no training)",
           metavar="DIR", short="--adapter"),
    Option("checkpoints", "--geomcheck-checkpoint", "a fine-tuned checkpoint to merge (peft adapter or model dir); repeatable",
           repeat=True, metavar="DIR", short="--checkpoint"),
    Option("merges", "--geomcheck-merge", "merge variant to build and check (soup, slerp, slerp_ckpt, ties, …), or your "
           "own: NAME=DIR (a merged model directory) or NAME=recipe.yml (a mergekit recipe, built once and cached); "
           "repeatable; default soup, slerp", ini="geomcheck_merge", ini_type="args", repeat=True,
           metavar="METHOD|NAME=PATH", short="--merge"),
    Option("device", "--geomcheck-device", "auto (CUDA when available), cpu, cuda, cuda:N, mps", ini="geomcheck_device",
           parse=_device, short="--device"),
    Option("dtype", "--geomcheck-dtype", "auto (bf16 for LLMs on CUDA, else float32), float32, bfloat16, float16",
           ini="geomcheck_dtype", parse=_dtype, short="--dtype"),
    Option("batch_size", "--geomcheck-batch-size", "encode batch size (halved on CUDA OOM)", ini="geomcheck_batch_size",
           parse=_int_at_least(1), metavar="N", short="--batch-size"),
    Option("trust_remote_code", "--geomcheck-trust-remote-code", "let this model's own Python files (config.json "
           "auto_map) run: the name exactly as given to --geomcheck-model / --geomcheck-base-model; repeatable. "
           "Without it such a model is refused", ini="geomcheck_trust_remote_code", ini_type="args", repeat=True,
           metavar="NAME"),
    Option("families", "--geomcheck-families", "families of the suite dataset (default: the paper's six)",
           ini="geomcheck_families", ini_type="args", parse=_families, metavar="A,B,…", short="--families"),
    Option("per_family", "--geomcheck-per-family", "texts per family in the suite dataset (default 4)",
           ini="geomcheck_per_family", parse=_int_at_least(2, " (silhouette needs 2 texts per family)"),
           metavar="N", short="--per-family"),
    Option("seq_length", "--geomcheck-seq-length", "terms per text in the suite dataset (default 50)",
           ini="geomcheck_seq_length", parse=_int_at_least(1), metavar="N", short="--seq-length"),
    Option("dataset", "--geomcheck-dataset", "your own labelled texts (CSV, TSV, JSONL, JSON, Parquet; "
           "geomcheck.load_dataset) as the suite dataset: the suites, its baseline and the LoRA task run on it",
           ini="geomcheck_dataset", metavar="PATH", short="--dataset"),
    Option("text_column", "--geomcheck-text-column", "with --geomcheck-dataset: the column of the texts (default text)",
           ini="geomcheck_text_column", metavar="NAME", short="--text-column"),
    Option("label_column", "--geomcheck-label-column", "with --geomcheck-dataset: the column of the labels (default "
           "label)", ini="geomcheck_label_column", metavar="NAME", short="--label-column"),
    Option("dataset_format", "--geomcheck-dataset-format", "with --geomcheck-dataset: csv, tsv, jsonl, json or parquet "
           "(default: from the file's suffix; .gz/.zst files are decompressed)", ini="geomcheck_dataset_format",
           parse=_dataset_format, metavar="FORMAT", short="--dataset-format"),
    Option("max_rows", "--geomcheck-max-rows", "with --geomcheck-dataset: refuse a file of more rows (default: "
           "load_dataset's max_rows)",
           ini="geomcheck_max_rows", parse=_int_at_least(4, " (2 labels of 2 texts)"), metavar="N", short="--max-rows"),
    Option("metric", "--geomcheck-metric", "the silhouette's distance in the tables, checks and baselines: euclidean "
           "(the paper's, default) or cosine (1 - cos; exact at any size in O(N k d))", ini="geomcheck_metric",
           parse=_metric, metavar="euclidean|cosine", short="--metric"),
    Option("exact_max", "--geomcheck-exact-max", "the most texts whose Euclidean silhouette is computed exactly "
           "(O(N^2); default 60000: 11 s for the silhouette, ~2.4 minutes for a baseline comparison on a 2-core CPU); a larger set gets estimates from a stratified "
           "sample of its texts with 95-percent intervals, marked in the tables", ini="geomcheck_exact_max",
           parse=_int_at_least(2), metavar="N", short="--exact-max"),
    Option("report_dir", "--geomcheck-report", "write report.json, report.md and t-SNE PNGs of every "
           "model/variant to DIR", metavar="DIR", short="--report"),
    Option("baseline", "--geomcheck-baseline", "baseline to compare with (default: <geomcheck_baselines>/<model>.json)",
           metavar="PATH"),
    Option("update_baseline", "--geomcheck-update-baseline", "write the baseline(s) from this run instead of "
           "comparing", switch=True),
    Option("no_cache", "--no-geomcheck-cache", "do not read or write the embedding / LoRA / merge caches",
           switch=True),
    Option("paper_claims", "--geomcheck-paper-claims", "gate on the paper's merge claims (measured and shown on "
           "every run; not gated by default)", ini="geomcheck_paper_claims", ini_type="bool", switch=True),
    Option("sweep", "--geomcheck-sweep", "with --geomcheck-report DIR: the merge suite also writes the t-sweep "
           "base -> LoRA (slerp and linear, or the --geomcheck-merge methods that interpolate, at t = 0, 0.25, 0.5, "
           "0.75, 1) as sweep.json and sweep.png into DIR", ini="geomcheck_sweep", ini_type="bool", switch=True),
    Option("baselines_dir", None, "directory of your own <model>.json baselines, relative to the rootdir (default "
           "geomcheck-baselines; the shipped ones are found in the installed package)", ini="geomcheck_baselines"),
    Option("tolerances", None, "baseline tolerance overrides, one NAME=VALUE per line", ini="geomcheck_tolerances",
           ini_type="linelist", parse=_tolerances),
    Option("min_gain_share", None, f"share of the LoRA task gain a merge must keep (default {DEFAULT_MIN_GAIN_SHARE})",
           ini="geomcheck_min_gain_share", parse=_fraction),
)


def add_short_options(parser: pytest.Parser) -> None:
    """Add the short forms (``--model`` for ``--geomcheck-model``, …) as aliases of the same settings.

    The shipped suites' ``conftest.py`` calls this, so the short forms exist exactly when the
    suites run; a project may call it too. A short name the project already uses for an option
    of its own stays the project's (the ``--geomcheck-*`` form still works), and giving it in a run
    where the short forms were asked for is a usage error naming the clash
    (``pytest_geomcheck.cmdline``); calling this twice adds nothing.
    """
    group = parser.getgroup("geomcheck-suites", "geomcheck's shipped suites: short forms of the geomcheck options")
    present = {name for option in group.options for name in option.names()}
    if "--geomcheck-short-forms" not in present:  # a hidden marker: the short forms were asked for in this run,
        # so a short form the project's own option took is a usage error (pytest_geomcheck.cmdline), not a default
        group.addoption("--geomcheck-short-forms", action="store_true", default=True, dest="geomcheck_short_forms",
                        help=argparse.SUPPRESS)
    for opt in OPTIONS:
        if opt.short is not None and opt.short not in present:
            try:
                opt.add_to(group, opt.short, f"{opt.flag} (the same setting)")
            except (ValueError, argparse.ArgumentError):  # the project's own option of that name
                continue


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("geomcheck", "geometry of embedding models (geomcheck)")
    for opt in OPTIONS:
        opt.add_to(group)
        if opt.ini is not None:
            parser.addini(opt.ini, opt.help if opt.flag is None else f"default {opt.flag}", type=opt.ini_type)


# --- the validated settings ---------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteSettings:
    """The geomcheck options of one run, parsed (see ``pytest --help``, group geomcheck)."""

    models: tuple[str, ...] = ("minilm",)
    base_model: str | None = None
    adapter: str | None = None
    checkpoints: tuple[str, ...] = ()
    merges: tuple[str, ...] = DEFAULT_MERGES
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | None = None
    trust_remote_code: tuple[str, ...] = ()  # the models whose own code may run (load_model's trust_remote_code)
    families: tuple[str, ...] | None = None
    per_family: int = 4
    seq_length: int = 50
    dataset: str | None = None  # a path: your own labelled texts replace the sequence suite dataset
    text_column: str = "text"
    label_column: str = "label"
    dataset_format: str | None = None
    max_rows: int | None = None  # None: load_dataset's own limit
    metric: str = "euclidean"  # the silhouette's distance (geomcheck.metrics.METRICS)
    exact_max: int | None = None  # None: geomcheck.metrics.EXACT_MAX_N
    report_dir: str | None = None
    baseline: str | None = None
    update_baseline: bool = False
    cache: bool = True
    paper_claims: bool = False
    sweep: bool = False
    tolerances: dict[str, float] = field(default_factory=dict)
    baselines_dir: str = "geomcheck-baselines"
    min_gain_share: float = DEFAULT_MIN_GAIN_SHARE

    def validate(self) -> SuiteSettings:
        """Check the values that need the registries or the file system (no model is loaded); returns self."""
        from geomcheck.adapt.cached import adapter_dir
        from geomcheck.data import get_family
        from geomcheck.models import resolve

        if not self.models:
            raise InvalidInputError("--geomcheck-model: give at least one model")
        for option, name in [("--geomcheck-model", m) for m in self.models] + [("--geomcheck-base-model",
                                                                                  self.base_model)]:
            if name is None:
                continue
            try:
                resolve(name)
            except GeomcheckError as exc:
                raise type(exc)(f"{option}: {exc}") from None
        if self.adapter is not None:
            adapter_dir(self.adapter, "--geomcheck-adapter")
        for c in self.checkpoints:
            p = Path(c).expanduser()
            if not p.is_dir():
                raise InvalidInputError(f"--geomcheck-checkpoint: no directory at {c!r}")
            if not any((p / f).is_file() for f in ("adapter_config.json", "config.json", "modules.json")):
                raise InvalidInputError(f"--geomcheck-checkpoint: {c!r} is neither a peft adapter (adapter_config.json) "
                                        f"nor a model directory (config.json / modules.json)")
        self.user_variants  # NAME=PATH: the name free, the path a model directory or a recipe
        for f in self.families or ():
            get_family(f)
        if self.families is not None and len(set(self.families)) < 2:
            raise InvalidInputError(f"--geomcheck-families: the cluster metrics need at least 2 families, got {self.families}")
        if self.dataset is not None:
            changed = [flag for flag, v, d in (("--geomcheck-families", self.families, None),
                                               ("--geomcheck-per-family", self.per_family, 4),
                                               ("--geomcheck-seq-length", self.seq_length, 50)) if v != d]
            if changed:
                raise InvalidInputError(f"--geomcheck-dataset replaces the sequence suite dataset: "
                                        f"{', '.join(changed)} do not apply to it")
            try:
                with warnings.catch_warnings():  # duplicates are announced once, when the suites load it
                    warnings.simplefilter("ignore")
                    self.dataset_loaded()
            except GeomcheckError as exc:
                raise type(exc)(f"--geomcheck-dataset: {exc}") from None
        elif (self.text_column, self.label_column, self.dataset_format, self.max_rows) != ("text", "label", None, None):
            raise InvalidInputError("--geomcheck-text-column / --geomcheck-label-column / --geomcheck-dataset-format / "
                                    "--geomcheck-max-rows need --geomcheck-dataset PATH")
        if self.baseline is not None and not self.update_baseline and not Path(self.baseline).is_file():
            raise InvalidInputError(f"--geomcheck-baseline: no file at {self.baseline!r} "
                                    f"(write one with --geomcheck-update-baseline)")
        if self.sweep and self.report_dir is None:
            raise InvalidInputError("--geomcheck-sweep (ini geomcheck_sweep) writes sweep.json and sweep.png into the "
                                    "report directory: give --geomcheck-report DIR too, or drop the option")
        if self.report_dir is not None:  # before the run: not after an hour of it
            from geomcheck.reporting.record import check_report_dir

            try:
                check_report_dir(self.report_dir)
            except GeomcheckError as exc:
                raise type(exc)(f"--geomcheck-report: {exc}") from None
        return self

    @property
    def variant_names(self) -> tuple[str, ...]:
        """The names of the ``--geomcheck-merge`` variants, as tests and reports show them: each method, and
        the NAME of each ``NAME=PATH``."""
        return tuple(dict.fromkeys(m.partition("=")[0].strip() if "=" in m else m for m in self.merges))

    @property
    def builtin_merges(self) -> tuple[str, ...]:
        """The built-in methods among ``--geomcheck-merge`` (soup, slerp, …), checked."""
        from geomcheck.adapt.user_variants import split_variants

        return tuple(split_variants(self.merges)[0])

    @property
    def user_variants(self) -> tuple[Any, ...]:
        """Your own variants among ``--geomcheck-merge`` (``NAME=PATH``) as ``geomcheck.adapt.user_variants.
        UserVariant``s, checked (name, path); paths are absolute (``settings_from_config`` resolves them)."""
        from geomcheck.adapt.user_variants import split_variants

        return tuple(split_variants(self.merges)[1])

    def suite_dataset(self) -> Any:
        """The suites' main dataset: ``--geomcheck-dataset``'s labelled texts (a ``TextDataset``), else
        the paper's protocol or ``--geomcheck-families/-per-family/-seq-length`` (a ``SequenceDataset``)."""
        if self.dataset is not None:
            return self.dataset_loaded()
        from geomcheck.data import PAPER_FAMILIES, make_dataset

        return make_dataset(self.families or PAPER_FAMILIES, self.per_family, self.seq_length)

    def dataset_loaded(self) -> Any:
        """``--geomcheck-dataset`` read with ``geomcheck.load_dataset`` (once per file version and columns)."""
        p = Path(self.dataset)
        stat = p.stat() if p.is_file() else None
        return _load(str(p), self.text_column, self.label_column, self.dataset_format, self.max_rows,
                     stat and (stat.st_mtime_ns, stat.st_size))

    @property
    def is_paper_protocol(self) -> bool:
        from geomcheck.data import PAPER_FAMILIES

        return (self.dataset is None and self.families in (None, PAPER_FAMILIES) and self.per_family == 4
                and self.seq_length == 50)

    @property
    def suite_dataset_name(self) -> str:
        """Name of the suite dataset in reports and baselines: "paper" under the paper's protocol, the file's
        name (``topics`` for ``topics.jsonl``) for ``--geomcheck-dataset``, else "suite"."""
        if self.dataset is not None:
            from geomcheck.data.text import dataset_name

            return dataset_name(self.dataset)
        return "paper" if self.is_paper_protocol else "suite"

    @property
    def suite_datasets(self) -> tuple[str, ...]:
        """The datasets the clustering suite and baselines cover: the suite dataset, and the held-out
        sequence families unless the suite dataset is your own (they say nothing about your labels)."""
        return (self.suite_dataset_name,) if self.dataset is not None else (self.suite_dataset_name, "heldout")

    def load_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"device": self.device, "dtype": self.dtype, "cache": self.cache}
        if self.batch_size is not None:
            kw["batch_size"] = self.batch_size
        if self.trust_remote_code:
            kw["trust_remote_code"] = self.trust_remote_code  # names: consent for those models only
        return kw

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON-able dict (for report.json)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _variant_path(entry: str, here: Path) -> str:
    """``NAME=PATH`` with PATH absolute (relative ones from ``here``); a method name as it is."""
    name, sep, path = str(entry).partition("=")
    if not sep or not path.strip():
        return entry
    return f"{name.strip()}={(here / Path(path.strip()).expanduser()).resolve()}"


@functools.lru_cache(maxsize=8)
def _load(path: str, text: str, label: str, format: str | None, max_rows: int | None, version: Any) -> Any:
    from geomcheck.data import load_dataset

    return load_dataset(path, text=text, label=label, format=format, **({} if max_rows is None else
                                                                        {"max_rows": max_rows}))


def settings_from_config(config: pytest.Config, root: Path | None = None) -> SuiteSettings:
    """The options of this run: each from its flag, else its ini key, else the default. ``root``: the
    rootdir ini paths are relative to when there is no ini file (default pytest's)."""
    root = Path(root if root is not None else config.rootpath)
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        value = config.getoption(f"geomcheck_{opt.dest}") if opt.flag is not None else None
        if value is None and opt.ini is not None:
            raw = config.getini(opt.ini)
            if raw not in (None, "", []):
                try:  # "args" ini values are lists already (space-separated in the file)
                    value = opt.parse(raw) if opt.parse is not None and opt.ini_type != "args" else raw
                except GeomcheckError as exc:
                    raise pytest.UsageError(f"geomcheck: {opt.ini}: {exc}") from None
        if value is None:
            continue
        values[opt.dest] = tuple(value) if isinstance(value, list) else value
    if "dataset" in values:  # a path: from the command line relative to where pytest runs, from an ini to its file
        flag = config.getoption("geomcheck_dataset")
        here = config.invocation_params.dir if flag is not None else (
            config.inipath.parent if config.inipath is not None else root)
        values["dataset"] = str((Path(here) / Path(values["dataset"]).expanduser()).resolve())
    ini_dir = Path(config.inipath.parent if config.inipath is not None else root)
    for dest in ("models", "base_model"):  # from an ini: a model directory relative to the ini file, as the dataset
        if dest in values and config.getoption(f"geomcheck_{dest}") is None:
            names = values[dest] if isinstance(values[dest], tuple) else (values[dest],)
            names = tuple(_ini_model(n, ini_dir) for n in names)
            values[dest] = names if isinstance(values[dest], tuple) else names[0]
    if "merges" in values:  # NAME=PATH: from the command line relative to where pytest runs, from an ini to its file
        here = config.invocation_params.dir if config.getoption("geomcheck_merges") is not None else ini_dir
        values["merges"] = tuple(_variant_path(m, Path(here)) for m in values["merges"])
    if "models" in values:  # the same model twice runs once
        values["models"] = tuple(dict.fromkeys(values["models"]))
    if "no_cache" in values:
        values["cache"] = not values.pop("no_cache")
    return SuiteSettings(**values)
