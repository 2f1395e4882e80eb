"""Embedder: order, fingerprint, cache, NaN detection, on tiny real models."""

from __future__ import annotations

import numpy as np
import pytest

from geomcheck.errors import EmbeddingError, InvalidInputError
from geomcheck.models import load_model
from geomcheck.models.embedder import EmbeddedDataset, Embedder
from geomcheck.sequences import paper_dataset
from geomcheck.testing import tiny_model

DS = paper_dataset(per_family=2, length=10)


pytestmark = pytest.mark.usefixtures("private_geomcheck_cache")  # each test its own cache


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {k: tiny_model(k, root / k) for k in ("bert", "qwen3")} | {"bert1": tiny_model("bert", root / "b1", seed=1)}


@pytest.mark.parametrize("kind", ["bert", "qwen3"])
def test_tiny_models_give_finite_distinct_embeddings_in_input_order(tiny, kind):
    emb = load_model(str(tiny[kind]), device="cpu", cache=False)
    X = emb.encode(DS.texts)
    assert X.dtype == np.float32 and X.shape == (len(DS), emb.dim) and np.isfinite(X).all()
    assert len({row.tobytes() for row in X}) == len(DS)
    rev = emb.encode(DS.texts[::-1])
    assert np.allclose(rev[::-1], X, atol=1e-5)  # rows follow the input order, not a sorted one
    one = emb.encode([DS.texts[7]])
    assert np.allclose(one[0], X[7], atol=1e-5)  # batching (padding) does not change a text's vector


def test_empty_and_bad_text_lists(tiny):
    emb = load_model(str(tiny["bert"]), device="cpu", cache=False)
    assert emb.encode([]).shape == (0, emb.dim)
    with pytest.raises(InvalidInputError, match="one string"):
        emb.encode("1, 2, 3")
    with pytest.raises(InvalidInputError, match="item 1 is int"):
        emb.encode(["1, 2", 3])


def test_fingerprint_is_stable_and_tracks_what_changes_the_output(tiny):
    a = load_model(str(tiny["bert"]), device="cpu")
    assert a.fingerprint == load_model(str(tiny["bert"]), device="cpu").fingerprint
    others = [
        load_model(str(tiny["bert1"]), device="cpu"),  # other weights
        load_model(str(tiny["bert"]), device="cpu", prompt="passage: "),
        load_model(str(tiny["bert"]), device="cpu", pooling="cls"),
        load_model(str(tiny["bert"]), device="cpu", max_seq_length=16),
        load_model(str(tiny["bert"]), device="cpu", dtype="bfloat16"),
    ]
    prints = {a.fingerprint} | {o.fingerprint for o in others}
    assert len(prints) == 1 + len(others)
    # an in-memory model hashes its tensors: equal weights, equal fingerprint; changed, different
    mem = Embedder(a.model, name="mem")
    assert mem.weights_digest().startswith("tensors:") and mem.fingerprint != a.fingerprint
    assert Embedder(load_model(str(tiny["bert"]), device="cpu").model, name="x").fingerprint == mem.fingerprint


def test_prompt_is_applied(tiny):
    plain = load_model(str(tiny["bert"]), device="cpu", cache=False)
    prompted = load_model(str(tiny["bert"]), device="cpu", cache=False, prompt="7, 7, ")
    assert np.allclose(prompted.encode(["1, 2"]), plain.encode(["7, 7, 1, 2"]), atol=1e-6)


def test_no_prompt_unless_the_models_own_config_names_a_default(tiny, tmp_path):
    """The paper's protocol: SentenceTransformer(...).encode(texts) puts a prompt before the texts only when
    config_sentence_transformers.json names a default_prompt_name. geomcheck does the same, and prompt=""
    turns even that off."""
    import json
    import shutil

    from sentence_transformers import SentenceTransformer

    texts = ["1, 2, 3", "2, 4, 6"]
    for default in (None, "document"):
        d = tmp_path / f"prompted-{default}"
        shutil.copytree(tiny["bert"], d)
        cfg = json.loads((d / "config_sentence_transformers.json").read_text())
        cfg.update(prompts={"query": "5, 5, ", "document": "7, 7, "}, default_prompt_name=default)
        (d / "config_sentence_transformers.json").write_text(json.dumps(cfg))
        emb = load_model(str(d), device="cpu", cache=False)
        assert emb.prompt == ("7, 7, " if default else "")
        ref = SentenceTransformer(str(d), device="cpu").encode(texts, convert_to_numpy=True)
        assert np.allclose(emb.encode(texts), ref, atol=1e-6)
        bare = load_model(str(d), device="cpu", cache=False, prompt="")
        assert bare.prompt == ""
        assert np.allclose(bare.encode([emb.prompt + t for t in texts]), ref, atol=1e-6)
        assert np.allclose(bare.encode(texts), ref, atol=1e-6) == (default is None)


