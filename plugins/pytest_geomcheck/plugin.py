"""geomcheck's pytest plugin: options, fixtures and hooks only; the work lives in ``geomcheck``.

Imported by every pytest run in an environment where geomcheck is installed, so it must
stay cheap: nothing heavy (numpy, torch, models) is imported until a fixture needs it.

- Options (group "geomcheck", most also settable as ``geomcheck_*`` ini keys) become a
  validated ``geomcheck.suite.SuiteSettings``; a bad value is a usage error.
- Every test that uses a model fixture runs once per ``--model`` (ids: the aliases).
- What the tests measure goes to a ``geomcheck.run_report.RunRecord``: pytest-xdist
  workers send theirs to the controller, which prints one summary and writes one
  ``--geomcheck-report`` directory.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

import pytest

import geomcheck

_SETTINGS = pytest.StashKey["object"]()
_RECORD = pytest.StashKey["object"]()
_LOADED = pytest.StashKey[dict]()  # name -> Embedder, so that each model loads once per process
_REPORT_FILES = pytest.StashKey[list]()
_MODEL_PARAM = "geomcheck_model_name"
_VARIANT_PARAM = "geomcheck_variant"
_INI_DEFAULTS = {"geomcheck_per_family": "4", "geomcheck_seq_length": "50"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("geomcheck", "geometry of embedding models (geomcheck)")
    add = group.addoption
    add("--model", action="append", default=None, metavar="NAME",
        help="model under test: a registry alias (geomcheck models), a local directory or a Hugging Face id; "
             "repeat to run the suites once per model. Default: ini geomcheck_model, else minilm")
    add("--base-model", default=None, metavar="NAME", help="base model for LoRA and merges (default: the model under test)")
    add("--adapter", default=None, metavar="DIR", help="an existing peft LoRA adapter of the base model (no training)")
    add("--checkpoint", action="append", default=None, metavar="DIR",
        help="a fine-tuned checkpoint to merge (peft adapter or model dir); repeatable")
    add("--merge", action="append", default=None, metavar="METHOD",
        help="merge variant to build and check (soup, slerp, slerp_ckpt, ties, …); repeatable; default soup, slerp")
    add("--device", default=None, help="auto (CUDA when available), cpu, cuda, cuda:N, mps")
    add("--dtype", default=None, help="auto (bf16 for LLMs on CUDA, else float32), float32, bfloat16, float16")
    add("--batch-size", default=None, type=int, metavar="N", help="encode batch size (halved on CUDA OOM)")
    add("--families", default=None, metavar="A,B,…", help="families of the suite dataset (default: the paper's six)")
    add("--per-family", default=None, type=int, metavar="N", help="texts per family in the suite dataset (default 4)")
    add("--seq-length", default=None, type=int, metavar="N", help="terms per text in the suite dataset (default 50)")
    add("--geomcheck-report", default=None, metavar="DIR",
        help="write report.json, report.md and t-SNE PNGs of every model/variant to DIR")
    add("--geomcheck-baseline", default=None, metavar="PATH",
        help="baseline to compare with (default: <geomcheck_baselines>/<model>.json)")
    add("--geomcheck-update-baseline", action="store_true", default=False,
        help="write the baseline(s) from this run instead of comparing")
    add("--no-geomcheck-cache", action="store_true", default=False,
        help="do not read or write the embedding / LoRA / merge caches")
    add("--geomcheck-paper-claims", action="store_true", default=None,
        help="gate on the paper's merge claims (measured and shown on every run; not gated by default)")
    for name, kind, help_ in (
        ("geomcheck_model", "args", "default model(s) under test"),
        ("geomcheck_base_model", "string", "default --base-model"),
        ("geomcheck_merge", "args", "default merge variants (soup slerp)"),
        ("geomcheck_device", "string", "default --device"),
        ("geomcheck_dtype", "string", "default --dtype"),
        ("geomcheck_batch_size", "string", "default --batch-size"),
        ("geomcheck_families", "args", "default --families"),
        ("geomcheck_per_family", "string", "default --per-family"),
        ("geomcheck_seq_length", "string", "default --seq-length"),
        ("geomcheck_baselines", "string", "directory of <model>.json baselines (default suites/baselines, "
                                          "relative to the rootdir)"),
        ("geomcheck_tolerances", "linelist", "baseline tolerance overrides, one NAME=VALUE per line"),
        ("geomcheck_min_gain_share", "string", "share of the LoRA task gain a merge must keep (default 0.25)"),
        ("geomcheck_paper_claims", "bool", "gate on the paper's merge claims"),
    ):
        parser.addini(name, help_, type=kind, default=_INI_DEFAULTS.get(name))


# --- settings ----------------------------------------------------------------------------------


def _int(value, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{what}: expected an integer, got {value!r}") from None


def _settings_from(config: pytest.Config):
    from geomcheck.suite import DEFAULT_MERGES, SuiteSettings

    opt, ini = config.getoption, config.getini
    families = opt("--families")
    families = [f.strip() for f in families.split(",") if f.strip()] if families else (ini("geomcheck_families") or None)
    tolerances = {}
    for line in ini("geomcheck_tolerances") or ():
        name, sep, value = line.partition("=")
        try:
            tolerances[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise pytest.UsageError(f"geomcheck_tolerances: expected NAME=NUMBER, got {line!r}")
    claims = opt("--geomcheck-paper-claims")
    return SuiteSettings(
        models=tuple(opt("--model") or ini("geomcheck_model") or ("minilm",)),
        base_model=opt("--base-model") or ini("geomcheck_base_model") or None,
        adapter=opt("--adapter"),
        checkpoints=tuple(opt("--checkpoint") or ()),
        merges=tuple(opt("--merge") or ini("geomcheck_merge") or DEFAULT_MERGES),
        device=opt("--device") or ini("geomcheck_device") or "auto",
        dtype=opt("--dtype") or ini("geomcheck_dtype") or "auto",
        batch_size=opt("--batch-size") if opt("--batch-size") is not None else _int(ini("geomcheck_batch_size"),
                                                                                     "geomcheck_batch_size"),
        families=tuple(families) if families else None,
        per_family=opt("--per-family") if opt("--per-family") is not None else _int(ini("geomcheck_per_family"),
                                                                                     "geomcheck_per_family"),
        seq_length=opt("--seq-length") if opt("--seq-length") is not None else _int(ini("geomcheck_seq_length"),
                                                                                    "geomcheck_seq_length"),
        report_dir=opt("--geomcheck-report"),
        baseline=opt("--geomcheck-baseline"),
        update_baseline=bool(opt("--geomcheck-update-baseline")),
        cache=not opt("--no-geomcheck-cache"),
        paper_claims=bool(claims if claims is not None else ini("geomcheck_paper_claims")),
        tolerances=tolerances,
    )


def settings(config: pytest.Config):
    """The run's validated ``SuiteSettings``."""
    if _SETTINGS not in config.stash:
        config.stash[_SETTINGS] = _settings_from(config)
    return config.stash[_SETTINGS]


