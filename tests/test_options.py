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
    assert SuiteSettings().is_paper_protocol and len(SuiteSettings().dataset()) == 24
    s = SuiteSettings(families=("prime", "odd"), per_family=3, seq_length=5).validate()
    assert not s.is_paper_protocol and s.dataset().texts[:2] == ("2, 3, 5, 7, 11", "13, 17, 19, 23, 29")


@pytest.mark.parametrize(("kw", "error", "match"), [
    ({"families": ("prime", "oddd")}, UnknownFamilyError, "oddd"),
    ({"models": ()}, InvalidInputError, "at least one model"),
    ({"merges": ("soup", "slurp")}, InvalidInputError, "slurp"),
    ({"report_dir": __file__}, InvalidInputError, "not a directory"),
])
def test_bad_settings_raise(kw, error, match):
    with pytest.raises(error, match=match):
        SuiteSettings(**kw).validate()


def test_settings_name_the_suite_dataset():
    assert SuiteSettings().suite_dataset_name == "paper"
    assert SuiteSettings(per_family=3).suite_dataset_name == "suite"


def test_model_ids_are_unique_within_a_run():
    from geomcheck.models import model_ids

    assert model_ids(["/a/ckpt", "/b/ckpt/", "minilm"]) == ["a-ckpt", "b-ckpt", "minilm"]
    assert model_ids(["/x/a/ckpt", "/y/a/ckpt"]) == ["x-a-ckpt", "y-a-ckpt"]
    assert model_ids(["minilm", "Qwen/Qwen3-Embedding-0.6B"]) == ["minilm", "Qwen3-Embedding-0.6B"]
