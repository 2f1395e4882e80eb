"""``geomcheck sweep`` and ``--geomcheck-sweep``: t = 0 is the base and t = 1 the LoRA model, for every method.

On a tiny BERT with a tiny LoRA (6 steps) trained into the place of the default run in the test
session's cache, so the command reads it instead of training the default recipe.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from geomcheck.cli import main

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
ALL = ("slerp", "nuslerp", "linear", "multislerp", "karcher", "task_arithmetic")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from geomcheck.adapt import train_lora
    from geomcheck.adapt.cached import lora_cache_dir
    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    root = tmp_path_factory.mktemp("sweep")
    path = tiny_model("bert", root / "bert")
    base = load_model(str(path), device="cpu")
    train_lora(base, out_dir=lora_cache_dir(base), max_steps=6, lr=2e-2, checkpoints=2, progress=False,
               evaluate_sets=False)
    return root, path


@pytest.fixture(scope="module")
def swept(tiny, tmp_path_factory):
    root, path = tiny
    png = root / "sweep.png"
    args = ["sweep", "--model", str(path), "--device", "cpu", "--t", "0,0.5,1", "--plot", str(png), "--json"]
    for m in ALL:
        args += ["--method", m]
    proc = subprocess.run([sys.executable, "-m", "geomcheck", *args], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), png, proc.stderr


def test_t0_is_the_base_and_t1_the_lora_model_for_every_method(swept):
    doc, _, err = swept
    lora = {r["variant"]: r for r in doc["ends"]}["lora"]
    assert {(r["method"], r["t"]) for r in doc["rows"]} == {(m, t) for m in ALL for t in (0.0, 0.5, 1.0)}
    for r in doc["rows"]:
        if r["t"] == 0:
            assert abs(r["cka_to_base"] - 1) <= 1e-6 and abs(r["task_gain"]) <= 1e-6, r
            assert r["adapter_position"] <= 1e-6, r
        elif r["t"] == 1:
            assert abs(r["cka_to_lora"] - 1) <= 1e-6 and abs(r["task_gain"] - lora["task_gain"]) <= 1e-6, r
            assert r["adapter_position"] >= 1 - 1e-6, r
        else:
            assert r["cka_to_base"] < 1 - 1e-6 and r["cka_to_lora"] < 1 - 1e-6, r  # in between: neither end
    assert "merging slerp at t = 0.5" in err and "read from the cache" in err
    assert set(doc) == {"rows", "ends", "plot", "settings", "timings"} and doc["settings"]["methods"] == list(ALL)


def test_the_plot_is_a_real_png_of_sensible_size(swept):
    import matplotlib.image

    doc, png, _ = swept
    data = png.read_bytes()
    assert doc["plot"] == str(png) and data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert 600 <= width <= 3000 and 400 <= height <= 3000 and len(data) > 20_000
    pixels = matplotlib.image.imread(str(png))
    assert pixels.shape[:2] == (height, width) and pixels[..., :3].std() > 0.05  # drawn, not blank


def test_a_warm_sweep_reads_its_merges_back(tiny, swept, capsys):
    root, path = tiny
    assert main(["sweep", "--model", str(path), "--device", "cpu", "--t", "0,1", "--method", "linear"]) == 0
    captured = capsys.readouterr()
    assert "merging" not in captured.err  # t = 0 and 1 of linear were merged by the first sweep
    assert "t-sweep base → LoRA" in captured.out and "task gain" in captured.out


def test_methods_that_cannot_interpolate_are_rejected_with_those_that_can(capsys):
    assert main(["sweep", "--model", "minilm", "--method", "slerp", "--method", "ties"]) == 2
    err = capsys.readouterr().err
    assert "geomcheck: error: --method: ties cannot interpolate two models" in err
    assert "methods that can: " + ", ".join(ALL) in err
    with pytest.raises(SystemExit):
        main(["sweep", "--model", "minilm", "--t", "0,1.5"])
    assert "every t must lie in [0, 1]" in capsys.readouterr().err


def test_the_cli_list_matches_the_library_and_the_suite_picks_its_methods():
    from geomcheck.adapt.variants import INTERPOLATING, sweep_methods
    from geomcheck.cli.sweep import INTERPOLATING_NAMES

    assert INTERPOLATING_NAMES == tuple(INTERPOLATING)
    assert sweep_methods(("soup", "slerp")) == ["slerp", "linear"]  # the suite's default merges
    assert sweep_methods(("ties", "slerp_ckpt")) == ["slerp", "linear"]
    assert sweep_methods(("linear", "nuslerp", "soup")) == ["nuslerp", "linear"]


def test_sweep_rows_need_both_ends():
    from geomcheck.checks.merging import sweep_rows
    from geomcheck.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="ends must be 'base' and 'lora'"):
        sweep_rows({}, {"base": {}})


def _suite(pytester, *args):
    return pytester.runpytest_subprocess(str(ROOT / "suites" / "test_merging.py"), "-p", "no:cacheprovider", *args)


def test_the_merge_suite_writes_the_sweep_on_request_and_skips_it_cheaply_otherwise(pytester, tiny, tmp_path):
    root, path = tiny
    lora = root / "ext"
    subprocess.run([sys.executable, "-c",
                    "from geomcheck.adapt import WindowTask, train_lora\n"
                    f"train_lora({str(path)!r}, WindowTask(families=('prime', 'squares', 'odd'), per_family=4), "
                    f"out_dir={str(lora)!r}, max_steps=4, lr=1e-2, checkpoints=2, progress=False, evaluate_sets=False)"],
                   check=True, cwd=ROOT)
    common = ("--model", str(path), "--adapter", str(lora / "adapter"), "--checkpoint", str(lora / "checkpoint-2"),
              "--checkpoint", str(lora / "checkpoint-4"), "--device", "cpu", "-k", "t_sweep", "-rs")
    off = _suite(pytester, *common)
    off.assert_outcomes(skipped=1)
    off.stdout.fnmatch_lines(["*the t-sweep is written with --geomcheck-sweep*"])
    assert "building variants" not in off.stdout.str()  # skipped before anything was built

    report = tmp_path / "report"
    on = _suite(pytester, *common, "--geomcheck-sweep", "--geomcheck-report", str(report))
    on.assert_outcomes(passed=1)
    doc = json.loads((report / "sweep.json").read_text())
    assert {(r["method"], r["t"]) for r in doc["rows"]} == {(m, t) for m in ("linear", "slerp")
                                                            for t in (0.0, 0.25, 0.5, 0.75, 1.0)}
    assert (report / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    bad = _suite(pytester, *common, "--geomcheck-sweep")
    assert bad.ret != 0
    bad.stderr.fnmatch_lines(["*--geomcheck-sweep*give --geomcheck-report DIR too*"])
    assert "--geomcheck-sweep" in _suite(pytester, "--help").stdout.str()


def test_your_recipe_is_swept_over_t_beside_the_built_in_methods(tiny, tmp_path, capsys):
    """--variant NAME=recipe.yml: its parameters.t set to each t; a SLERP recipe of base and lora gives the built-in
    slerp's numbers at every t (the same merge, built from the recipe)."""
    root, path = tiny
    recipe = tmp_path / "mine.yml"
    recipe.write_text("merge_method: slerp\nbase_model: base\nmodels:\n  - model: base\n  - model: lora\n"
                      "parameters:\n  t: 0.9\n")
    assert main(["sweep", "--model", str(path), "--device", "cpu", "--t", "0,0.5,1", "--method", "slerp",
                 "--variant", f"mine={recipe}", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {(r["method"], r["t"]): r for r in doc["rows"]}
    assert {m for m, _ in rows} == {"slerp", "mine"} and doc["settings"]["variants"] == {"mine": str(recipe)}
    for t in (0.0, 0.5, 1.0):
        for key in ("task_gain", "cka_to_base", "cka_to_lora", "adapter_position"):
            assert abs(rows[("mine", t)][key] - rows[("slerp", t)][key]) <= 1e-6, (t, key)
    gradient = tmp_path / "gradient.yml"
    gradient.write_text(recipe.read_text().replace("t: 0.9", "t: [0, 1]"))
    assert main(["sweep", "--model", str(path), "--variant", f"g={gradient}"]) == 2
    assert "has t = [0.0, 1.0]" in capsys.readouterr().err
    assert main(["sweep", "--model", str(path), "--variant", f"d={path}"]) == 2
    assert "one point with no t to vary" in capsys.readouterr().err
