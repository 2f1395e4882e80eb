from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import geomcheck
from geomcheck.cli import main
from geomcheck.sequences import FAMILIES


def test_version_and_help_from_the_console_script():
    script = Path(sys.executable).with_name("geomcheck")  # the venv's console script
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"geomcheck {geomcheck.__version__}"
    out = subprocess.run([sys.executable, "-m", "geomcheck", "--help"], capture_output=True, text=True, check=True)
    assert "usage: geomcheck" in out.stdout and "families" in out.stdout


def test_families_json(capsys):
    assert main(["families", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(FAMILIES)
    assert rows[3]["oeis"] == "A000040" and rows[3]["first_terms"][:4] == [2, 3, 5, 7]


def test_families_table(capsys):
    assert main(["families"]) == 0
    out = capsys.readouterr().out
    assert "A005132" in out and "recaman" in out and "held-out" in out


def test_dataset_prints_the_paper_texts(capsys):
    assert main(["dataset", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 24 and rows[0]["family"] == "consecutive"
    assert rows[0]["text"].startswith("1, 2, 3") and rows[-1]["start"] == 150


def test_dataset_heldout_is_the_suites_bounded_set(capsys):
    from geomcheck.data import heldout_dataset

    assert main(["dataset", "--heldout", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == list(heldout_dataset().texts) and max(len(r["text"]) for r in rows) <= 400
    assert main(["dataset", "--heldout", "--json", "--max-chars", "20000"]) == 0
    assert max(len(json.loads(line)["text"]) for line in capsys.readouterr().out.splitlines()) == 15_983


def test_dataset_custom_families(capsys):
    assert main(["dataset", "--families", "squares,prime", "--per-family", "1", "--length", "3", "--start", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == ["squares\t2\t4, 9, 16", "prime\t2\t5, 7, 11"]


@pytest.mark.parametrize(
    "argv, message",
    [(["dataset", "--families", "primez"], "did you mean 'prime'"),
     (["dataset", "--length", "0"], "length .* >= 1"),
     (["dataset", "--start", "3"], "--start applies to")],
)
def test_user_errors_are_one_line_with_exit_code_2(capsys, argv, message):
    import re

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("geomcheck: error: ") and re.search(message, err) and "Traceback" not in err


def test_models_lists_the_registry_with_availability(capsys, tmp_path, monkeypatch):
    from geomcheck.models import REGISTRY

    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    assert main(["models", "--json"]) == 0
    rows = {r["alias"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == list(REGISTRY) and len(rows) == 16
    assert rows["minilm"]["available"] == "packaged" and rows["minilm"]["dim"] == 384
    assert rows["qwen3-0.6b"]["hf_id"] == "Qwen/Qwen3-Embedding-0.6B"
    assert rows["qwen3-0.6b"]["available"] == "not available"
    # the card's document prompt, applied only on request (load_model(..., prompt=...), geomcheck table --prompt)
    assert rows["embeddinggemma-300m"]["document_prompt"] == "title: none | text: "
    assert main(["models"]) == 0
    assert "qwen3-8b" in capsys.readouterr().out


def test_merge_subcommand_is_wired(capsys):
    with pytest.raises(SystemExit) as info:
        main(["merge", "--help"])
    assert info.value.code == 0
    assert "--method" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly():
    out = subprocess.run(f"{sys.executable} -m geomcheck models --json | head -1", shell=True, capture_output=True,
                         text=True, check=True)
    assert out.stdout == "[\n" and "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr


def test_the_models_table_keeps_every_alias_whole_at_80_columns():
    from geomcheck.models import REGISTRY

    out = subprocess.run([sys.executable, "-m", "geomcheck", "models"], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "COLUMNS": "80"}).stdout
    cells = {c.strip() for line in out.splitlines() for c in line.split("│")}
    assert set(REGISTRY) <= cells, sorted(set(REGISTRY) - cells)


def test_check_hands_everything_after_it_to_pytest(capsys):
    out = subprocess.run([sys.executable, "-m", "geomcheck", "check", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("usage: geomcheck check")
    assert "--model, --geomcheck-model NAME" in out.stdout and "--device, --geomcheck-device" in out.stdout
    assert "geomcheck check" in subprocess.run([sys.executable, "-m", "geomcheck", "--help"], capture_output=True,
                                               text=True).stdout
