"""geomcheck's fixtures: the model under test, datasets, embeddings, LoRA and merges, baselines, recording.

Each is a short call into ``geomcheck`` through the run's ``GeomcheckSession``; nothing
heavy is imported until a fixture runs. Session fixtures work inside Hypothesis ``@given``
tests; ``geomcheck_record`` is per test (like pytest's ``record_property``).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import pytest

from pytest_geomcheck.session import GeomcheckSession

__all__ = [
    "geomcheck_settings", "geomcheck_model_name", "embedder", "base_embedder", "embed", "geometry",
    "geomcheck_record", "dataset_factory", "paper_dataset", "heldout_dataset", "suite_dataset", "user_dataset",
    "lora_task", "lora_run",
    "merged_variants", "merge_sweep", "geomcheck_baseline_path", "geomcheck_baseline", "Recorder",
]


@pytest.fixture(scope="session")
def geomcheck_settings(pytestconfig: pytest.Config):
    """The run's ``SuiteSettings`` (the geomcheck options, validated; ``.suite_dataset_name`` and more)."""
    return GeomcheckSession.of(pytestconfig).settings


@pytest.fixture(scope="session")
def geomcheck_model_name(request: pytest.FixtureRequest) -> str:
    """The ``--model`` value this test runs for (tests run once per ``--model``)."""
    return getattr(request, "param", GeomcheckSession.of(request.config).settings.models[0])


@pytest.fixture(scope="session")
def embedder(geomcheck_model_name: str, pytestconfig: pytest.Config):
    """The model under test (``--model``), loaded once per model."""
    session = GeomcheckSession.of(pytestconfig)
    emb = session.load(geomcheck_model_name)
    session.record.add_model(session.id_of(geomcheck_model_name), emb.info())
    return emb


@pytest.fixture(scope="session")
def base_embedder(geomcheck_model_name: str, embedder, pytestconfig: pytest.Config):
    """The base model of LoRA and merges: ``--base-model``, else the model under test."""
    session = GeomcheckSession.of(pytestconfig)
    base = session.settings.base_model
    return embedder if base is None else session.load(base)


@pytest.fixture(scope="session")
def embed(embedder, pytestconfig: pytest.Config):
    """``embed(dataset, embedder=None)`` → ``EmbeddedDataset`` (model under test by default; memoised, disk-cached).

    A large dataset shows the encoder's progress bar (rate, ETA) on the terminal through pytest's capture;
    ``-q`` and xdist workers keep quiet."""
    from geomcheck.models.embedder import PROGRESS_MIN_TEXTS

    memo: dict = {}
    default = embedder  # the inner keyword shadows the fixture's name
    session = GeomcheckSession.of(pytestconfig)
    quiet = pytestconfig.get_verbosity() < 0 or session.is_xdist_worker

    def run(dataset, *, embedder=None):
        emb = embedder or default
        # the vectors depend on the texts alone (and are disk-cached); the EmbeddedDataset carries the labels
        key = (id(emb), tuple(dataset.texts), tuple(int(x) for x in dataset.labels), tuple(dataset.label_names))
        if key not in memo:
            if quiet or len(dataset.texts) < PROGRESS_MIN_TEXTS:
                memo[key] = emb.embed(dataset, progress=False if quiet else None)
            else:
                with session.terminal():
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

    memo: dict = {}
    session = GeomcheckSession.of(pytestconfig)
    model, record = session.id_of(geomcheck_model_name), session.record

    def run(dataset, name: str | None = None, *, embedder=None, variant: str | None = None):
        e = embed(dataset, embedder=embedder)
        key = (id(e), name, variant)
        if key not in memo:
            s = session.settings
            with session.terminal():  # progress lines (rate, ETA) of a large set reach stderr through the capture
                memo[key] = cluster_report(e, label_names=e.label_names, metric=s.metric, exact_max=s.exact_max,
                                           progress=session.progress)
            label = name or f"{len(e)} texts, {len(e.label_names)} families"
            record.add_geometry(model, variant, label, memo[key], e)
            if e.n_truncated:  # the model saw only the start of these texts: the report says so
                record.add_value(model, variant, f"{label}.texts_cut_at_max_seq_length", e.n_truncated)
                record.add_value(model, variant, f"{label}.longest_text_tokens", e.longest_tokens)
        return memo[key]

    return run


