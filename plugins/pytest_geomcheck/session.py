"""``GeomcheckSession``: what one pytest run of geomcheck holds — settings, run record, loaded models.

One object per ``pytest.Config`` (one ``StashKey``), made when the plugin configures, so
that hooks and fixtures are short calls into it. The heavy parts (the record's numpy,
the models) are made on first use: ``pytest --help`` imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_geomcheck.options import SuiteSettings, settings_from_config

__all__ = ["GeomcheckSession", "MODEL_PARAM", "VARIANT_PARAM", "shipped_baselines_dir"]

MODEL_PARAM = "geomcheck_model_name"  # the session-scoped parameter every model fixture hangs on
VARIANT_PARAM = "geomcheck_variant"
_KEY = pytest.StashKey["GeomcheckSession"]()


def shipped_baselines_dir() -> Path:
    """The baselines that ship with the suites (``geomcheck/suites/baselines`` in the installed package)."""
    import importlib.util

    spec = importlib.util.find_spec("geomcheck.suites")
    return Path(next(iter(spec.submodule_search_locations))) / "baselines" if spec else Path("/nonexistent")


class GeomcheckSession:
    """The run's settings, record and models; ``GeomcheckSession.of(config)`` finds it."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self._settings: SuiteSettings | None = None
        self._record: Any = None
        self._loaded: dict[str, Any] = {}
        self._ids: dict[str, str] | None = None
        self.report_files: list[Path] = []
        self.rootpath = Path(config.rootpath)  # where baselines live (pytest_geomcheck.cmdline may correct it)
        self.rootpath_note = ""  # why it differs from pytest's, for the header
        self.report_error = ""
        self._tests: dict[str, dict[str, Any]] = {}  # nodeid -> outcome so far (all phases), for the record

    @classmethod
    def of(cls, config: pytest.Config) -> GeomcheckSession:
        if _KEY not in config.stash:
            config.stash[_KEY] = cls(config)
        return config.stash[_KEY]

    # --- settings and record -------------------------------------------------------------
    @property
    def settings(self) -> SuiteSettings:
        if self._settings is None:
            self._settings = settings_from_config(self.config, root=self.rootpath)
        return self._settings

    @property
    def record(self) -> Any:
        """The run's ``geomcheck.reporting.record.RunRecord`` (this process's part of it under xdist)."""
        if self._record is None:
            from geomcheck.reporting.record import RunRecord

            self._record = RunRecord()
        return self._record

    @property
    def record_started(self) -> bool:
        """Whether anything of this run reached the record (a geomcheck fixture, value or outcome)."""
        return self._record is not None

    @property
    def has_record(self) -> bool:
        return self._record is not None and bool(self._record)

    @property
    def is_xdist_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @property
    def progress(self) -> bool | None:
        """Progress lines of long metric steps: off under ``-q`` and on xdist workers (their stderr is not the
        terminal), else None ("auto": when stderr is a terminal, or ``GEOMCHECK_PROGRESS=1``)."""
        return False if self.is_xdist_worker or self.config.getoption("verbose", 0) < 0 else None

    def validate(self) -> None:
        """Check non-default settings before any test runs; a bad value is a usage error."""
        from geomcheck.errors import GeomcheckError

        s = self.settings
        if s != SuiteSettings(tolerances=s.tolerances, min_gain_share=s.min_gain_share,
                              baselines_dir=s.baselines_dir):  # the defaults are valid
            try:
                s.validate()
            except GeomcheckError as exc:
                raise pytest.UsageError(f"geomcheck: {exc}") from None

    # --- models --------------------------------------------------------------------------
    def load(self, name: str) -> Any:
        """Each model once per process, whatever fixture asks for it."""
        if name not in self._loaded:
            from geomcheck.models import load_model

            self._loaded[name] = load_model(name, **self.settings.load_kwargs())
        return self._loaded[name]

    def close(self) -> None:
        self._loaded.clear()

    def id_of(self, name: str) -> str:
        """The test id of a model (its record row and baseline file name), unique among ``--geomcheck-model``s."""
        if self._ids is None:
            from geomcheck.models import model_ids

            self._ids = dict(zip(self.settings.models, model_ids(self.settings.models)))
        if name not in self._ids:
            from geomcheck.models import model_id

            return model_id(name)
        return self._ids[name]

    def model_of(self, item: pytest.Item) -> tuple[str | None, str | None]:
        """(model id, variant) a test runs for, from its parameters; (None, None) for a model-less test."""
        params = getattr(getattr(item, "callspec", None), "params", {})
        model = params.get(MODEL_PARAM)
        return (None, None) if model is None else (self.id_of(model), params.get(VARIANT_PARAM))

    def baseline_path(self, model: str) -> Path:
        """Where the baseline of ``model`` (its id) is read from, or written to with ``--geomcheck-update-baseline``.

        ``--geomcheck-baseline``, else the project's own ``<rootdir>/<geomcheck_baselines>/<id>.json``
        (default ``geomcheck-baselines/``; ``<id>.<dataset>.json`` with ``--geomcheck-dataset``), else,
        for reading, the one shipped with geomcheck.
        Writes never go into the installed package.
        """
        s = self.settings
        if s.baseline:
            return Path(s.baseline).resolve()
        # your own dataset gets its own file beside the model's: <model>.<dataset>.json (never shipped)
        name = f"{model}.{s.suite_dataset_name}.json" if s.dataset is not None else f"{model}.json"
        own = (self.rootpath / s.baselines_dir / name).resolve()
        if s.update_baseline or own.is_file() or s.dataset is not None:
            return own
        shipped = shipped_baselines_dir() / f"{model}.json"
        return shipped if shipped.is_file() else own

    # --- pytest-xdist ---------------------------------------------------------------------
    def loadgroup(self) -> bool:
        """Whether pytest-xdist distributes by ``xdist_group`` (``--dist loadgroup``; on a worker xdist keeps
        the choice in ``option.loadgroup``)."""
        opt = self.config.option
        return bool(getattr(opt, "loadgroup", False)) or getattr(opt, "dist", None) == "loadgroup"

    def group_by_model(self, items: list[pytest.Item]) -> None:
        """Under ``--dist loadgroup`` every test of one model (and its variants) joins the group
        ``geomcheck-<model id>``, so one worker runs them all and loads the model once; a test with an
        ``xdist_group`` of its own keeps it."""
        if not self.loadgroup():
            return
        for item in items:
            model, _ = self.model_of(item)
            if model is not None and item.get_closest_marker("xdist_group") is None:
                item.add_marker(pytest.mark.xdist_group(name=f"geomcheck-{model}"))

    def xdist_note(self) -> str:
        """A header line when several models meet xdist workers without ``--dist loadgroup``."""
        opt = self.config.option
        n = getattr(opt, "numprocesses", None)
        if not n or len(self.settings.models) < 2 or self.loadgroup() or getattr(opt, "dist", "no") == "no":
            return ""
        return (f"geomcheck: {len(self.settings.models)} models on {n} xdist workers with --dist "
                f"{getattr(opt, 'dist', '')}: a worker loads every model whose tests it gets; --dist loadgroup "
                f"keeps each model's tests on one worker (one load, one GPU)")

    # --- outcomes and the end of the run -------------------------------------------------
    def on_report(self, item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
        """A test phase ended: its outcome goes to the record, a geometry failure gets a short summary line."""
        model, variant = self.model_of(item)
        if model is not None and (report.when == "call" or report.outcome != "passed"):
            outcome = "skipped" if report.skipped else "failed" if report.failed else "passed"
            self.record.add_outcome(model, variant, outcome)
        self.shorten_geometry_failure(item, call, report)
        grouped = self.loadgroup() and item.get_closest_marker("xdist_group") is not None
        nodeid = item.nodeid.rsplit("@", 1)[0] if grouped else item.nodeid  # without xdist's "@<group>" suffix
        self._note_test(nodeid, model, variant, report)
        if report.failed and (model is not None or self.record_started):  # not for runs that never used geomcheck
            crash = getattr(report.longrepr, "reprcrash", None)
            first = (crash.message if crash is not None else str(report.longrepr)).strip().splitlines()
            self.record.add_failure(nodeid, model, variant, first[0] if first else report.when)

    def shorten_geometry_failure(self, item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
        """``-ra`` shows the verdict (the first line of a ``GeometryAssertionError``: metric, value,
        threshold, model), not ``geomcheck.errors.GeometryAssertionError: …`` cut after a few words.
        A shipped suite's failure shows the verdict and its explanation only: the suite's source and
        its fixture values say nothing to the user (``--tb=long`` and the like still show them)."""
        from geomcheck.errors import GeometryAssertionError

        if call.excinfo is None or not isinstance(call.excinfo.value, GeometryAssertionError) or not report.failed:
            return
        if self.config.getoption("tbstyle", "auto") == "auto" and self.in_shipped_suites(item):
            report.longrepr = call.excinfo.getrepr(style="value")
        crash = getattr(report.longrepr, "reprcrash", None)
        if crash is not None and str(call.excinfo.value):
            crash.message = str(call.excinfo.value).splitlines()[0]

    def _note_test(self, nodeid: str, model: str | None, variant: str | None, report: pytest.TestReport) -> None:
        """Keep the test's outcome over its phases (plain data: cheap in runs that never use geomcheck);
        ``tests_into_record`` hands them to the record at the end."""
        t = self._tests.setdefault(nodeid, {"model": model, "variant": variant, "outcome": "passed",
                                            "duration": 0.0, "message": ""})
        t["duration"] += float(getattr(report, "duration", 0.0) or 0.0)
        outcome, message = _phase_outcome(report)
        rank = {"passed": 1, "skipped": 0, "failed": 2, "error": 3}
        if outcome != "passed" and (rank[outcome] > rank[t["outcome"]] or t["outcome"] == "passed"):
            t["outcome"], t["message"] = outcome, message

    def tests_into_record(self) -> None:
        """Every test's outcome into the record, where this run used geomcheck (the record was started)."""
        if self.record_started:
            for nodeid, t in self._tests.items():
                self.record.add_test(nodeid, t["model"], t["variant"], t["outcome"], t["duration"], t["message"])

    @staticmethod
    def in_shipped_suites(item: pytest.Item) -> bool:
        """Whether ``item`` is a test of geomcheck's shipped suites (installed, or ``suites/`` of a checkout)."""
        suites = shipped_baselines_dir().parent
        try:
            return Path(item.path).resolve().is_relative_to(suites.resolve())
        except OSError:
            return False

    def finish(self, session: pytest.Session | None = None) -> None:
        """On the controller (or without xdist): the settings into the record, the report directory."""
        if self.is_xdist_worker or not self.record_started:  # a run that used no geomcheck fixture: nothing to do
            return
        from datetime import datetime, timezone

        import geomcheck
        from geomcheck.adapt.cached import LORA_DEFAULTS
        from geomcheck.metrics.geometry import KMEANS_SEED

        date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.tests_into_record()
        status = getattr(session, "exitstatus", None) if session is not None else None
        self.record.state["settings"] = {**self.settings.to_json(), "date": date, "versions": geomcheck.versions(),
                                         "seeds": {"lora": LORA_DEFAULTS["seed"], "kmeans": KMEANS_SEED,
                                                   "bootstrap": 0, "tsne": 0},
                                         "suite_dataset": self.settings.suite_dataset_name,
                                         "exitstatus": None if status is None else int(status)}
        if self.settings.report_dir and self.record:
            from geomcheck.errors import GeomcheckError

            try:
                # Ctrl-C: the record and tables at once, no t-SNE pictures (they take seconds each)
                interrupted = session is not None and session.exitstatus == pytest.ExitCode.INTERRUPTED
                self.report_files = self.record.write_dir(self.settings.report_dir, plots=not interrupted)
            except (OSError, GeomcheckError) as exc:  # the directory changed during the run: say so, fail the run
                self.report_error = f"could not write the report into {self.settings.report_dir}: {exc}"
                if session is not None and session.exitstatus == 0:
                    session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        self._junit_suite_properties()

    def _junit_suite_properties(self) -> None:
        """Every recorded value as a ``<property>`` of the JUnit test suite (``--junitxml``), named
        ``geomcheck.<model>[.<variant>].<name>``: those exist in every junit_family, xunit2 included,
        and hold the values of all xdist workers (per-test properties exist in xunit1 only)."""
        xml = next((p for p in self.config.pluginmanager.get_plugins() if hasattr(p, "add_global_property")
                    and hasattr(p, "logfile")), None)
        if xml is None or self._record is None:
            return
        for r in self.record.state["values"]:
            if isinstance(r["value"], (dict, list)):
                continue  # structured values (LoRA settings) stay in report.json
            parts = [r["model"], r["variant"], r["name"]]
            xml.add_global_property("geomcheck." + ".".join(p for p in parts if p), r["value"])

    def summary(self, width: int) -> str:
        """The terminal summary: the Table 2 tables, baseline verdicts, claims and values."""
        from rich.console import Console

        out = io.StringIO()
        # at least 124 columns: a variant's table has up to 10 (CKA, position, gain kept, …), and narrower rich
        # would cut headers and numbers ("silho…", "−0.09…")
        console = Console(file=out, width=max(124, width), force_terminal=False)
        for part in self.record.summary_renderables():
            console.print(part)
        if self.report_files:
            console.print(f"report: {len(self.report_files)} files in {self.report_files[0].parent}")
        if self.report_error:
            console.print(f"geomcheck: error: {self.report_error}")
        return out.getvalue()

    # --- the terminal while pytest captures output ---------------------------------------
    @contextlib.contextmanager
    def terminal(self) -> Iterator[None]:
        """A context in which output reaches the terminal although pytest captures it."""
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
            yield

    def say(self, text: str) -> None:
        """A progress line on the terminal, even while pytest captures output."""
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            with self.terminal():
                tr.write_line(f"geomcheck: {text}")


def _phase_outcome(report: pytest.TestReport) -> tuple[str, str]:
    """(outcome, first line of why) of one phase, as JUnit has it: a failed setup or teardown is an "error",
    a failed call "failed"; a skip (xfail too) "skipped" with its reason."""
    if report.passed:
        return "passed", ""
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return "skipped", f"xfail: {report.wasxfail}".rstrip(": ")
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
        return "skipped", reason.removeprefix("Skipped: ").strip().splitlines()[0] if reason.strip() else ""
    crash = getattr(report.longrepr, "reprcrash", None)
    first = (crash.message if crash is not None else str(report.longrepr)).strip().splitlines()
    return ("failed" if report.when == "call" else "error"), (first[0] if first else report.when)
