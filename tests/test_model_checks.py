"""load_model refuses models that only look loaded, and runs a model's own code only when asked to."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from geomcheck.errors import ModelLoadError
from geomcheck.models import load_model
from geomcheck.testing import hf_cache_layout, tiny_model

pytest_plugins = ["pytester"]

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


pytestmark = pytest.mark.usefixtures("private_geomcheck_cache")  # each test its own cache


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"bert": tiny_model("bert", root / "bert"), "qwen3": tiny_model("qwen3", root / "qwen3")}


def test_a_directory_without_its_tokenizer_files_is_refused(tiny, tmp_path):
    """Before: a 5-token tokenizer, every text [UNK], all vectors equal (silhouette 0.0, exit 0)."""
    d = shutil.copytree(tiny["bert"], tmp_path / "no-tokenizer")
    for f in TOKENIZER_FILES:
        (d / f).unlink(missing_ok=True)
    with pytest.raises(ModelLoadError, match=r"its tokenizer knows 5 tokens but the model has 261 embedding rows.*"
                                             r"every text would embed alike.*Copy the model's tokenizer files"):
        load_model(str(d), device="cpu")


def test_a_tokenizer_reading_plain_text_as_unknown_only_is_refused(tiny, tmp_path):
    d = shutil.copytree(tiny["bert"], tmp_path / "unk-tokenizer")
    tok = json.loads((d / "tokenizer.json").read_text())
    specials = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    vocab = tok["model"]["vocab"]
    keep = {t: i for t, i in vocab.items() if t in specials}  # ids of everything else left unused
    fill = 0
    for t in list(vocab):  # the same number of tokens, none of which occurs in plain text
        if t not in specials:
            keep[f"\u2603{fill}"] = vocab[t]
            fill += 1
    tok["model"]["vocab"] = keep
    (d / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ModelLoadError, match=r"reads the plain text 'The quick brown fox 123' as unknown tokens only"):
        load_model(str(d), device="cpu")


def test_weights_of_another_model_under_a_bert_config_are_refused(tiny, tmp_path):
    """Before: transformers filled BERT's tensors with random numbers and geomcheck measured that."""
    d = shutil.copytree(tiny["bert"], tmp_path / "bert-with-qwen-weights")
    shutil.copy(tiny["qwen3"] / "model.safetensors", d / "model.safetensors")
    with pytest.raises(ModelLoadError) as info:
        load_model(str(d), device="cpu")
    msg = str(info.value)
    assert "the weights do not fit its config (BertModel)" in msg and "random" in msg
    # all 39 of BERT's tensors but the 2 of its pooler, which no pipeline needs
    assert "37 of the model's tensors are missing from the checkpoint (embeddings.LayerNorm.bias," in msg
    assert "… (33 more)" in msg and "24 tensors in the checkpoint are not in the model (embed_tokens.weight," in msg


def test_a_nan_row_in_the_word_embeddings_is_refused_at_load(tiny, tmp_path):
    """Before: one NaN row (a token the paper's texts never use) passed `geomcheck table` with exit 0; texts
    using that token would embed as NaN."""
    from safetensors.torch import load_file, save_file

    d = shutil.copytree(tiny["bert"], tmp_path / "nan-row")
    weights = load_file(str(d / "model.safetensors"))
    name = next(k for k in weights if k.endswith("word_embeddings.weight"))
    weights[name][200] = float("nan")
    save_file(weights, str(d / "model.safetensors"), metadata={"format": "pt"})
    dim = weights[name].shape[1]
    with pytest.raises(ModelLoadError, match=rf"has non-finite weights: tensor '[^']*word_embeddings.weight' "
                                             rf"\(261, {dim}\) holds {dim} NaN or inf value\(s\)"):
        load_model(str(d), device="cpu")
    load_model(str(tiny["bert"]), device="cpu")  # the same model, finite: loads


