"""Many runners, one verdict: separate pytest runs (one per model, as CI matrix jobs) combined by
``geomcheck report combine`` into one Table 2, one report and one JUnit file, gated together.

The three runs are real pytest processes on a project that uses geomcheck's public fixtures, with
two tiny real models; the refusals edit copies of their records the way another run would differ.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from geomcheck.cli import main

PROJECT = '''
from geomcheck.assertions import assert_silhouette_above


def test_geometry(geometry, suite_dataset, geomcheck_settings, geomcheck_record):
    rep = geometry(suite_dataset, geomcheck_settings.suite_dataset_name)
    geomcheck_record("db_twice", 2 * rep.davies_bouldin_true)
    geomcheck_record("families", len(suite_dataset.label_names))
    assert -1 <= rep.silhouette_true <= 1


def test_strict(embed, geometry, suite_dataset, geomcheck_settings, geomcheck_record):
    geometry(suite_dataset, geomcheck_settings.suite_dataset_name)
    geomcheck_record("strict_threshold", 0.99)
    assert_silhouette_above(embed(suite_dataset), 0.99)
'''


def _pytest(project, *args, quiet=True):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *(["-q"] if quiet else []), *args],
                          cwd=project, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three separate runs: model a, model b (both pass), model b's strict check (fails)."""
    root = tmp_path_factory.mktemp("combine")
    a, b = root / "tiny-a", root / "tiny-b"
    subprocess.run([sys.executable, "-c", "import sys; from geomcheck.testing import tiny_model, noisy_copy; "
                    "noisy_copy(tiny_model('bert', sys.argv[1]), sys.argv[2], 0.5)", str(a), str(b)], check=True)
    project = root / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")  # the rootdir: not this repository's settings
    (project / "test_geometry.py").write_text(PROJECT)
    procs = {}
    for name, model, select in (("r1", a, "not strict"), ("r2", b, "not strict"), ("r3", b, "strict")):
        # three separate processes, started together as matrix jobs are
        procs[name] = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                                        f"--geomcheck-model={model}", f"--geomcheck-report={root / name}", "-k",
                                        select], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True)
    out = {}
    for name, proc in procs.items():
        stdout, _ = proc.communicate(timeout=600)
        out[name] = (subprocess.CompletedProcess(proc.args, proc.returncode, stdout, ""), root / name)
    return root, out


def test_three_runs_make_one_table_one_junit_and_one_failing_gate(runs, capsys, tmp_path):
    root, out = runs
    assert [out[r][0].returncode for r in ("r1", "r2", "r3")] == [0, 0, 1], out["r3"][0].stdout[-2000:]
    dirs = [str(out[r][1]) for r in ("r1", "r2", "r3")]
    rc = main(["report", "combine", *dirs, "--out", str(tmp_path / "all"), "--junit-xml", str(tmp_path / "j.xml")])
    captured = capsys.readouterr()
    assert rc == 1
    text = captured.out
    assert text.count("Cluster geometry on the paper dataset") == 1  # one Table 2
    assert "tiny-a" in text and "tiny-b" in text and "failed" in text  # b's row: a test of it failed
    assert "gate FAILED: 3 runs, 3 tests (2 passed, 1 failed)" in captured.err
    assert "test_strict[tiny-b]" in captured.err and "silhouette" in captured.err

    combined = tmp_path / "all"
    assert sorted(p.name for p in combined.iterdir()) == [
        "junit.xml", "report.json", "report.md", "tsne-paper-tiny-a.png", "tsne-paper-tiny-b.png"]
    md = (combined / "report.md").read_text()
    assert "## Runs combined (3)" in md and "**Gate: FAILED**" in md
    assert "(tsne-paper-tiny-a.png)" in md and "(tsne-paper-tiny-b.png)" in md
    doc = json.loads((combined / "report.json").read_text())
    assert doc["format"] == "geomcheck.run/2" and len(doc["runs"]) == 3 and doc["settings"]["models"] == [
        "tiny-a", "tiny-b"]

    # JUnit: every test of every run, and every value any run recorded, with its value
    recorded = {}
    for d in dirs:
        for r in json.loads((root / d / "report.json").read_text())["values"]:
            if not isinstance(r["value"], (dict, list)):
                recorded["geomcheck." + ".".join(p for p in (r["model"], r["variant"], r["name"]) if p)] = r["value"]
    assert {"geomcheck.tiny-a.db_twice", "geomcheck.tiny-b.db_twice", "geomcheck.tiny-b.strict_threshold",
            "geomcheck.tiny-a.families"} <= set(recorded)
    for xml in (combined / "junit.xml", tmp_path / "j.xml"):
        suite = ET.parse(xml).getroot().find("testsuite")
        props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert props == {k: str(v) for k, v in recorded.items()}
        cases = {c.get("name"): c for c in suite.iter("testcase")}
        assert sorted(cases) == ["test_geometry[tiny-a]", "test_geometry[tiny-b]", "test_strict[tiny-b]"]
        assert suite.get("tests") == "3" and suite.get("failures") == "1"
        failure = cases["test_strict[tiny-b]"].find("failure")
        assert failure is not None and "0.99" in failure.get("message")
        assert cases["test_geometry[tiny-a]"].find("failure") is None


