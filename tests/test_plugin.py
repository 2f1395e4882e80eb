"""The pytest plugin, loaded through its entry point, in a scratch project (pytester)."""

from __future__ import annotations

import pytest

import geomcheck

pytest_plugins = ["pytester"]


def test_header_and_dataset_fixtures(pytester):
    pytester.makepyfile(
        """
        def test_paper(paper_dataset):
            assert len(paper_dataset) == 24
            assert paper_dataset.label_names[3] == "prime"

        def test_heldout(heldout_dataset):
            assert "prime" not in heldout_dataset.label_names

        def test_factory(dataset_factory):
            a = dataset_factory(["squares", "cubes"], per_family=2, length=3, start=1)
            assert a.texts == ("1, 4, 9", "16, 25, 36", "1, 8, 27", "64, 125, 216")
            assert dataset_factory(["squares", "cubes"], per_family=2, length=3, start=1) is a
        """
    )
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines([f"geomcheck {geomcheck.__version__}, model under test: minilm", "*3 passed*"])


def test_help_does_not_import_torch(pytester):
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure(config):
            heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
            print("HEAVY:", heavy)
        """
    )
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["HEAVY: []"])


def test_model_option_bad_name_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x(embedder):\n    pass\n")
    result = pytester.runpytest_subprocess("--model", "minilmm")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--model: unknown model 'minilmm'; did you mean 'minilm'*"])


def test_model_option_loads_the_model_once_for_embed_and_geometry(pytester, tmp_path):
    import subprocess
    import sys

    # Built in a child process: pytester restores sys.modules after each test, and a torch
    # imported here and then dropped cannot be imported again in this process.
    path = tmp_path / "tiny"
    subprocess.run([sys.executable, "-c", f"from geomcheck.testing import tiny_model; tiny_model('bert', {str(path)!r})"],
                   check=True)
    pytester.makepyfile(
        """
        import numpy as np

        def test_embed(embed, embedder, paper_dataset):
            e = embed(paper_dataset)
            assert e.X.shape == (24, 64) and embed(paper_dataset) is e
            assert embedder.dim == 64

        def test_geometry(geometry, paper_dataset, embed):
            from sklearn.metrics import silhouette_score
            r = geometry(paper_dataset)
            assert abs(r.silhouette_true - silhouette_score(embed(paper_dataset).X, paper_dataset.labels)) < 1e-6
        """
    )
    result = pytester.runpytest_subprocess("--model", str(path), "--device", "cpu")
    result.stdout.fnmatch_lines([f"*model under test: {path}*", "*2 passed*"])


def test_help_lists_the_options(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*geometry of embedding models*", "*--model=NAME*"])


def test_recorded_values_reach_the_summary_and_junit_xml(pytester, tmp_path):
    import subprocess
    import sys

    path = tmp_path / "tiny"
    subprocess.run([sys.executable, "-c", f"from geomcheck.testing import tiny_model; tiny_model('bert', {str(path)!r})"],
                   check=True)
    pytester.makepyfile(
        """
        def test_rec(geometry, paper_dataset, geomcheck_record):
            r = geometry(paper_dataset, "paper dataset")
            geomcheck_record("paper.silhouette_true", r.silhouette_true)
        """
    )
    xml = tmp_path / "junit.xml"
    result = pytester.runpytest_subprocess("--model", str(path), "--device", "cpu", f"--junitxml={xml}",
                                           "-o", "junit_family=xunit1")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*= geomcheck =*", "*Cluster geometry*", "*paper.silhouette_true = *"])
    assert 'property name="geomcheck.paper.silhouette_true"' in xml.read_text()
