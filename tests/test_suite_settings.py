"""geomcheck.suite: validated settings, and LoRA runs / merged variants built once and read back."""

from __future__ import annotations

import time

import pytest

from geomcheck.errors import InvalidInputError, UnknownFamilyError
from geomcheck.suite import SuiteSettings, cached_lora_run, cached_variants, model_id


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


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    return load_model(str(tiny_model("bert", tmp_path_factory.mktemp("m") / "bert")), device="cpu")


def test_lora_run_and_variants_are_built_once_then_read_back(tiny_base, tmp_path):
    from geomcheck.adapt import WindowTask

    kw = dict(train_data=WindowTask(families=("prime", "odd"), per_family=2), max_steps=4, checkpoints=2,
              evaluate_sets=False)
    first = cached_lora_run(tiny_base, root=tmp_path / "lora", **kw)
    record = tmp_path / "lora" / "lora_run.json"
    stamp = record.stat().st_mtime_ns
    t0 = time.perf_counter()
    again = cached_lora_run(tiny_base, root=tmp_path / "lora", **kw)
    assert time.perf_counter() - t0 < 1.0 and record.stat().st_mtime_ns == stamp  # read, not trained
    assert again.adapter_dir == first.adapter_dir and again.loss_history == first.loss_history
    assert again.checkpoint_dirs == first.checkpoint_dirs and len(again.checkpoint_dirs) == 2

    v1, info = cached_variants(tiny_base, again, ["soup", "slerp"], device="cpu", root=tmp_path / "v")
    assert set(v1) == {"base", "lora", "soup", "slerp"} and v1["soup"].name == f"{tiny_base.name}+soup"
    assert 0 <= info["slerp"]["share_tensors_slerp_is_lerp"] <= 1
    stamp = (tmp_path / "v" / "soup" / "model.safetensors").stat().st_mtime_ns
    v2, info2 = cached_variants(tiny_base, again, ["soup", "slerp"], device="cpu", root=tmp_path / "v")
    assert (tmp_path / "v" / "soup" / "model.safetensors").stat().st_mtime_ns == stamp and info2 == info
    assert v2["soup"].fingerprint == v1["soup"].fingerprint
