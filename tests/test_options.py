"""The plugin's settings (pytest_geomcheck.options) and model ids, without pytest running them."""

from __future__ import annotations

import pytest

from geomcheck.errors import InvalidInputError, UnknownFamilyError
from geomcheck.models import model_id
from pytest_geomcheck.options import SuiteSettings


def test_model_ids_are_aliases_or_directory_names(tmp_path):
    assert model_id("minilm") == "minilm"
    assert model_id("Qwen/Qwen3-Embedding-0.6B") == "Qwen3-Embedding-0.6B"  # also a file name: baselines/<id>.json
    (tmp_path / "ckpt-3").mkdir()
    assert model_id(f"{tmp_path}/ckpt-3/") == "ckpt-3"


def test_settings_make_the_suite_dataset_and_say_whether_it_is_the_papers():
    assert SuiteSettings().is_paper_protocol and len(SuiteSettings().suite_dataset()) == 24
    s = SuiteSettings(families=("prime", "odd"), per_family=3, seq_length=5).validate()
    assert not s.is_paper_protocol and s.suite_dataset().texts[:2] == ("2, 3, 5, 7, 11", "13, 17, 19, 23, 29")


@pytest.mark.parametrize(("kw", "error", "match"), [
    ({"families": ("prime", "oddd")}, UnknownFamilyError, "oddd"),
    ({"models": ()}, InvalidInputError, "at least one model"),
    ({"merges": ("soup", "slurp")}, InvalidInputError, "slurp"),
    ({"merges": ("soup", f"slerp={__file__}")}, InvalidInputError, "'slerp' is a built-in variant name"),
    ({"merges": ("mine=/nonexistent/merged",)}, InvalidInputError, "--geomcheck-merge mine=/nonexistent/merged: nothing at"),
    ({"report_dir": __file__}, InvalidInputError, "not a directory"),
    ({"dataset": "/nonexistent/t.jsonl"}, InvalidInputError, "--geomcheck-dataset: no file at"),
    ({"dataset": __file__, "families": ("prime", "odd")}, InvalidInputError, "--geomcheck-families do not apply"),
    ({"label_column": "intent"}, InvalidInputError, "need --geomcheck-dataset"),
])
def test_bad_settings_raise(kw, error, match):
    with pytest.raises(error, match=match):
        SuiteSettings(**kw).validate()


def test_settings_name_the_suite_dataset():
    assert SuiteSettings().suite_dataset_name == "paper"
    assert SuiteSettings(per_family=3).suite_dataset_name == "suite"
    assert SuiteSettings(dataset="/d/my topics.jsonl").suite_dataset_name == "my-topics"
    assert SuiteSettings(dataset="/d/paper.csv").suite_dataset_name == "paper-data"  # never the paper's own name
    assert SuiteSettings().suite_datasets == ("paper", "heldout")
    assert SuiteSettings(dataset="/d/topics.csv").suite_datasets == ("topics",)


def test_your_dataset_is_the_suite_dataset_and_is_read_again_when_the_file_changes(tmp_path):
    import os

    f = tmp_path / "topics.jsonl"
    f.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "x"}\n{"text": "c", "label": "y"}\n'
                 '{"text": "d", "label": "y"}\n')
    s = SuiteSettings(dataset=str(f)).validate()
    first = s.suite_dataset()
    assert first.texts == ("a", "b", "c", "d") and s.suite_dataset() is first and not s.is_paper_protocol
    f.write_text(f.read_text().replace('"d"', '"e"'))
    os.utime(f, ns=(1, 1))  # a new version, even within the file system's time resolution
    assert s.suite_dataset().texts[-1] == "e"


def test_model_ids_are_unique_within_a_run():
    from geomcheck.models import model_ids

    assert model_ids(["/a/ckpt", "/b/ckpt/", "minilm"]) == ["a-ckpt", "b-ckpt", "minilm"]
    assert model_ids(["/x/a/ckpt", "/y/a/ckpt"]) == ["x-a-ckpt", "y-a-ckpt"]
    assert model_ids(["minilm", "Qwen/Qwen3-Embedding-0.6B"]) == ["minilm", "Qwen3-Embedding-0.6B"]


def test_your_own_variants_sit_beside_the_methods(tmp_path):
    (tmp_path / "merged").mkdir()
    (tmp_path / "merged" / "modules.json").write_text("[]")
    s = SuiteSettings(merges=("soup", f"mine={tmp_path / 'merged'}", "slerp")).validate()
    assert s.variant_names == ("soup", "mine", "slerp")  # test ids and report rows, in the order given
    assert s.builtin_merges == ("soup", "slerp")
    assert [(v.name, v.path, v.recipe) for v in s.user_variants] == [("mine", tmp_path / "merged", False)]
