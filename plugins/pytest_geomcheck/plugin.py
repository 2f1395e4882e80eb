"""geomcheck's pytest plugin: the hooks, each a short call into the run's ``GeomcheckSession``.

Imported by every pytest run in an environment where geomcheck is installed, so it must
stay cheap: nothing heavy (numpy, torch, models) is imported until a fixture needs it.

- ``options.py``: the option / ini table and its parsers, ``SuiteSettings``;
- ``session.py``: ``GeomcheckSession`` (settings, run record, loaded models);
- ``fixtures.py``: the fixtures, registered here as a plugin of their own;
- ``xdist.py``: GPU pinning and record passing, registered only under pytest-xdist.
"""

from __future__ import annotations

import pytest

import geomcheck
from geomcheck import SUITES_PACKAGE
from pytest_geomcheck import fixtures
from pytest_geomcheck.cmdline import check_command_line
from pytest_geomcheck.options import add_options, add_short_options
from pytest_geomcheck.session import MODEL_PARAM, VARIANT_PARAM, GeomcheckSession

MARKERS = (
    "geomcheck_slow: a slow geometry test (LoRA training, merges); deselect with -m 'not geomcheck_slow'",
    "geomcheck_gpu: needs CUDA; skipped with a reason when there is none",
    "geomcheck_model(kind): run only on models of this kind ('encoder' or 'llm')",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]):
    """``pytest --pyargs geomcheck.suites …`` (what ``geomcheck check`` runs): the suites' conftest is
    not an initial one there, so their short options are added here, before the command line is read,
    and after the project's own conftests (whose options of the same name win)."""
    result = yield
    ns = early_config.known_args_namespace
    targets = [str(a).split("::")[0] for a in getattr(ns, "file_or_dir", None) or ()]
    if getattr(ns, "pyargs", False) and any(t == SUITES_PACKAGE or t.startswith(SUITES_PACKAGE + ".") for t in targets):
        add_short_options(parser)
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    config.pluginmanager.register(fixtures, "geomcheck-fixtures")
    if config.pluginmanager.hasplugin("xdist"):
        from pytest_geomcheck import xdist

        config.pluginmanager.register(xdist, "geomcheck-xdist")
    if not config.getoption("help", False):
        session = GeomcheckSession.of(config)
        session.rootpath, session.rootpath_note = check_command_line(config)
        session.validate()


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = GeomcheckSession.of(config)
    header = [f"geomcheck {geomcheck.__version__}, model under test: {', '.join(session.settings.models)}"]
    return header + [note for note in (session.rootpath_note, session.xdist_note()) if note]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks (--dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    GeomcheckSession.of(config).group_by_model(items)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    session = GeomcheckSession.of(metafunc.config)
    settings = session.settings
    if MODEL_PARAM in metafunc.fixturenames:
        metafunc.parametrize(MODEL_PARAM, settings.models, ids=[session.id_of(m) for m in settings.models],
                             indirect=True, scope="session")
    if VARIANT_PARAM in metafunc.fixturenames and not _parametrized_by_test(metafunc, VARIANT_PARAM):
        names = settings.variant_names  # a method, or the NAME of your own NAME=PATH
        metafunc.parametrize(VARIANT_PARAM, names, ids=list(names))


def _parametrized_by_test(metafunc: pytest.Metafunc, name: str) -> bool:
    """Whether the test's own ``@pytest.mark.parametrize`` already gives ``name``."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if name in (names if isinstance(names, (list, tuple)) else [n.strip() for n in str(names).split(",")]):
            return True
    return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("geomcheck_gpu") is not None:
        from geomcheck._device import cuda_available

        if not cuda_available():
            pytest.skip("geomcheck_gpu: needs CUDA, and torch sees no GPU here")
    mark = item.get_closest_marker("geomcheck_model")
    if mark is not None:
        kind = mark.kwargs.get("kind", mark.args[0] if mark.args else None)
        if kind not in ("encoder", "llm"):
            raise pytest.UsageError(f"{item.nodeid}: geomcheck_model(kind=…) must be 'encoder' or 'llm', got {kind!r}")
        name = getattr(getattr(item, "callspec", None), "params", {}).get(MODEL_PARAM)
        if name is not None:
            from geomcheck.models import model_kind

            actual = model_kind(name)
            if actual != kind:
                pytest.skip(f"geomcheck_model(kind={kind!r}): {name} is an {actual}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    GeomcheckSession.of(item.config).on_report(item, call, report)
    return report


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
def pytest_sessionfinish(session: pytest.Session) -> None:
    GeomcheckSession.of(session.config).finish(session)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    session = GeomcheckSession.of(config)
    if session.has_record:
        terminalreporter.section("geomcheck")
        terminalreporter.write(session.summary(config.get_terminal_writer().fullwidth))


def pytest_unconfigure(config: pytest.Config) -> None:
    GeomcheckSession.of(config).close()