def test_cache_hit_returns_identical_arrays_without_running_the_model(tiny, monkeypatch):
    emb = load_model(str(tiny["qwen3"]), device="cpu")
    X = emb.encode(DS.texts)

    def boom(texts, progress=None):
        raise AssertionError("the model ran although the cache holds these texts")

    monkeypatch.setattr(emb, "_encode_uncached", boom)
    Y = emb.encode(DS.texts)
    assert np.array_equal(X, Y)
    fresh = load_model(str(tiny["qwen3"]), device="cpu")  # another process would see the same entry
    monkeypatch.setattr(fresh, "_encode_uncached", boom)
    assert np.array_equal(fresh.encode(DS.texts), X)
    with pytest.raises(AssertionError, match="the model ran"):
        emb.encode(DS.texts[:3])  # other texts: a miss


def test_nan_embeddings_name_the_model_and_the_first_bad_text(tiny):
    import torch

    emb = load_model(str(tiny["bert"]), device="cpu", cache=False)
    with torch.no_grad():
        for name, p in emb.model.named_parameters():
            if "encoder.layer.1.output.dense.weight" in name:
                p.fill_(float("nan"))
    with pytest.raises(EmbeddingError, match=r"returned NaN/inf for 3 of 3 texts, first text 0: '1, 2"):
        emb.encode(["1, 2, 3", "4", "5"])


def test_embed_dataset(tiny):
    emb = load_model(str(tiny["bert"]), device="cpu")
    e = emb.embed(DS)
    assert isinstance(e, EmbeddedDataset)
    assert e.X.shape == (len(DS), emb.dim) and np.array_equal(e.labels, DS.labels)
    assert e.label_names == DS.label_names and e.texts == DS.texts
    assert e.model == str(tiny["bert"]) and e.fingerprint == emb.fingerprint


def test_a_lone_surrogate_is_an_input_error_naming_the_text(tmp_path):
    from geomcheck.cache import texts_digest
    from geomcheck.errors import InvalidInputError
    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    texts = ["1, 2, 3", "1, 2, \ud800 3"]
    with pytest.raises(InvalidInputError, match=r"text 1 is not valid Unicode \(surrogates not allowed at character 6\)"):
        texts_digest(texts)
    model = load_model(str(tiny_model("bert", tmp_path / "m")), device="cpu")
    for cache in (True, False):
        with pytest.raises(InvalidInputError, match=r"text 1 is not valid Unicode: surrogates not allowed at "
                                                    r"character 6 \('1, 2, \\ud800 3'\)"):
            model.encode(texts, cache=cache)


def test_texts_cut_at_max_seq_length_are_counted_and_announced(tmp_path):
    from geomcheck.models import load_model
    from geomcheck.sequences import make_dataset
    from geomcheck.testing import tiny_model

    model = load_model(str(tiny_model("bert", tmp_path / "m")), device="cpu", max_seq_length=16)
    ds = make_dataset(["squares", "cubes"], 2, 40)  # 40 terms: far more than 16 tokens
    short = make_dataset(["squares", "cubes"], 2, 2, start=2)  # no text in both families
    lengths = [len(ids) for ids in model.model.tokenizer(list(ds.texts))["input_ids"]]  # the reference count
    with pytest.warns(UserWarning, match=rf"4 of 4 texts are longer than .* max_seq_length of 16 tokens "
                                         rf"\(the longest has {max(lengths):,}\)"):
        e = model.embed(ds)
    assert (e.n_truncated, e.longest_tokens) == (4, max(lengths))
    assert e.n_tokens == 4 * 16  # what the model read: each text cut at 16 tokens
    short_lengths = [len(ids) for ids in model.model.tokenizer(list(short.texts))["input_ids"]]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.embed(short).n_truncated == 0
        assert model.embed(short).n_tokens == sum(short_lengths) < 4 * 16
        assert model.embed(ds).n_truncated == 4  # counted again, announced once per model and texts


