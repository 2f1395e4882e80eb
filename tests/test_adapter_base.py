"""A peft adapter is applied only to the base it was trained on; peft's failures say what to do."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from geomcheck.adapt import load_adapter
from geomcheck.errors import ModelLoadError
from geomcheck.testing import tiny_model


pytestmark = pytest.mark.usefixtures("private_geomcheck_cache")  # each test its own cache


def _adapter(base_dir, out, targets):
    """A real peft LoRA adapter of the transformer in ``base_dir`` with nonzero B (so it changes the model)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(base_dir))
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    peft_model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    m = {"bert": tiny_model("bert", root / "bert"), "bert1": tiny_model("bert", root / "bert1", seed=1),
         "qwen3": tiny_model("qwen3", root / "qwen3")}
    m["on_bert"] = _adapter(m["bert"], root / "on-bert", ["query", "value"])
    m["on_bert1"] = _adapter(m["bert1"], root / "on-bert1", ["query", "value"])
    m["on_qwen3"] = _adapter(m["qwen3"], root / "on-qwen3", ["q_proj", "v_proj"])
    return m


def test_an_adapter_of_another_base_of_the_same_architecture_is_refused_naming_both(models):
    """Before: merged into the wrong base without a word."""
    with pytest.raises(ModelLoadError) as info:
        load_adapter(str(models["bert"]), models["on_bert1"])
    msg = str(info.value)
    assert f"names {str(models['bert1'])!r}" in msg and f"applied to {str(models['bert'])!r}" in msg
    assert "holds other values" in msg


def test_an_adapter_of_another_architecture_is_one_clear_error(models):
    """Before: peft's NoMatchingPeftModuleError with hundreds of lines."""
    import json

    other = shutil.copytree(models["on_qwen3"], models["on_qwen3"].parent / "qwen-adapter-renamed")
    cfg = json.loads((other / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(models["bert"])  # the names agree: peft must still fail clearly
    (other / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"targets modules .*q_proj.* which .* \(BertModel\) does not have "
                                             r"\(its linear layers are named .*query"):
        load_adapter(str(models["bert"]), other)
    with pytest.raises(ModelLoadError, match="trained on another base"):  # as recorded: the base differs first
        load_adapter(str(models["bert"]), models["on_qwen3"])


def test_the_adapters_own_base_and_a_copy_of_it_both_work_alike(models, tmp_path):
    texts = ["1, 2, 3", "2, 4, 8, 16"]
    own = load_adapter(str(models["bert"]), models["on_bert"]).encode(texts)
    copy = shutil.copytree(models["bert"], tmp_path / "copied-base")  # recorded path differs, weights equal
    assert np.array_equal(load_adapter(str(copy), models["on_bert"]).encode(texts), own)
    from geomcheck.models import load_model

    assert not np.allclose(own, load_model(str(models["bert"]), device="cpu", cache=False).encode(texts), atol=1e-4)