def record(config: pytest.Config):
    """The run's ``RunRecord`` (this process's part of it under xdist)."""
    if _RECORD not in config.stash:
        from geomcheck.run_report import RunRecord

        config.stash[_RECORD] = RunRecord()
    return config.stash[_RECORD]


def pytest_configure(config: pytest.Config) -> None:
    for marker in ("geomcheck_slow: a slow geometry test (LoRA training, merges); deselect with -m 'not geomcheck_slow'",
                   "geomcheck_gpu: needs CUDA; skipped with a reason when there is none",
                   "geomcheck_model(kind): run only on models of this kind ('encoder' or 'llm')"):
        config.addinivalue_line("markers", marker)
    if config.getoption("help", False):
        return
    s = settings(config)
    from geomcheck.suite import SuiteSettings

    if s != SuiteSettings(tolerances=s.tolerances):  # defaults are valid; anything else is checked now
        from geomcheck.errors import GeomcheckError

        try:
            s.validate()
        except GeomcheckError as exc:
            raise pytest.UsageError(f"geomcheck: {exc}") from None
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker and s.device in ("auto", "cuda"):
        _one_gpu_per_worker(worker)


def _one_gpu_per_worker(worker: str) -> None:
    """``gwN`` sees only GPU N mod #GPUs, so ``-n <gpus>`` spreads the models over the GPUs."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = [g for g in visible.split(",") if g.strip()]
    else:
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return
        gpus = [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    if len(gpus) > 1:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[int(worker.lstrip("gw") or 0) % len(gpus)]


def pytest_report_header(config: pytest.Config) -> str:
    s = settings(config)
    return f"geomcheck {geomcheck.__version__}, model under test: {', '.join(s.models)}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if _MODEL_PARAM in metafunc.fixturenames:
        from geomcheck.suite import model_id

        models = settings(metafunc.config).models
        metafunc.parametrize(_MODEL_PARAM, models, ids=[model_id(m) for m in models], indirect=True, scope="session")
    if _VARIANT_PARAM in metafunc.fixturenames and not _already_parametrized(metafunc, _VARIANT_PARAM):
        merges = settings(metafunc.config).merges
        metafunc.parametrize(_VARIANT_PARAM, merges, ids=list(merges))


def _already_parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    return any(name in m.args[0] if isinstance(m.args[0], (list, tuple)) else name in str(m.args[0]).split(",")
               for m in metafunc.definition.iter_markers("parametrize"))


def _model_of(item: pytest.Item) -> tuple[str | None, str | None]:
    params = getattr(getattr(item, "callspec", None), "params", {})
    model = params.get(_MODEL_PARAM)
    if model is None:
        return None, None
    from geomcheck.suite import model_id

    return model_id(model), params.get(_VARIANT_PARAM)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("geomcheck_gpu") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("geomcheck_gpu: needs CUDA, and torch sees no GPU here")
    mark = item.get_closest_marker("geomcheck_model")
    if mark is not None:
        kind = mark.kwargs.get("kind", mark.args[0] if mark.args else None)
        if kind not in ("encoder", "llm"):
            raise pytest.UsageError(f"{item.nodeid}: geomcheck_model(kind=…) must be 'encoder' or 'llm', got {kind!r}")
        name = getattr(getattr(item, "callspec", None), "params", {}).get(_MODEL_PARAM)
        if name is not None:
            from geomcheck.models import model_kind

            actual = model_kind(name)
            if actual != kind:
                pytest.skip(f"geomcheck_model(kind={kind!r}): {name} is an {actual}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    model, variant = _model_of(item)
    if model is not None and (report.when == "call" or report.outcome != "passed"):
        outcome = "skipped" if report.skipped else "failed" if report.failed else "passed"
        record(item.config).add_outcome(model, variant, outcome)
    return report


# --- pytest-xdist: workers send their records, the controller merges them ----------------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workeroutput"):
        config.workeroutput["geomcheck"] = json.dumps(record(config).state)
        return
    rec = record(config)
    s = settings(config)
    rec.state["settings"] = _settings_json(s)
    if s.report_dir and rec:
        config.stash[_REPORT_FILES] = rec.write_dir(s.report_dir)



def _settings_json(s) -> dict:
    import geomcheck as g
    from geomcheck.suite import LORA_DEFAULTS, settings_dict

    return {**settings_dict(s), "versions": g.versions(),
            "seeds": {"lora": LORA_DEFAULTS["seed"], "kmeans": 0, "bootstrap": 0, "tsne": 0}}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    data = getattr(node, "workeroutput", {}).get("geomcheck")
    if data:
        record(node.config).merge(json.loads(data))


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    rec = config.stash.get(_RECORD, None)
    if rec is None or not rec:
        return
    import io

    from rich.console import Console

    terminalreporter.section("geomcheck")
    out = io.StringIO()
    # 100: the table has 7 columns; narrower, rich would cut the headers ("silho…")
    console = Console(file=out, width=max(100, terminalreporter._tw.fullwidth), force_terminal=False)
    for part in rec.summary_renderables():
        console.print(part)
    files = config.stash.get(_REPORT_FILES, None)
    if files:
        console.print(f"report: {len(files)} files in {Path(files[0]).parent}")
    terminalreporter.write(out.getvalue())


def _terminal(config: pytest.Config):
    """A context in which output reaches the terminal although pytest captures it."""
    import contextlib

    capman = config.pluginmanager.get_plugin("capturemanager")
    return capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()


def _say(config: pytest.Config, text: str) -> None:
    """A progress line on the terminal, even while pytest captures output."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        with _terminal(config):
            tr.write_line(f"geomcheck: {text}")


