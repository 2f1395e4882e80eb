"""geomcheck.adapt.cached: LoRA runs and merged variants built once and read back."""

from __future__ import annotations

import time

import pytest

from geomcheck.adapt.cached import cached_lora_run, cached_variants


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

    v1 = cached_variants(tiny_base, again, ["soup", "slerp"], device="cpu", root=tmp_path / "v")
    info = v1.info
    assert v1.n_checkpoints == 2
    assert set(v1) == {"base", "lora", "soup", "slerp"} and v1["soup"].name == f"{tiny_base.name}+soup"
    assert 0 <= info["slerp"]["share_tensors_slerp_is_lerp"] <= 1
    stamp = (tmp_path / "v" / "soup" / "model.safetensors").stat().st_mtime_ns
    v2 = cached_variants(tiny_base, again, ["soup", "slerp"], device="cpu", root=tmp_path / "v")
    assert (tmp_path / "v" / "soup" / "model.safetensors").stat().st_mtime_ns == stamp and v2.info == info
    assert v2["soup"].fingerprint == v1["soup"].fingerprint
