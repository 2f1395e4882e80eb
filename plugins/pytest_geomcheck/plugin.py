"""geomcheck's pytest plugin: options, fixtures and hooks only; the work lives in ``geomcheck``.

Imported by every pytest run in an environment where geomcheck is installed, so it must
stay cheap: nothing heavy (numpy, torch, models) is imported until a fixture needs it.
"""

from __future__ import annotations

import functools

import pytest

import geomcheck


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("geomcheck", "geometry of embedding models (geomcheck)")
    group.addoption("--model", action="store", default=None, metavar="NAME",
                    help="model under test: a registry alias (geomcheck models), a local directory or a "
                         "Hugging Face id; default: the ini value geomcheck_model, else minilm")
    group.addoption("--device", action="store", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    parser.addini("geomcheck_model", "default model under test", default="minilm")


def _model_name(config: pytest.Config) -> str:
    return config.getoption("--model") or config.getini("geomcheck_model") or "minilm"


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("help", False) or config.getoption("--model") is None:
        return
    from geomcheck.errors import GeomcheckError
    from geomcheck.models import resolve

    try:  # finds the files (fast), loads nothing: a bad name is a usage error, not N failing tests
        resolve(_model_name(config))
    except GeomcheckError as exc:
        raise pytest.UsageError(f"--model: {exc}") from None


_RESULTS = pytest.StashKey[dict]()


def _results(config: pytest.Config) -> dict:
    """What this run measured: {"reports": {(model, dataset): GeometryReport}, "values": {model: {name: value}}}."""
    if _RESULTS not in config.stash:
        config.stash[_RESULTS] = {"reports": {}, "values": {}}
    return config.stash[_RESULTS]


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    res = config.stash.get(_RESULTS, None)
    if not res or not (res["reports"] or res["values"]):
        return
    import io

    from rich.console import Console

    from geomcheck.report import Row, rich_table

    terminalreporter.section("geomcheck")
    out = io.StringIO()
    console = Console(file=out, width=max(80, terminalreporter._tw.fullwidth), force_terminal=False)
    if res["reports"]:
        rows = [Row.measured(model, rep, dataset=ds) for (model, ds), rep in res["reports"].items()]
        console.print(rich_table(rows, title="Cluster geometry of the model(s) under test (paper Table 2 layout)"))
    for model, values in res["values"].items():
        console.print(f"{model}: " + ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                                               for k, v in values.items()))
    terminalreporter.write(out.getvalue())


def pytest_report_header(config: pytest.Config) -> str:
    return f"geomcheck {geomcheck.__version__}, model under test: {_model_name(config)}"


@pytest.fixture(scope="session")
def embedder(pytestconfig: pytest.Config):
    """The model under test (``--model``), loaded once per session."""
    from geomcheck.models import load_model

    return load_model(_model_name(pytestconfig), device=pytestconfig.getoption("--device"))


@pytest.fixture(scope="session")
def embed(embedder):
    """``embed(dataset)`` → ``EmbeddedDataset`` with the model under test (memoised, disk-cached)."""
    memo: dict[tuple[str, ...], object] = {}

    def run(dataset):
        key = tuple(dataset.texts)
        if key not in memo:
            memo[key] = embedder.embed(dataset)
        return memo[key]

    return run


@pytest.fixture(scope="session")
def geometry(embed, pytestconfig: pytest.Config):
    """``geometry(dataset, name=None)`` → ``GeometryReport`` of the model under test (memoised; shown in the summary)."""
    from geomcheck.metrics import cluster_report

    memo: dict[tuple[str, ...], object] = {}

    def run(dataset, name: str | None = None):
        key = tuple(dataset.texts)
        if key not in memo:
            e = embed(dataset)
            memo[key] = cluster_report(e, label_names=e.label_names)
            label = name or f"{len(e)} texts, {len(e.label_names)} families"
            _results(pytestconfig)["reports"][(e.model, label)] = memo[key]
        return memo[key]

    return run


@pytest.fixture
def geomcheck_record(record_property, pytestconfig: pytest.Config):
    """``geomcheck_record(name, value)``: keep a measured value for the summary and the JUnit XML properties."""

    # JUnit properties exist in pytest's xunit1/legacy XML only; xunit2 would warn on every call.
    junit = pytestconfig.getini("junit_family") != "xunit2"

    def record(name: str, value) -> None:
        _results(pytestconfig)["values"].setdefault(_model_name(pytestconfig), {})[name] = value
        if junit:
            record_property(f"geomcheck.{name}", value)

    return record


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