class Recorder:
    """``geomcheck_record(name, value, variant=None)`` keeps a value for the summary, report and JUnit XML;
    ``.baseline(dataset, comparison)`` and ``.claim(result, gated=)`` keep a baseline verdict and a paper
    claim. All under the model (and variant) the test runs for."""

    def __init__(self, session: GeomcheckSession, request: pytest.FixtureRequest):
        model, self._variant = session.model_of(request.node)
        self._model = model or ", ".join(session.settings.models)
        self._record = session.record
        # Per-test JUnit properties exist in xunit1/legacy XML only (pytest's record_property warns under
        # xunit2, its default); every family gets the values as test-suite properties (session.py).
        per_test = session.config.getini("junit_family") in ("xunit1", "legacy")
        self._property = request.getfixturevalue("record_property") if per_test else None

    def __call__(self, name: str, value: Any, variant: str | None = None) -> None:
        v = variant if variant is not None else self._variant
        self._record.add_value(self._model, v, name, value)
        if self._property is not None:
            self._property(f"geomcheck.{name}" if v is None else f"geomcheck.{v}.{name}", value)

    def baseline(self, dataset: str, comparison: Any) -> None:
        """A ``geomcheck.checks.baseline.Comparison`` of ``dataset`` (its checks also become values)."""
        for check in comparison.checks:
            self(f"{dataset}.{check.metric}", check.value)
        self._record.add_baseline(self._model, dataset, comparison.to_dict())

    def claim(self, result: Any, *, gated: bool) -> None:
        """A ``geomcheck.checks.claims.ClaimResult`` (its measurements also become values)."""
        self._record.add_claim(self._model, result.name, result.text, result.measured, result.holds, gated)
        for k, v in result.measured.items():
            self(f"claim.{result.name}.{k}", v)


