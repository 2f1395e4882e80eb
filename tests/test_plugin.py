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
    result = pytester.runpytest_subprocess("--geomcheck-model", "minilmm")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--geomcheck-model: unknown model 'minilmm'; did you mean 'minilm'*"])


def test_model_option_loads_the_model_once_for_embed_and_geometry(pytester, tmp_path):
    path = _tiny(tmp_path, "bert", "tiny")
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
    result = pytester.runpytest_subprocess("--geomcheck-model", str(path), "--geomcheck-device", "cpu")
    result.stdout.fnmatch_lines([f"*model under test: {path}*", "*2 passed*"])


def test_help_lists_the_options(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*geometry of embedding models*", "*--geomcheck-model=NAME*"])


def test_recorded_values_reach_the_summary_and_junit_xml(pytester, tmp_path):
    path = _tiny(tmp_path, "bert", "tiny")
    pytester.makepyfile(
        """
        def test_rec(geometry, paper_dataset, geomcheck_record):
            r = geometry(paper_dataset, "paper dataset")
            geomcheck_record("paper.silhouette_true", r.silhouette_true)
        """
    )
    import xml.etree.ElementTree as ET

    def run(*family):
        xml = tmp_path / f"junit-{'-'.join(family) or 'default'}.xml"
        result = pytester.runpytest_subprocess("--geomcheck-model", str(path), "--geomcheck-device", "cpu",
                                               f"--junitxml={xml}", "-W", "error::pytest.PytestWarning", *family)
        result.assert_outcomes(passed=1)
        suite = ET.parse(xml).getroot().find("testsuite")
        return result, {p.get("name"): p.get("value") for p in suite.findall("./properties/property")}, \
            {p.get("name"): p.get("value") for p in suite.findall("./testcase/properties/property")}

    # pytest's default (xunit2): the values are test-suite properties, and nothing warns
    result, suite_props, case_props = run()
    result.stdout.fnmatch_lines(["*= geomcheck =*", "*Cluster geometry*", "*paper.silhouette_true = *"])
    value = float(suite_props["geomcheck.tiny.paper.silhouette_true"])
    assert -1 <= value <= 1 and case_props == {}
    # xunit1 also has per-test properties: the same value on the test case
    _, suite_props, case_props = run("-o", "junit_family=xunit1")
    assert float(case_props["geomcheck.paper.silhouette_true"]) == value
    assert float(suite_props["geomcheck.tiny.paper.silhouette_true"]) == value


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--geomcheck-families", "prime,primes"], "*unknown family 'primes'*did you mean*prime*"),
        (["--geomcheck-families", "prime"], "*--geomcheck-families: the cluster metrics need at least 2 families*"),
        (["--geomcheck-per-family", "1"], "*error: argument --geomcheck-per-family: must be >= 2 (silhouette needs 2 texts*, got 1"),
        (["--geomcheck-seq-length", "0"], "*error: argument --geomcheck-seq-length: must be >= 1, got 0"),
        (["--geomcheck-merge", "slurp"], "*--geomcheck-merge: unknown method(s) slurp; known: *slerp*"),
        (["--geomcheck-dtype", "fp8"], "*error: argument --geomcheck-dtype: must be one of auto, float32, bfloat16, float16, got 'fp8'"),
        (["--geomcheck-device", "tpu"], "*error: argument --geomcheck-device: the device must be 'auto', 'cpu', 'cuda', 'cuda:N' or*"),
        (["--geomcheck-batch-size", "x"], "*error: argument --geomcheck-batch-size: expected an integer, got 'x'"),
        (["--geomcheck-adapter", "/nonexistent/adapter"], "*--geomcheck-adapter: no directory at '/nonexistent/adapter'*"),
        (["--geomcheck-checkpoint", "/nonexistent/ckpt"], "*--geomcheck-checkpoint: no directory at '/nonexistent/ckpt'*"),
        (["--geomcheck-base-model", "qwen3-0.6"], "*--geomcheck-base-model: unknown model 'qwen3-0.6'*"),
        (["--geomcheck-baseline", "/nonexistent/b.json"], "*--geomcheck-baseline: no file at*--geomcheck-update-baseline*"),
        (["--geomcheck-dataset", "/nonexistent/mine.jsonl"], "*--geomcheck-dataset: no file at '/nonexistent/mine.jsonl'"),
        (["--geomcheck-metric", "manhattan"], "*error: argument --geomcheck-metric: must be one of euclidean, cosine, "
                                              "got 'manhattan'"),
        (["--geomcheck-exact-max", "1"], "*error: argument --geomcheck-exact-max: must be >= 2, got 1"),
        (["--geomcheck-text-column", "sentence"], "*--geomcheck-text-column / --geomcheck-label-column / "
                                                  "--geomcheck-dataset-format / --geomcheck-max-rows need "
                                                  "--geomcheck-dataset PATH"),
    ],
)
def test_bad_option_values_are_usage_errors(pytester, args, message):
    pytester.makepyfile("def test_x(embedder):\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # values of one option alone fail as argparse type errors, the others when the settings are checked
    expected = message if message.startswith("*error: argument") else f"ERROR: geomcheck: {message.lstrip('*')}"
    result.stderr.fnmatch_lines([expected])


@pytest.mark.parametrize(("ini", "message"), [
    ("geomcheck_tolerances =\n    cka_to_baseline=high", "*geomcheck_tolerances: expected NAME=NUMBER, got "
                                                         "'cka_to_baseline=high'*"),
    ("geomcheck_min_gain_share = most", "*geomcheck_min_gain_share: expected a number in [[]0, 1[]], got 'most'*"),
    ("geomcheck_metric = jaccard", "*geomcheck_metric: must be one of euclidean, cosine, got 'jaccard'*"),
])
def test_bad_ini_values_are_usage_errors(pytester, ini, message):
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_your_dataset_from_the_ini_or_the_command_line(pytester, monkeypatch):
    """The ini path is relative to the ini file, the option's to where pytest runs; a bad file or a clash
    with the sequence options is a usage error naming the place."""
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "intents.csv").write_text("utterance,intent\nhi there,greet\nhello,greet\n"
                                                        "bye now,leave\nsee you,leave\n")
    (pytester.path / "data" / "bad.csv").write_text("utterance,intent\nhi there,greet\nhello,greet\nbye now,\n")
    pytester.makeini("[pytest]\ngeomcheck_dataset = data/intents.csv\ngeomcheck_text_column = utterance\n"
                     "geomcheck_label_column = intent\n")
    pytester.makepyfile(
        """
        def test_s(geomcheck_settings, suite_dataset, user_dataset, lora_task, dataset_factory):
            assert geomcheck_settings.suite_dataset_name == "intents" and suite_dataset is user_dataset
            assert suite_dataset.label_names == ("greet", "leave") and len(suite_dataset) == 4
            assert geomcheck_settings.suite_datasets == ("intents",)
            assert len(lora_task.train) == 2 and len(lora_task.test) == 2  # one of each label in each split
            ds = dataset_factory(texts=["a b", "c d", "e f", "g h"], labels=["x", "y", "x", "y"])
            assert ds.label_names == ("x", "y") and ds.labels.tolist() == [0, 1, 0, 1]
        """
    )
    root = pytester.path
    monkeypatch.chdir(pytester.mkdir("sub"))  # run from elsewhere: the ini's path is read beside the ini
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", str(root))
    result.assert_outcomes(passed=1)
    # 1 test text a label: said, with the size that would do
    result.stdout.fnmatch_lines(["*the test split of intents is small: 1 text(s) of label 'greet'*at least 8 test "
                                 "texts per label (about 16 per label in the file)*"])
    monkeypatch.chdir(root)
    rows = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--geomcheck-max-rows", "3")
    assert rows.ret == pytest.ExitCode.USAGE_ERROR
    rows.stderr.fnmatch_lines(["*argument --geomcheck-max-rows: must be >= 4 (2 labels of 2 texts), got 3"])
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--geomcheck-dataset", "data/bad.csv")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*geomcheck: --geomcheck-dataset: */data/bad.csv, line 4, column 'intent': missing label"])
    clash = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--geomcheck-per-family", "3")
    assert clash.ret == pytest.ExitCode.USAGE_ERROR
    clash.stderr.fnmatch_lines(["*--geomcheck-dataset replaces the sequence suite dataset: --geomcheck-per-family do "
                                "not apply to it"])