# --- fixtures ------------------------------------------------------------------------------------


def _load(config: pytest.Config, name: str):
    """Each model once per process, whatever fixture asks for it."""
    loaded = config.stash.setdefault(_LOADED, {})
    if name not in loaded:
        from geomcheck.models import load_model

        loaded[name] = load_model(name, **settings(config).load_kwargs())
    return loaded[name]


@pytest.fixture(scope="session")
def geomcheck_settings(pytestconfig: pytest.Config):
    """The run's validated ``geomcheck.suite.SuiteSettings`` (the geomcheck options)."""
    return settings(pytestconfig)


@pytest.fixture(scope="session")
def geomcheck_model_name(request: pytest.FixtureRequest) -> str:
    """The ``--model`` value this test runs for (tests run once per ``--model``)."""
    return getattr(request, "param", settings(request.config).models[0])


@pytest.fixture(scope="session")
def embedder(geomcheck_model_name: str, pytestconfig: pytest.Config):
    """The model under test (``--model``), loaded once per model."""
    from geomcheck.suite import model_id

    emb = _load(pytestconfig, geomcheck_model_name)
    record(pytestconfig).add_model(model_id(geomcheck_model_name), {
        "name": emb.name, "fingerprint": emb.fingerprint, "source": str(emb.source_path), "device": emb.device,
        "dtype": emb.dtype, "dim": emb.dim, "max_seq_length": emb.max_seq_length, "prompt": emb.prompt,
        "batch_size": emb.batch_size})
    return emb