@pytest.fixture
def geomcheck_record(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> Recorder:
    """``geomcheck_record(name, value, variant=None)``: keep a value for the summary, report and JUnit XML."""
    return Recorder(GeomcheckSession.of(pytestconfig), request)


@pytest.fixture(scope="session")
def dataset_factory():
    """``dataset_factory(families, per_family=4, length=50, start=0, ...)`` → ``SequenceDataset`` (memoised);
    ``dataset_factory(texts=[...], labels=[...])`` → ``TextDataset`` (labels: names or ints; names keep
    their first-seen order)."""
    from geomcheck.data import make_dataset

    @functools.lru_cache(maxsize=None)
    def build(families, per_family=4, length=50, start=0, sep=", ", max_chars=20_000):
        return make_dataset(families, per_family, length, start=start, sep=sep, max_chars=max_chars)

    def factory(families=None, per_family=4, length=50, *, start=0, sep=", ", max_chars=20_000, texts=None,
                labels=None):
        if texts is not None or labels is not None:
            return _text_dataset(texts, labels, families)
        if families is None:
            raise TypeError("dataset_factory needs families (a sequence dataset) or texts= and labels=")
        key = families if isinstance(families, str) else tuple(families)
        return build(key, per_family, length, start, sep, max_chars)

    return factory


def _text_dataset(texts, labels, families):
    """A ``TextDataset`` through ``load_dataset``'s checks (records of two columns)."""
    from geomcheck.data import load_dataset
    from geomcheck.errors import InvalidInputError

    if families is not None:
        raise InvalidInputError("dataset_factory: give families, or texts= and labels=, not both")
    if texts is None or labels is None or len(texts) != len(labels):
        raise InvalidInputError("dataset_factory: texts= and labels= must both be given, of the same length")
    return load_dataset([{"text": t, "label": lab} for t, lab in zip(texts, labels)])


@pytest.fixture(scope="session")
def paper_dataset():
    """The paper's 24 texts: 4 windows of 50 terms for each of its six families."""
    from geomcheck.data import paper_dataset

    return paper_dataset()


@pytest.fixture(scope="session")
def heldout_dataset():
    """Four windows of 50 terms for each family the paper never used."""
    from geomcheck.data import heldout_dataset

    return heldout_dataset()


@pytest.fixture(scope="session")
def suite_dataset(pytestconfig: pytest.Config):
    """The suites' main dataset: your own labelled texts with ``--dataset PATH`` (a ``TextDataset``), else
    the paper's protocol or ``--families/--per-family/--seq-length`` (its name in reports and baselines:
    ``geomcheck_settings.suite_dataset_name``)."""
    return GeomcheckSession.of(pytestconfig).settings.suite_dataset()


@pytest.fixture(scope="session")
def user_dataset(pytestconfig: pytest.Config):
    """The ``TextDataset`` of ``--geomcheck-dataset PATH`` (``--dataset`` in the suites); skips the test
    when none is given."""
    s = GeomcheckSession.of(pytestconfig).settings
    if s.dataset is None:
        pytest.skip("no --geomcheck-dataset PATH given")
    return s.suite_dataset()


@pytest.fixture(scope="session")
def lora_task(base_embedder, pytestconfig: pytest.Config):
    """What the suites' LoRA learns: sequence windows (``WindowTask``, drawn as the base model's recipe
    says: ``geomcheck.adapt.recipes``), or with ``--dataset`` a ``TextTask`` on its train split (a
    stratified 75/25 split, seed 0), measured on its test split."""
    from geomcheck.adapt.tasks import TextTask

    s = GeomcheckSession.of(pytestconfig).settings
    if s.dataset is None:
        from geomcheck.adapt.recipes import recipe_for

        return recipe_for(base_embedder).task()
    task = TextTask.from_dataset(s.suite_dataset(), test_size=0.25, seed=0, name=s.suite_dataset_name)
    note = task.small_split_note()
    if note is not None:  # said once, where the run shows it and in the warnings summary
        GeomcheckSession.of(pytestconfig).say(note)
        warnings.warn(f"geomcheck: {note}", UserWarning, stacklevel=2)
    return task


@pytest.fixture(scope="session")
def lora_run(base_embedder, lora_task, geomcheck_model_name: str, pytestconfig: pytest.Config):
    """The LoRA run of the base model: ``--adapter``/``--checkpoint``, else trained on ``lora_task`` with the
    adapt defaults (cached on disk by base fingerprint, settings and task: a warm run does not retrain)."""
    from geomcheck.adapt.cached import (
        lora_steps,
        cached_lora_run,
        external_run,
        lora_cache_dir,
    )

    session = GeomcheckSession.of(pytestconfig)
    s = session.settings
    if s.adapter or s.checkpoints:
        return external_run(base_embedder.name, s.adapter, s.checkpoints)
    task = {} if s.dataset is None else {"train_data": lora_task}  # the default task keeps the default cache key
    on = "" if s.dataset is None else f" ({len(lora_task.train)} training texts of {s.suite_dataset_name})"
    if s.cache and (lora_cache_dir(base_embedder, **task) / "lora_run.json").is_file():
        session.say(f"LoRA on {base_embedder.name}{on}: read from the cache")
        run = cached_lora_run(base_embedder, **task)
    else:
        session.say(f"LoRA on {base_embedder.name}{on}: training {lora_steps(base_embedder, **task)} steps"
                    + (" (kept in the cache for later runs)" if s.cache else ""))
        with session.terminal():  # the progress bar reaches the terminal through pytest's capture
            run = cached_lora_run(base_embedder, cache=s.cache, progress=not session.is_xdist_worker, **task)
        losses = run.loss_history
        session.say(f"LoRA on {base_embedder.name}: {len(losses)} steps in {run.wall_time:.0f} s"
                    + (f", loss {losses[0]:.3f} -> {losses[-1]:.3f}" if losses else ""))
    session.record.add_value(session.id_of(geomcheck_model_name), "lora", "settings", dict(run.settings))
    return run


@pytest.fixture(scope="session")
def merged_variants(base_embedder, lora_run, pytestconfig: pytest.Config):
    """``{"base", "lora", <each --merge>}`` → ``Embedder`` (``geomcheck.adapt.variants.Variants``, cached).

    Methods that merge checkpoints need at least two; with fewer they are left out (their
    tests skip saying so). Your own variants (``--merge NAME=DIR`` or ``NAME=recipe.yml``) are
    loaded from their directory (a recipe is built once into the cache), after a check that they
    are merges of the base (else every test using this fixture errors, naming what differs); one
    that cannot be loaded is in ``merged_variants.broken`` (its name → why, with its pipeline's
    differences from the base's). The merge diagnostics are in ``merged_variants.info``, every
    variant's directory in ``merged_variants.info["dirs"]``.
    """
    from geomcheck.adapt.cached import cached_variants, variants_cache_dir
    from geomcheck.adapt.variants import buildable
    from geomcheck.checks.pipeline import pipeline_differences
    from geomcheck.errors import GeomcheckError

    session = GeomcheckSession.of(pytestconfig)
    s = session.settings
    methods = buildable(s.builtin_merges, len(lora_run.checkpoint_dirs))
    user = s.user_variants
    names = ", ".join(["base", "lora", *methods])
    if s.cache and (variants_cache_dir(base_embedder, lora_run, methods) / "variants.json").is_file():
        session.say(f"variants {names} of {base_embedder.name}: read from the cache")
    else:
        session.say(f"building variants {names} of {base_embedder.name}")
    if user:
        session.say("your variants: " + ", ".join(f"{v.name} ({'recipe ' if v.recipe else ''}{v.path})" for v in user))
    failure = None
    try:
        variants = cached_variants(base_embedder, lora_run, methods, device=s.device, cache=s.cache, user=user,
                                   progress=session.say)
    except GeomcheckError as exc:  # a model that is not a merge of the base, a recipe that does not build, …
        failure = str(exc)
    if failure is not None:  # said once per test that needs the variants, without library source
        pytest.fail(failure, pytrace=False)
    dirs = variants.info["dirs"]
    for name, why in variants.broken.items():  # the pipeline usually says why: name it in every test's failure
        diffs = "; ".join(d.message(name) for d in pipeline_differences(dirs["base"], dirs[name]))
        variants.broken[name] = f"{name} ({dirs[name]}) {why}" + (f"; its pipeline: {diffs}" if diffs else "")
    return variants


@pytest.fixture(scope="session")
def merge_sweep(geomcheck_model_name: str, request: pytest.FixtureRequest, pytestconfig: pytest.Config):
    """``{(method, t): model directory}``: the base → lora interpolations of ``--geomcheck-sweep`` (slerp and
    linear, or the ``--merge`` methods that interpolate, at ``SWEEP_TS``), merged beside the variants (cached);
    skips the test without the option, before anything is trained or built (list it first among a test's
    fixtures). Load each directory on its own (a sweep holds many models)."""
    from pathlib import Path

    from geomcheck.adapt.variants import SWEEP_TS, build_sweep, sweep_methods

    session = GeomcheckSession.of(pytestconfig)
    s = session.settings
    if not s.sweep:
        pytest.skip("the t-sweep is written with --geomcheck-sweep (and --geomcheck-report DIR)")
    base_embedder, merged_variants = (request.getfixturevalue(n) for n in ("base_embedder", "merged_variants"))
    methods = sweep_methods(s.builtin_merges)
    session.say(f"t-sweep {', '.join(methods)} of {base_embedder.name} at t = {', '.join(f'{t:g}' for t in SWEEP_TS)}")
    return build_sweep(Path(merged_variants.info["dirs"]["base"]).parent, methods, SWEEP_TS)


@pytest.fixture(scope="session")
def geomcheck_baseline_path(geomcheck_model_name: str, pytestconfig: pytest.Config):
    """Where the baseline of the model under test is read from (or written to, with
    ``--geomcheck-update-baseline``): ``--geomcheck-baseline``, else the project's own
    ``<rootdir>/<geomcheck_baselines>/<model id>.json`` (default ``geomcheck-baselines/``), else
    the one shipped with geomcheck."""
    session = GeomcheckSession.of(pytestconfig)
    return session.baseline_path(session.id_of(geomcheck_model_name))


@pytest.fixture(scope="session")
def geomcheck_baseline(geomcheck_model_name: str, geomcheck_baseline_path, embedder, embed, suite_dataset,
                       heldout_dataset, pytestconfig: pytest.Config):
    """The baseline of the model under test (``geomcheck.checks.baseline.Baseline``) at
    ``geomcheck_baseline_path``, or None. With ``--geomcheck-update-baseline`` the file is
    (re)written from this run first."""
    from geomcheck.checks.baseline import Baseline, rewrite_baseline

    session = GeomcheckSession.of(pytestconfig)
    s = session.settings
    model = session.id_of(geomcheck_model_name)
    path = geomcheck_baseline_path
    if s.update_baseline:
        from geomcheck.cache import lock_for

        path.parent.mkdir(parents=True, exist_ok=True)
        with lock_for(path):  # xdist workers write it once; the lock lives in the cache, not beside the file
            data = {s.suite_dataset_name: embed(suite_dataset)}
            if "heldout" in s.suite_datasets:
                data["heldout"] = embed(heldout_dataset)
            rewrite_baseline(path, model, embedder.fingerprint, data,
                             meta={"device": embedder.device, "dtype": embedder.dtype}, metric=s.metric,
                             exact_max=s.exact_max)
        session.say(f"baseline written: {path}")
    if not path.is_file():
        return None
    return Baseline.load(path)