def test_an_unused_head_is_allowed_and_named(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    d = shutil.copytree(tiny["bert"], tmp_path / "bert-mlm")
    sd = load_file(str(d / "model.safetensors"))
    ref = load_model(str(tiny["bert"]), device="cpu", cache=False)
    del sd["pooler.dense.weight"], sd["pooler.dense.bias"]  # ST pools itself; BERT's pooler is unused
    import torch

    sd["cls.predictions.bias"] = torch.zeros(261)
    save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    emb = load_model(str(d), device="cpu", cache=False)
    assert sorted(emb.info()["dropped_weights"]) == ["cls.predictions.bias (unused)", "pooler.dense.bias (missing)",
                                                     "pooler.dense.weight (missing)"]
    texts = ["1, 2, 3", "4, 9, 16"]
    assert np.allclose(emb.encode(texts), ref.encode(texts), atol=1e-6)
    assert ref.dropped_weights == ()


# --- remote code ----------------------------------------------------------------------------------

MODELING = """
import pathlib

from transformers import BertModel

pathlib.Path({marker!r}).write_text("imported")


class MarkerModel(BertModel):
    def __init__(self, *args, **kwargs):
        pathlib.Path({marker!r}).write_text("ran")  # each load, not only the first import
        super().__init__(*args, **kwargs)
"""


def _with_remote_code(src, dest, marker):
    d = shutil.copytree(src, dest)
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_marker.MarkerModel"}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "modeling_marker.py").write_text(MODELING.format(marker=str(marker)))
    return d


def test_a_copied_cache_named_like_a_registry_model_runs_no_code_unless_asked(tiny, tmp_path, monkeypatch):
    """Before: the path matched gte-large-en-v1.5's registry entry and its trust_remote_code ran modeling_*.py."""
    marker = tmp_path / "marker"
    src = _with_remote_code(tiny["bert"], tmp_path / "src", marker)
    snap = hf_cache_layout(tmp_path / "copied" / "hub", "Alibaba-NLP/gte-large-en-v1.5", src)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "copied" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in (str(snap), "gte-large-en-v1.5"):  # the path, and the registry alias found in that cache
        with pytest.raises(ModelLoadError) as info:
            load_model(name, device="cpu")
        msg = str(info.value)
        assert "modeling_marker.MarkerModel" in msg and f"load_model({name!r}, trust_remote_code=True)" in msg
        assert "--trust-remote-code" in msg and f"--geomcheck-trust-remote-code {name}" in msg
        assert not marker.exists()
    emb = load_model(str(snap), device="cpu", cache=False, trust_remote_code=[str(snap)])
    assert marker.exists() and type(emb.model[0].model).__name__ == "MarkerModel" and emb.trust_remote_code
    marker.unlink()
    with pytest.raises(ModelLoadError):  # consent for another model is not consent for this one
        load_model(str(snap), device="cpu", trust_remote_code=["gte-large-en-v1.5-other"])
    load_model("gte-large-en-v1.5", device="cpu", cache=False, trust_remote_code=True)
    assert marker.exists()


def test_geomcheck_table_runs_a_models_code_only_with_trust_remote_code(tiny, tmp_path, monkeypatch, capsys):
    from geomcheck.cli import main

    marker = tmp_path / "marker"
    snap = hf_cache_layout(tmp_path / "copied" / "hub", "Alibaba-NLP/gte-large-en-v1.5",
                            _with_remote_code(tiny["bert"], tmp_path / "src", marker))
    assert main(["table", "--model", str(snap), "--device", "cpu", "--json"]) == 2
    err = capsys.readouterr().err
    assert "runs Python code shipped with the model" in err and "--trust-remote-code" in err and not marker.exists()
    assert main(["table", "--model", str(snap), "--device", "cpu", "--json", "--trust-remote-code"]) == 0
    assert marker.exists() and json.loads(capsys.readouterr().out)["rows"]


PLUGIN_TEST = """
def test_embed(embed, paper_dataset):
    assert embed(paper_dataset).X.shape == (24, 64)
"""


def test_the_pytest_option_names_the_model_whose_code_may_run(tiny, tmp_path, pytester):
    marker = tmp_path / "marker"
    d = _with_remote_code(tiny["bert"], tmp_path / "remote", marker)
    pytester.makepyfile(PLUGIN_TEST)
    result = pytester.runpytest_subprocess("--geomcheck-model", str(d), "--geomcheck-device", "cpu")
    result.stdout.fnmatch_lines([f"*ModelLoadError*runs Python code shipped with the model*"
                                 f"--geomcheck-trust-remote-code {d} to pytest*"])
    assert result.ret != 0 and not marker.exists()
    result = pytester.runpytest_subprocess("--geomcheck-model", str(d), "--geomcheck-device", "cpu",
                                           "--geomcheck-trust-remote-code", str(d))
    result.assert_outcomes(passed=1)
    assert marker.exists()


def test_an_unavailable_device_is_one_usage_error(pytester):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    pytester.makepyfile(PLUGIN_TEST + "\n\ndef test_two(embedder):\n    pass\n")
    result = pytester.runpytest_subprocess("--geomcheck-device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*error: argument --geomcheck-device: the device='cuda' but CUDA is not available*"
                                 "use 'cpu' or 'auto'*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
