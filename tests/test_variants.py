"""build_variants on a tiny model: every variant a loadable sentence-transformers directory."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geomcheck.errors import InvalidInputError


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from geomcheck.adapt import WindowTask, train_lora
    from geomcheck.adapt.variants import build_variants
    from geomcheck.testing import tiny_model

    root = tmp_path_factory.mktemp("variants")
    base = tiny_model("qwen3", root / "qwen3")
    task = WindowTask(families=("prime", "squares", "odd"), per_family=4)
    run = train_lora(str(base), task, out_dir=root / "run", max_steps=6, lr=2e-2, checkpoints=3, progress=False,
                     evaluate_sets=False)
    variants = build_variants(str(base), run, methods=("soup", "slerp", "slerp_ckpt", "ties"), out_dir=root / "v",
                              device="cpu", merge_params={"ties": {"density": 0.5}})
    return root, base, run, variants


def test_every_variant_is_a_plain_sentence_transformers_dir_with_its_own_fingerprint(built):
    from sentence_transformers import SentenceTransformer

    root, base, run, variants = built
    assert set(variants) == {"base", "lora", "soup", "slerp", "slerp_ckpt", "ties"}
    texts = ["2, 3, 5, 7", "1, 4, 9, 16, 25", "1, 3, 5"]
    X = {}
    for name, emb in variants.items():
        plain = SentenceTransformer(str(root / "v" / name), device="cpu").encode(texts)
        X[name] = emb.encode(texts)
        assert np.isfinite(X[name]).all() and np.abs(X[name] - plain).max() < 1e-5, name
    assert len({e.fingerprint for e in variants.values()}) == len(variants)
    assert not np.allclose(X["lora"], X["base"]) and not np.allclose(X["soup"], X["lora"])
    assert (root / "v" / "soup" / "1_Pooling" / "config.json").is_file()  # pipeline kept, not just weights


def test_base_variant_equals_the_base_model_and_lora_equals_load_adapter(built):
    from geomcheck.adapt import load_adapter
    from geomcheck.models import load_model

    root, base, run, variants = built
    texts = ["10, 20, 30", "7, 11, 13"]
    assert np.allclose(variants["base"].encode(texts), load_model(str(base), device="cpu").encode(texts), atol=1e-6)
    assert np.allclose(variants["lora"].encode(texts), load_adapter(str(base), run.adapter_dir).encode(texts), atol=1e-5)


def test_slerp_diagnostics_recorded(built):
    root, *_ = built
    info = json.loads((root / "v" / "variants.json").read_text())
    assert 0 <= info["slerp"]["share_params_slerp_is_lerp"] <= 1 and info["t"] == 0.5


def test_bad_arguments(built):
    from geomcheck.adapt.variants import build_variants

    root, base, run, _ = built
    with pytest.raises(InvalidInputError, match="unknown variant method"):
        build_variants(str(base), run, methods=("soupp",), out_dir=root / "x")
    with pytest.raises(InvalidInputError, match="t must lie"):
        build_variants(str(base), run, t=1.5, out_dir=root / "x")


def test_a_save_killed_half_way_leaves_no_directory_that_looks_complete(tmp_path):
    """Variants count as built once modules.json exists: a save must appear whole or not at all."""
    from types import SimpleNamespace

    from geomcheck.adapt.variants import _save_whole

    def save(path, create_model_card=False):
        (tmp_path / "seen").write_text(path)
        (__import__("pathlib").Path(path) / "modules.json").write_text("[]")
        raise KeyboardInterrupt  # the process is stopped after modules.json, before the weights

    with pytest.raises(KeyboardInterrupt):
        _save_whole(SimpleNamespace(model=SimpleNamespace(save=save)), tmp_path / "lora")
    assert not (tmp_path / "lora").exists() and list(tmp_path.glob(".lora.tmp-*")) == []
    assert (tmp_path / "seen").read_text() != str(tmp_path / "lora")  # it wrote elsewhere first


def _poison(src, out, tensor_filter):
    """A copy of ``src`` with the first tensor whose name contains ``tensor_filter`` set to NaN in one entry."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(src, out)
    f = out / ("adapter_model.safetensors" if (out / "adapter_config.json").is_file() else "model.safetensors")
    sd = dict(load_file(str(f)))
    name = next(k for k in sd if tensor_filter in k)
    sd[name] = sd[name].clone()
    sd[name].view(-1)[0] = float("nan")
    save_file(sd, str(f), metadata={"format": "pt"})
    return out, f, name


