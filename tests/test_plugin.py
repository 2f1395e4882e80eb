"""The pytest plugin, loaded through its entry point, in a scratch project (pytester)."""

from __future__ import annotations

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
    result.stdout.fnmatch_lines([f"geomcheck {geomcheck.__version__}", "*3 passed*"])


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