@pytest.fixture(scope="session")
def base_embedder(geomcheck_model_name: str, embedder, pytestconfig: pytest.Config):
    """The base model of LoRA and merges: ``--base-model``, else the model under test."""
    base = settings(pytestconfig).base_model
    return embedder if base is None else _load(pytestconfig, base)


@pytest.fixture(scope="session")
def embed(embedder):
    """``embed(dataset, embedder=None)`` → ``EmbeddedDataset`` (model under test by default; memoised, disk-cached)."""
    memo: dict = {}
    default = embedder  # the inner keyword shadows the fixture's name

    def run(dataset, *, embedder=None):
        emb = embedder or default
        key = (id(emb), dataset.texts)
        if key not in memo:
            memo[key] = emb.embed(dataset)
        return memo[key]

    return run


@pytest.fixture(scope="session")
def geometry(embed, geomcheck_model_name: str, pytestconfig: pytest.Config):
    """``geometry(dataset, name=None, *, embedder=None, variant=None)`` → ``GeometryReport`` (memoised).

    Each report appears in the terminal summary and ``--geomcheck-report`` under the model
    (and ``variant``, e.g. "soup"), in the table of dataset ``name``.
    """
    from geomcheck.metrics import cluster_report
    from geomcheck.suite import model_id

    memo: dict = {}
    model = model_id(geomcheck_model_name)

    def run(dataset, name: str | None = None, *, embedder=None, variant: str | None = None):
        e = embed(dataset, embedder=embedder)
        key = (id(e), name, variant)
        if key not in memo:
            memo[key] = cluster_report(e, label_names=e.label_names)
            label = name or f"{len(e)} texts, {len(e.label_names)} families"
            record(pytestconfig).add_geometry(model, variant, label, memo[key], e)
        return memo[key]

    return run


@pytest.fixture
def geomcheck_record(request: pytest.FixtureRequest, record_property, pytestconfig: pytest.Config):
    """``geomcheck_record(name, value, variant=None)``: keep a value for the summary, report and JUnit XML."""
    # JUnit properties exist in pytest's xunit1/legacy XML only; xunit2 would warn on every call.
    junit = pytestconfig.getini("junit_family") != "xunit2"
    model, variant_param = _model_of(request.node)
    model = model or ", ".join(settings(pytestconfig).models)

    def add(name: str, value, variant: str | None = None) -> None:
        v = variant if variant is not None else variant_param
        record(pytestconfig).add_value(model, v, name, value)
        if junit:
            record_property(f"geomcheck.{name}" if v is None else f"geomcheck.{v}.{name}", value)

    return add


@pytest.fixture(scope="session")
def dataset_factory():
    """``dataset_factory(families, per_family=4, length=50, start=0, ...)`` → ``SequenceDataset`` (memoised)."""
    from geomcheck.sequences import make_dataset

    @functools.lru_cache(maxsize=None)
    def build(families, per_family=4, length=50, start=0, sep=", ", max_chars=20_000):
        return make_dataset(families, per_family, length, start=start, sep=sep, max_chars=max_chars)

    def factory(families, per_family=4, length=50, *, start=0, sep=", ", max_chars=20_000):
        key = families if isinstance(families, str) else tuple(families)
        return build(key, per_family, length, start, sep, max_chars)

    return factory


@pytest.fixture(scope="session")
def paper_dataset():
    """The paper's 24 texts: 4 windows of 50 terms for each of its six families."""
    from geomcheck.sequences import paper_dataset

    return paper_dataset()


@pytest.fixture(scope="session")
def heldout_dataset():
    """Four windows of 50 terms for each family the paper never used."""
    from geomcheck.sequences import heldout_dataset

    return heldout_dataset()