def test_a_nan_in_a_lora_adapter_or_a_checkpoint_is_refused_naming_the_users_file(built, tmp_path):
    """Before: the adapter was merged into a copy under the variants folder and the NaN went into every merge."""
    from types import SimpleNamespace

    from geomcheck.adapt.variants import build_variants
    from geomcheck.errors import NonFiniteWeightsError

    root, base, run, _ = built
    adapter, f, name = _poison(run.adapter_dir, tmp_path / "adapter", "lora_B")
    with pytest.raises(NonFiniteWeightsError) as info:
        build_variants(str(base), SimpleNamespace(adapter_dir=str(adapter), checkpoint_dirs=[]), methods=("slerp",),
                       out_dir=tmp_path / "v", load=False)
    assert str(f) in str(info.value) and repr(name) in str(info.value) and "1 non-finite entry" in str(info.value)
    assert not (tmp_path / "v" / "lora").exists() and not (tmp_path / "v" / "slerp").exists()
    ckpt, f, name = _poison(base, tmp_path / "ckpt", "embed_tokens")  # a full fine-tuned checkpoint
    with pytest.raises(NonFiniteWeightsError, match="the model '.*ckpt'.*embed_tokens"):
        build_variants(str(base), SimpleNamespace(adapter_dir=str(base), checkpoint_dirs=[str(ckpt), str(base)]),
                       methods=("soup",), out_dir=tmp_path / "v", load=False)
    assert not (tmp_path / "v" / "soup").exists() and [p.name for p in (tmp_path / "v").glob(".*")] == []


def test_a_checkpoint_of_another_width_is_named_by_its_path_not_the_variants_copy(built, tmp_path):
    """Before: "tensor 'embed_tokens.weight' has shape (257, 96) in model 0 (<out>/v/ckpt-0) but … (<out>/v/ckpt-1)"."""
    from types import SimpleNamespace

    from geomcheck.adapt.variants import build_variants
    from geomcheck.errors import IncompatibleModelsError
    from test_merge_faults import wide_model  # tests/ is on sys.path (rootdir-less "prepend" import mode)

    root, base, run, _ = built
    wide = wide_model(base, tmp_path / "wide")
    with pytest.raises(IncompatibleModelsError) as info:
        build_variants(str(base), SimpleNamespace(adapter_dir=str(base), checkpoint_dirs=[str(wide), str(base)]),
                       methods=("ties",), out_dir=tmp_path / "v", load=False)
    msg = str(info.value)
    assert f"checkpoint 0 ({str(wide)!r})" in msg and "'embed_tokens.weight'" in msg
    assert ", 96)" in msg and ", 64)" in msg and str(tmp_path / "v") not in msg
    assert not (tmp_path / "v" / "ckpt-0").exists()  # the unusable copy is not kept for a later build


def test_a_lora_adapter_trained_on_another_width_is_named_with_both_shapes(built, tmp_path):
    """Before: a raw RuntimeError from torch's load_state_dict, listing every lora_A/lora_B of the adapter."""
    from geomcheck.adapt import WindowTask, train_lora
    from geomcheck.adapt.variants import build_variants
    from geomcheck.errors import IncompatibleModelsError, ModelLoadError
    from test_merge_faults import wide_model  # tests/ is on sys.path (rootdir-less "prepend" import mode)

    root, base, run, _ = built
    wide = wide_model(base, tmp_path / "wide")
    wide_run = train_lora(str(wide), WindowTask(families=("prime", "odd"), per_family=2), out_dir=tmp_path / "run",
                          max_steps=1, checkpoints=0, progress=False, evaluate_sets=False)
    # refused by the adapter's recorded base (adapt.adapter_base) before peft applies it: both bases, both shapes
    with pytest.raises((IncompatibleModelsError, ModelLoadError)) as info:
        build_variants(str(base), wide_run, methods=("slerp",), out_dir=tmp_path / "v", load=False)
    msg = str(info.value)
    assert str(wide_run.adapter_dir) in msg and str(wide) in msg and ", 96)" in msg and ", 64)" in msg
    assert not (tmp_path / "v" / "lora").exists() and [p.name for p in (tmp_path / "v").glob(".*")] == []