def test_your_own_merge_paths_are_read_from_where_they_were_given(pytester):
    # from an ini file: beside it; from the command line: from where pytest runs
    for d in ("merged", "sub/other"):
        (pytester.path / d).mkdir(parents=True)
        (pytester.path / d / "config.json").write_text("{}")
    pytester.makeini("[pytest]\ngeomcheck_merge = soup mine=merged\n")
    pytester.makepyfile(
        f"""
        def test_ini(geomcheck_settings):
            assert geomcheck_settings.variant_names == ("soup", "mine")
            assert [str(v.path) for v in geomcheck_settings.user_variants] == [{str(pytester.path / "merged")!r}]
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makepyfile(
        f"""
        def test_cli(geomcheck_settings):
            assert geomcheck_settings.merges == ("other={pytester.path / 'sub' / 'other'}",)
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--geomcheck-merge", "other=sub/other").assert_outcomes(
        passed=1)


def test_options_from_ini_reach_the_settings(pytester):
    pytester.makeini("[pytest]\ngeomcheck_merge = soup ties\ngeomcheck_families = prime odd even\n"
                     "geomcheck_per_family = 3\ngeomcheck_seq_length = 7\ngeomcheck_tolerances =\n"
                     "    cka_to_baseline = 0.9\n")
    pytester.makepyfile(
        """
        def test_s(geomcheck_settings, suite_dataset):
            s = geomcheck_settings
            assert s.merges == ("soup", "ties") and s.families == ("prime", "odd", "even")
            assert s.tolerances == {"cka_to_baseline": 0.9}
            assert len(suite_dataset) == 9 and all(len(t.split(", ")) == 7 for t in suite_dataset.texts)
            assert suite_dataset.label_names == ("prime", "odd", "even")

        def test_cli_wins(geomcheck_settings):
            assert geomcheck_settings.per_family == 3
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=2)
    pytester.runpytest_subprocess("--geomcheck-per-family", "5", "-k", "test_s").assert_outcomes(failed=1)


def _tiny(tmp_path, kind, name, seed=0):
    """A tiny model built in a child process: pytester restores sys.modules after each test, and a
    torch imported here and then dropped cannot be imported again in this process."""
    import subprocess
    import sys

    path = tmp_path / name
    subprocess.run([sys.executable, "-c",
                    f"from geomcheck.testing import tiny_model; tiny_model({kind!r}, {str(path)!r}, seed={seed})"],
                   check=True)
    return path


def test_repeated_model_parametrises_model_tests_once_per_model(pytester, tmp_path):
    enc, dec = _tiny(tmp_path, "bert", "enc"), _tiny(tmp_path, "qwen3", "dec")
    pytester.makeconftest(
        """
        import pytest
        LOADS = []

        @pytest.fixture(scope="session", autouse=True)
        def count_loads(request):
            yield
            print("LOADED", sorted(LOADS))
        """
    )
    pytester.makepyfile(
        """
        import pytest
        from conftest import LOADS

        def test_a(embedder, paper_dataset):
            LOADS.append((embedder.name.rsplit("/", 1)[-1], id(embedder)))
            assert embedder.embed(paper_dataset).X.shape[0] == 24

        def test_b(embedder):
            LOADS.append((embedder.name.rsplit("/", 1)[-1], id(embedder)))

        def test_no_model(paper_dataset):
            pass

        @pytest.mark.geomcheck_model(kind="llm")
        def test_llm_only(embedder):
            assert "dec" in embedder.name

        @pytest.mark.geomcheck_model(kind="encoder")
        def test_encoder_only(embedder):
            assert "enc" in embedder.name

        @pytest.mark.geomcheck_gpu
        def test_gpu(embedder):
            pass
        """
    )
    result = pytester.runpytest_subprocess("--geomcheck-model", str(enc), "--geomcheck-model", str(dec), "--geomcheck-device", "cpu", "-v", "-s", "-rs")
    result.stdout.fnmatch_lines_random([
        "*test_a[[]enc[]] PASSED*", "*test_a[[]dec[]] PASSED*", "*test_b[[]enc[]] PASSED*",
        "*test_no_model PASSED*", "*test_llm_only[[]enc[]] SKIPPED*", "*test_encoder_only[[]dec[]] SKIPPED*",
        "*geomcheck_model(kind='llm'): *enc is an encoder*", "*geomcheck_gpu: needs CUDA*",
    ])
    result.assert_outcomes(passed=7, skipped=4)
    loads = eval(result.stdout.str().split("LOADED ")[1].splitlines()[0])
    assert len({i for _, i in loads if _ == "enc"}) == 1 and len({i for _, i in loads if _ == "dec"}) == 1


def test_a_user_test_file_with_the_documented_fixtures_and_hypothesis(pytester, tmp_path):
    """What the README shows a user: fixtures, assertions and Hypothesis over session fixtures."""
    model = _tiny(tmp_path, "bert", "tiny")
    pytester.makepyfile(
        test_user="""
        from hypothesis import given, settings, strategies as st
        from geomcheck import strategies as gst
        from geomcheck.assertions import assert_davies_bouldin_below, assert_silhouette_above

        def test_protocol(embed, geometry, paper_dataset, geomcheck_record):
            r = geometry(paper_dataset, "paper")
            geomcheck_record("sil", r.silhouette_true)
            assert_silhouette_above(embed(paper_dataset), -1.0)
            assert_davies_bouldin_below(embed(paper_dataset), 100.0)

        @settings(max_examples=5, deadline=None)
        @given(texts=st.lists(gst.sequence_texts(max_chars=80), min_size=1, max_size=4))
        def test_property(embedder, texts):
            assert embedder.encode(texts, cache=False).shape == (len(texts), embedder.dim)

        def test_factory(dataset_factory, embed):
            ds = dataset_factory(["squares", "cubes"], per_family=3, length=5)
            assert embed(ds).X.shape[0] == 6
        """
    )
    result = pytester.runpytest_subprocess("--geomcheck-model", str(model), "--geomcheck-device", "cpu")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*= geomcheck =*", "*tiny*sil = *"])


def test_the_readme_examples_run_as_user_test_files(pytester):
    """Every Python block of the README, saved as a test file outside the repo, passes on the default model."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 3
    for i, code in enumerate(blocks):
        pytester.makepyfile(**{f"test_readme_{i}": code})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--geomcheck-merge", "soup", "--geomcheck-merge", "slerp")
    outcomes = result.parseoutcomes()
    assert result.ret == 0 and outcomes.get("passed", 0) >= 4 and "failed" not in outcomes, result.stdout.str()[-3000:]


def test_xdist_workers_take_one_gpu_each_and_the_controller_merges_their_records(pytester, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.mark.parametrize("i", range(4))
        def test_gpu_of_worker(i, geomcheck_record, worker_id):
            expected = {"gw0": "3", "gw1": "5"}[worker_id]
            assert os.environ["CUDA_VISIBLE_DEVICES"] == expected
            geomcheck_record(f"seen.{i}", worker_id)
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    summary = result.stdout.str().split("= geomcheck =")[1]
    assert all(f"seen.{i} = gw" in summary for i in range(4)), summary  # one summary with both workers' values


def test_dtype_and_batch_size_reach_the_model(pytester, tmp_path):
    model = _tiny(tmp_path, "qwen3", "dec")
    pytester.makepyfile(
        """
        def test_loaded_as_asked(embedder, paper_dataset):
            assert embedder.dtype == "bfloat16" and embedder.batch_size == 5
            embedder.encode(paper_dataset.texts[:7], cache=False)
            assert embedder.last_batch_size == 5
        """
    )
    result = pytester.runpytest_subprocess("--geomcheck-model", str(model), "--geomcheck-device", "cpu", "--geomcheck-dtype", "bfloat16",
                                           "--geomcheck-batch-size", "5")
    result.assert_outcomes(passed=1)


def test_a_project_with_its_own_short_options_runs_unchanged(pytester):
    """The plugin registers only --geomcheck-* options: a project's own --device, --model, … keep working."""
    names = ("device", "model", "dtype", "batch-size", "checkpoint", "adapter", "merge", "families")
    pytester.makeconftest(
        "def pytest_addoption(parser):\n"
        + "".join(f"    parser.addoption('--{n}', default='own-{n}')\n" for n in names)
    )
    pytester.makepyfile(
        """
        def test_own(pytestconfig):
            assert pytestconfig.getoption("--device") == "cuda:7"
            assert pytestconfig.getoption("--model") == "own-model"
            assert pytestconfig.getoption("--merge") == "mine"

        def test_geomcheck_beside_it(geomcheck_settings):
            assert geomcheck_settings.device == "cpu" and geomcheck_settings.models == ("minilm",)
        """
    )
    result = pytester.runpytest_subprocess("--device", "cuda:7", "--merge", "mine", "--geomcheck-device", "cpu")
    result.assert_outcomes(passed=2)


def test_short_forms_exist_only_where_a_conftest_adds_them(pytester):
    pytester.makepyfile("def test_s(geomcheck_settings):\n    assert geomcheck_settings.merges == ('ties',)\n")
    plain = pytester.runpytest_subprocess("--merge", "ties")
    assert plain.ret == pytest.ExitCode.USAGE_ERROR
    plain.stderr.fnmatch_lines(["*unrecognized arguments: --merge*"])
    pytester.makeconftest(
        "from pytest_geomcheck import add_short_options\n\n"
        "def pytest_addoption(parser):\n    add_short_options(parser)\n"
    )
    pytester.runpytest_subprocess("--merge", "ties").assert_outcomes(passed=1)
    pytester.runpytest_subprocess("--geomcheck-merge", "ties").assert_outcomes(passed=1)


def test_a_failing_geometry_assertion_reads_as_its_verdict(pytester, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # room for the -ra line's message
    pytester.makepyfile(
        """
        import numpy as np
        from geomcheck.assertions import assert_silhouette_above

        def test_random_space_does_not_separate():
            X = np.random.default_rng(0).normal(size=(24, 8))
            assert_silhouette_above(X, np.repeat(np.arange(6), 4), 0.5)
        """
    )
    result = pytester.runpytest_subprocess("-ra", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "def assert_silhouette_above" not in out and "raise GeometryAssertionError" not in out  # no library source
    result.stdout.fnmatch_lines(["E  *geomcheck.errors.GeometryAssertionError: silhouette -0.1183 <= +0.5000 (*",
                                 "FAILED *::test_random_space_does_not_separate - silhouette -0.1183 <= +0.5000 (*"])


def test_a_test_may_parametrise_the_variant_itself(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("x, geomcheck_variant", [(1, "soup"), (2, "ties")])
        def test_v(x, geomcheck_variant):
            assert geomcheck_variant in ("soup", "ties")
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_two_checkpoints_of_the_same_name_get_their_own_ids(pytester, tmp_path):
    for parent in ("a", "b"):
        (tmp_path / parent / "ckpt").mkdir(parents=True)
        (tmp_path / parent / "ckpt" / "config.json").write_text("{}")
    pytester.makepyfile("def test_m(geomcheck_model_name, geomcheck_baseline_path):\n    pass\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--geomcheck-model", str(tmp_path / "a" / "ckpt"),
                                           "--geomcheck-model", str(tmp_path / "b" / "ckpt"))
    result.stdout.fnmatch_lines(["*test_m[[]a-ckpt[]]", "*test_m[[]b-ckpt[]]"])


def test_embed_keeps_each_datasets_own_labels(pytester, tmp_path):
    path = _tiny(tmp_path, "bert", "tiny")
    pytester.makepyfile(
        """
        from dataclasses import replace

        import numpy as np

        def test_relabelled(embed, paper_dataset):
            other = replace(paper_dataset, labels=np.arange(24) % 2, label_names=("a", "b"))
            a, b = embed(paper_dataset), embed(other)
            assert np.array_equal(a.X, b.X)
            assert list(b.labels) == list(np.arange(24) % 2) and b.label_names == ("a", "b")
            assert list(a.labels) == list(paper_dataset.labels)
        """
    )
    pytester.runpytest_subprocess("--geomcheck-model", str(path), "--geomcheck-device", "cpu").assert_outcomes(passed=1)


def test_markers_are_registered_once(pytester):
    markers = pytester.runpytest_subprocess("--markers").stdout.str()
    assert markers.count("@pytest.mark.geomcheck_slow") == 1, markers


def test_a_project_that_uses_no_geomcheck_fixture_pays_nothing_for_it(pytester):
    """The plugin loads in every run of the environment: a run without geomcheck fixtures (a failing one
    included) records nothing, writes nothing and imports no numpy, torch or geomcheck reporting."""
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure(config):
            print("LOADED:", [m for m in ("numpy", "torch", "geomcheck.reporting.record") if m in sys.modules])
        """
    )
    pytester.makepyfile("def test_ok():\n    pass\n\ndef test_bad():\n    assert 1 == 2\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["LOADED: []"])
    assert "= geomcheck =" not in result.stdout.str()


def test_a_report_directory_holding_the_users_own_report_is_refused_before_the_run(pytester):
    """--geomcheck-report docs where docs/report.md is the user's own file: a usage error before the run, the
    file untouched; a directory of an earlier geomcheck report is replaced; a read-only one is refused."""
    import os

    pytester.makepyfile("def test_x(geometry, paper_dataset):\n    geometry(paper_dataset, 'paper')\n")
    docs = pytester.path / "docs"
    docs.mkdir()
    (docs / "report.md").write_text("# Our quarterly report\n")
    result = pytester.runpytest_subprocess("--geomcheck-report", "docs", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--geomcheck-report: the report directory 'docs' holds report.md that geomcheck "
                                 "did not write*choose an empty or new directory*"])
    assert (docs / "report.md").read_text() == "# Our quarterly report\n" and sorted(os.listdir(docs)) == ["report.md"]

    ours = pytester.path / "ours"
    (ours / "sub").mkdir(parents=True)
    (ours / "report.json").write_text('{"format": "geomcheck.run/1"}')
    (ours / "report.md").write_text("old")
    again = pytester.runpytest_subprocess("--geomcheck-report", "ours", "-p", "no:cacheprovider")
    assert again.ret == 0, again.stderr.str()
    assert (ours / "report.md").read_text() != "old"  # an earlier geomcheck report is replaced
    os.chmod(ours / "sub", 0o555)
    if os.access(ours / "sub", os.W_OK):  # root writes anywhere: the read-only case cannot be shown
        pytest.skip("running as a user that may write into read-only directories")
    ro = pytester.runpytest_subprocess("--geomcheck-report", "ours/sub", "-p", "no:cacheprovider")
    assert ro.ret == pytest.ExitCode.USAGE_ERROR
    ro.stderr.fnmatch_lines(["*the report directory 'ours/sub' is not writable*"])


def test_a_model_directory_in_the_ini_is_read_beside_the_ini_file(pytester, monkeypatch, tmp_path):
    """ini ``geomcheck_model = ./models/tiny`` is the directory beside the ini file, wherever pytest runs (as
    ``geomcheck_dataset``); a missing one is that missing directory, never a Hugging Face id."""
    _tiny(pytester.path / "models", "bert", "tiny")
    pytester.makeini("[pytest]\ngeomcheck_model = ./models/tiny\n")
    pytester.makepyfile("def test_m(geomcheck_settings):\n    print('MODELS', geomcheck_settings.models)\n")
    root = pytester.path
    monkeypatch.chdir(pytester.mkdir("elsewhere"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", str(root))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"* MODELS ('{root / 'models' / 'tiny'}',)"])
    pytester.makeini("[pytest]\ngeomcheck_model = ./models/gone\n")
    gone = pytester.runpytest_subprocess("-p", "no:cacheprovider", str(root))
    assert gone.ret == pytest.ExitCode.USAGE_ERROR
    gone.stderr.fnmatch_lines([f"*--geomcheck-model: no model directory at '{root / 'models' / 'gone'}'*"])


def test_metric_and_exact_max_from_the_ini_and_the_command_line(pytester):
    """The ini sets the metric; the flag overrides it; the short forms exist where the suites' conftest adds them."""
    pytester.makeini("[pytest]\ngeomcheck_metric = cosine\ngeomcheck_exact_max = 5000\n")
    pytester.makeconftest("from pytest_geomcheck import add_short_options\n\n"
                          "def pytest_addoption(parser):\n    add_short_options(parser)\n")
    pytester.makepyfile(
        """
        import os

        def test_s(geomcheck_settings):
            assert (geomcheck_settings.metric, geomcheck_settings.exact_max) == tuple(
                os.environ["EXPECT"].split(":")[0:1]) + (int(os.environ["EXPECT"].split(":")[1]),)
        """
    )
    import os

    # the short forms set the --geomcheck-* settings themselves (one dest): they override the ini as those do
    for args, expect in (((), "cosine:5000"), (("--metric", "euclidean", "--exact-max", "7"), "euclidean:7")):
        os.environ["EXPECT"] = expect
        try:
            result = pytester.runpytest_subprocess(*args)
        finally:
            del os.environ["EXPECT"]
        assert result.ret == 0, (args, result.stdout.str()[-800:])
    from geomcheck.cli.check import translate_args

    assert translate_args(["--metric", "cosine", "--exact-max=9", "-q"]) == [
        "--geomcheck-metric=cosine", "--geomcheck-exact-max=9", "-q"]