def test_the_two_passing_runs_pass_the_gate(runs, capsys, tmp_path):
    _, out = runs
    assert main(["report", "combine", str(out["r1"][1]), str(out["r2"][1]), "--out", str(tmp_path / "ok")]) == 0
    assert "gate passed: 2 runs, 2 tests (2 passed)" in capsys.readouterr().out


def _edited(runs, tmp_path, name, edit):
    """A copy of run r2's report directory with its record edited."""
    _, out = runs
    copy = tmp_path / name
    shutil.copytree(out["r2"][1], copy)
    doc = json.loads((copy / "report.json").read_text())
    edit(doc)
    (copy / "report.json").write_text(json.dumps(doc))
    return copy


@pytest.mark.parametrize(("name", "edit", "why"), [
    ("version", lambda d: d["settings"]["versions"].update(geomcheck="0.0.1"),
     r"written by geomcheck 0.0.1 and .* by geomcheck \S+: runs of different versions"),
    ("dtype", lambda d: d["settings"].update(dtype="bfloat16"),
     r"ran different protocols: setting 'dtype' is \"bfloat16\" there and \"auto\" here"),
    ("seeds", lambda d: d["settings"]["seeds"].update(kmeans=1), r"setting 'seeds' is"),
    ("data", lambda d: d["geometry"][0].update(data_sha256="0" * 64),
     r"measured different data under the name 'paper'"),
    ("model", lambda d: d["models"].update({"tiny-a": {**d["models"]["tiny-b"], "fingerprint": "f" * 32}}),
     r"both hold a model 'tiny-a', but different ones"),
    ("old", lambda d: d.update(format="geomcheck.run/1"), r"a run record of format 'geomcheck.run/1'; combining needs"),
])
def test_records_that_cannot_stand_in_one_table_are_refused(runs, capsys, tmp_path, name, edit, why):
    import re

    _, out = runs
    other = _edited(runs, tmp_path, name, edit)
    assert main(["report", "combine", str(out["r1"][1]), str(other), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert re.search(why, err), err
    assert not (tmp_path / "x").exists()


def test_per_run_settings_may_differ_and_the_output_may_not_be_a_run(runs, capsys, tmp_path):
    _, out = runs
    other = _edited(runs, tmp_path, "gpu", lambda d: d["settings"].update(device="cuda", batch_size=256))
    assert main(["report", "combine", str(out["r1"][1]), str(other / "report.json"), "--out",
                 str(tmp_path / "ok")]) == 0
    assert main(["report", "combine", str(out["r1"][1]), str(other), "--out", str(other)]) == 2
    assert "would be overwritten" in capsys.readouterr().err


XDIST_PROJECT = '''
import os

import pytest


@pytest.mark.parametrize("i", range(4))
def test_one(geomcheck_model_name, geomcheck_record, i):
    geomcheck_record(f"worker.{i}", os.environ.get("PYTEST_XDIST_WORKER", "-"))
'''


def test_loadgroup_keeps_each_models_tests_on_one_worker(tmp_path):
    pytest.importorskip("xdist")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_x.py").write_text(XDIST_PROJECT)
    models = ("--geomcheck-model=minilm", "--geomcheck-model=smollm2-135m")
    done = _pytest(tmp_path, *models, "-n", "2", "--dist", "loadgroup", f"--geomcheck-report={tmp_path / 'r'}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    workers = {}
    for r in doc["values"]:
        workers.setdefault(r["model"], set()).add(r["value"])
    assert sorted(workers) == ["minilm", "smollm2-135m"] and all(len(w) == 1 for w in workers.values()), workers
    assert len(doc["tests"]) == 8 and not any("@" in t["nodeid"] for t in doc["tests"])  # xdist's suffix dropped
    spread = _pytest(tmp_path, *models, "-n", "1", "--dist", "load", "--co", quiet=False)  # the header says what loadgroup does
    assert "--dist loadgroup keeps each model's tests on one worker" in spread.stdout


@pytest.mark.parametrize(("nodeid", "model"), [
    ("t.py::test_x[minilm]", "minilm"), ("t.py::test_x[minilm-3]", "minilm"), ("t.py::test_x[3-minilm]", "minilm"),
    ("t.py::C::test_x[a-minilm-soup]", "minilm"), ("t.py::test_x[smollm2-135m-0]", "smollm2-135m"),
    ("t.py::test_x[smollm2-0]", "smollm2"), ("t.py::test_x", None), ("t.py::test_x[minilmx-0]", None),
    ("t.py::test_x[minilm-smollm2]", None),  # two models: no group, plain load balancing
])
def test_the_scheduler_finds_the_model_in_a_test_id(nodeid, model):
    pytest.importorskip("xdist")
    from pytest_geomcheck.xdist import model_in_nodeid

    assert model_in_nodeid(nodeid, ["minilm", "smollm2", "smollm2-135m"]) == model


def test_the_matrix_example_runs_one_model_a_job_and_combines_them(tmp_path):
    import re
    from pathlib import Path

    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((Path(__file__).parents[1] / "examples" / "github-actions-matrix.yml").read_text())
    jobs = workflow["jobs"]
    assert jobs["combine"]["needs"] == "geometry" and jobs["combine"]["if"] == "always()"
    assert jobs["release"]["needs"] == "combine" and jobs["geometry"]["strategy"]["fail-fast"] is False
    steps = {name: [s.get("run", "") for s in job["steps"]] for name, job in jobs.items()}
    check = next(r for r in steps["geometry"] if "geomcheck check" in r)
    combine = next(r for r in steps["combine"] if "geomcheck report combine" in r)
    assert "${{ matrix.model }}" in check and "--report" in check
    upload = next(s for s in jobs["geometry"]["steps"] if "upload-artifact" in s.get("uses", ""))
    download = next(s for s in jobs["combine"]["steps"] if "download-artifact" in s.get("uses", ""))
    assert upload["if"] == "always()" and upload["with"]["name"].startswith(download["with"]["pattern"].rstrip("*"))
    assert f"{download['with']['path'].rstrip('/')}/geometry-report-*" in combine
    # every option is geomcheck check's, pytest's or geomcheck report combine's
    ours = subprocess.run([sys.executable, "-m", "geomcheck", "check", "--help"], capture_output=True, text=True,
                          cwd=tmp_path).stdout
    pytests = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True,
                             cwd=tmp_path).stdout
    combines = subprocess.run([sys.executable, "-m", "geomcheck", "report", "combine", "--help"],
                              capture_output=True, text=True).stdout
    missing = [o for o in re.findall(r"(--[a-z][a-z-]+)", check)
               if f"{o} " not in ours and f"{o}," not in ours and f"{o}=" not in pytests and f"{o} " not in pytests]
    assert not missing and "--out DIR" in combines and "--out" in combine, missing