@pytest.mark.parametrize("kind", ["bert", "qwen3"])
def test_a_token_budget_bounds_every_batch_of_long_texts(tiny, kind):
    """Memory is bounded by tokens, not texts: each forward pass the model runs holds at most
    ``token_budget`` padded tokens (a text longer than that alone), and the vectors are those of one
    text at a time, in input order."""
    from geomcheck.sequences import make_dataset

    emb = load_model(str(tiny[kind]), device="cpu", cache=False, batch_size=64)
    emb.token_budget = 300
    long = make_dataset(["squares", "cubes", "factorial"], 2, 60).texts  # far past the 128-token limit
    short = make_dataset(["odd", "even"], 10, 3).texts
    texts = [t for pair in zip(short, long + short) for t in pair] + list(short)  # long and short interleaved
    seen = []
    hook = emb.model[0].register_forward_pre_hook(  # the transformer module gets each batch's features
        lambda mod, args: seen.append(tuple(args[0]["input_ids"].shape)))
    try:
        X = emb.encode(texts)
    finally:
        hook.remove()
    lengths = emb.token_lengths(texts)
    assert lengths.max() == emb.max_seq_length == 128 and lengths.min() < 20  # some cut, some short
    assert seen and all(n * L <= 300 or n == 1 for n, L in seen), seen
    assert sum(n for n, _ in seen) == len(texts) and len(seen) > len(texts) // 64 + 1  # more batches than 64 a batch
    assert [s for s in seen] == [(n, L) for n, L in emb.last_batches]
    alone = np.stack([emb.encode([t])[0] for t in texts])
    assert np.allclose(X, alone, atol=1e-5)
    emb.token_budget = None  # the device's default: these few texts fit in one batch on a CPU
    emb.encode(texts)
    assert len(emb.last_batches) == 1


def test_a_bad_token_budget_is_refused(tiny):
    with pytest.raises(InvalidInputError, match="token_budget must be a positive integer"):
        Embedder(load_model(str(tiny["bert"]), device="cpu").model, name="m", token_budget=0)


def test_weights_replaced_in_place_with_same_size_and_mtime_give_the_new_embeddings(tmp_path):
    """The issue's case: other weights of the same size copied over model.safetensors, mtime restored."""
    import os
    import shutil
    import time

    from geomcheck import cache

    a, b = tiny_model("bert", tmp_path / "a"), tiny_model("bert", tmp_path / "b", seed=1)
    w = a / "model.safetensors"
    assert w.stat().st_size == (b / "model.safetensors").stat().st_size
    time.sleep(cache._SETTLED_S + 0.1)  # the weights' digest gets memoised, as for any model on disk
    old = load_model(str(a), device="cpu")
    X = old.encode(DS.texts)
    st = w.stat()
    shutil.copyfile(b / "model.safetensors", w)
    os.utime(w, ns=(st.st_atime_ns, st.st_mtime_ns))
    new = load_model(str(a), device="cpu")
    assert new.fingerprint != old.fingerprint
    Y = new.encode(DS.texts)
    assert np.array_equal(Y, load_model(str(b), device="cpu", cache=False).encode(DS.texts))
    assert not np.allclose(X, Y, atol=1e-3)


def _swap_vocab(d):
    import json

    f = d / "tokenizer.json"
    tok = json.loads(f.read_text())
    vocab = tok["model"]["vocab"]
    vocab["1"], vocab["2"] = vocab["2"], vocab["1"]
    f.write_text(json.dumps(tok))


def _edit_json(name, edit):
    def run(d):
        import json

        f = d / name
        data = json.loads(f.read_text()) if f.is_file() else {}
        edit(data)
        f.write_text(json.dumps(data))
    return run


@pytest.mark.parametrize("edit", [
    _swap_vocab,
    _edit_json("tokenizer_config.json", lambda c: c.__setitem__("do_lower_case", not c.get("do_lower_case", True))),
    _edit_json("special_tokens_map.json", lambda c: c.__setitem__("unk_token", "[UNK]")),
    _edit_json("config_sentence_transformers.json", lambda c: c.__setitem__("prompts", {"document": "7, 7, "})),
    _edit_json("modules.json", lambda m: m.append({"idx": len(m), "name": str(len(m)), "path": f"{len(m)}_Normalize",
                                                   "type": "sentence_transformers.sentence_transformer.modules.Normalize"})),
], ids=["tokenizer.json vocabulary swap", "tokenizer_config.json", "special_tokens_map.json", "ST prompts", "modules.json"])
def test_every_file_that_changes_the_vectors_changes_the_fingerprint(tmp_path, edit):
    d = tiny_model("bert", tmp_path / "m")
    before = load_model(str(d), device="cpu")
    X = before.encode(DS.texts)
    edit(d)
    after = load_model(str(d), device="cpu")
    assert after.fingerprint != before.fingerprint
    if edit is _swap_vocab:  # the case: the cache served the old tokenizer's vectors
        Y = after.encode(DS.texts)
        assert np.array_equal(Y, after.encode(DS.texts, cache=False)) and not np.allclose(X, Y, atol=1e-3)


def test_files_that_cannot_change_the_vectors_leave_the_fingerprint(tmp_path):
    d = tiny_model("bert", tmp_path / "m")
    before = load_model(str(d), device="cpu").fingerprint
    (d / "README.md").write_text("# my model")
    (d / "onnx").mkdir()
    (d / "onnx" / "model.onnx").write_bytes(b"onnx")
    assert load_model(str(d), device="cpu").fingerprint == before