@pytest.fixture(scope="session")
def suite_dataset(pytestconfig: pytest.Config):
    """The suites' main dataset: the paper's protocol, or ``--families/--per-family/--seq-length``."""
    return settings(pytestconfig).dataset()


@pytest.fixture(scope="session")
def lora_run(base_embedder, geomcheck_model_name: str, pytestconfig: pytest.Config):
    """The LoRA run of the base model: ``--adapter``/``--checkpoint``, else trained with the adapt
    defaults (cached on disk by base fingerprint and settings: a warm run does not retrain)."""
    from geomcheck.suite import LORA_DEFAULTS, cached_lora_run, external_run, lora_cache_dir, model_id

    s = settings(pytestconfig)
    if s.adapter or s.checkpoints:
        return external_run(base_embedder.name, s.adapter, s.checkpoints)
    if s.cache and (lora_cache_dir(base_embedder) / "lora_run.json").is_file():
        _say(pytestconfig, f"LoRA on {base_embedder.name}: read from the cache")
        run = cached_lora_run(base_embedder)
    else:
        _say(pytestconfig, f"LoRA on {base_embedder.name}: training {LORA_DEFAULTS['max_steps']} steps"
                           + (" (kept in the cache for later runs)" if s.cache else ""))
        with _terminal(pytestconfig):  # the progress bar reaches the terminal through pytest's capture
            run = cached_lora_run(base_embedder, cache=s.cache, progress=not hasattr(pytestconfig, "workerinput"))
    record(pytestconfig).add_value(model_id(geomcheck_model_name), "lora", "settings",
                                   {k: v for k, v in run.settings.items() if k != "task"})
    return run


@pytest.fixture(scope="session")
def merged_variants(base_embedder, lora_run, pytestconfig: pytest.Config):
    """``{"base", "lora", <each --merge>}`` → ``Embedder`` (``geomcheck.variants.build_variants``, cached).

    Methods that merge checkpoints need at least two; with fewer they are left out (their
    tests skip saying so). The merge diagnostics are in ``merged_variants.info``.
    """
    from geomcheck.suite import cached_variants

    s = settings(pytestconfig)
    n_ckpt = len(lora_run.checkpoint_dirs)
    methods = [m for m in s.merges if m == "slerp" or n_ckpt >= 2]
    _say(pytestconfig, f"building variants {', '.join(['base', 'lora', *methods])} of {base_embedder.name}")
    embedders, info = cached_variants(base_embedder, lora_run, methods, device=s.device, cache=s.cache)
    return _Variants(embedders, info, n_ckpt)


class _Variants(dict):
    """The variants dict, with the merge diagnostics (``info``) and the checkpoint count."""

    def __init__(self, embedders: dict, info: dict, n_checkpoints: int):
        super().__init__(embedders)
        self.info = info
        self.n_checkpoints = n_checkpoints


@pytest.fixture(scope="session")
def geomcheck_baseline(geomcheck_model_name: str, embedder, embed, suite_dataset, heldout_dataset,
                       pytestconfig: pytest.Config):
    """The committed baseline of the model under test (``geomcheck.baseline.Baseline``), or None.

    Path: ``--geomcheck-baseline``, else ``<geomcheck_baselines>/<model id>.json``. With
    ``--geomcheck-update-baseline`` the file is (re)written from this run first.
    """
    from geomcheck.baseline import Baseline, rewrite_baseline
    from geomcheck.suite import model_id

    s = settings(pytestconfig)
    path = Path(s.baseline) if s.baseline else baseline_path(pytestconfig, model_id(geomcheck_model_name))
    if s.update_baseline:
        from filelock import FileLock

        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            data = {suite_name(s): embed(suite_dataset), "heldout": embed(heldout_dataset)}
            rewrite_baseline(path, model_id(geomcheck_model_name), embedder.fingerprint, data,
                             meta={"device": embedder.device, "dtype": embedder.dtype})
        _say(pytestconfig, f"baseline written: {path}")
    if not path.is_file():
        return None
    return Baseline.load(path)


def suite_name(s) -> str:
    """Name of the suite dataset in reports and baselines: "paper" for the paper's protocol."""
    return "paper" if s.is_paper_protocol else "suite"


def baseline_path(config: pytest.Config, model: str) -> Path:
    folder = config.getini("geomcheck_baselines") or "suites/baselines"
    return (config.rootpath / folder / f"{model}.json").resolve()


def pytest_unconfigure(config: pytest.Config) -> None:
    config.stash.get(_LOADED, {}).clear()
