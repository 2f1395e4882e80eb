"""geomcheck.testing.tiny_model: real, tiny, deterministic sentence-transformers models built offline."""

from __future__ import annotations

import json
import pathlib
import socket
import time

import numpy as np
import pytest

from geomcheck.errors import InvalidInputError
from geomcheck.testing import HIDDEN_SIZE, KINDS, MAX_SEQ_LENGTH, tiny_model, training_corpus

TEXTS = [
    "2, 3, 5, 7, 11, 13",
    "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
    "4, 9",
    "0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[pathlib.Path, float]]:
    """Each kind built once with seed 0: its path and the seconds the build took."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        for kind in KINDS:
            start = time.perf_counter()
            path = tiny_model(kind, tmp_path_factory.mktemp(kind) / "model", seed=0)
            out[kind] = (path, time.perf_counter() - start)
    return out


@pytest.fixture(scope="module")
def loaded(built):
    """SentenceTransformer for each built kind."""
    from sentence_transformers import SentenceTransformer

    return {kind: SentenceTransformer(str(path), device="cpu") for kind, (path, _) in built.items()}


def _files(path: pathlib.Path) -> dict[str, bytes]:
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


def test_corpus_is_integer_sequences_only():
    corpus = training_corpus()
    assert len(corpus) > 20
    assert set("".join(corpus)) <= set("0123456789, ")
    assert any(line.startswith("2, 3, 5, 7, 11, 13, 17") for line in corpus)  # the primes
    assert any(line.startswith("0, 1, 4, 9, 16, 25") for line in corpus)  # the squares
    assert training_corpus() == corpus


@pytest.mark.parametrize("kind", KINDS)
def test_returns_path_with_sentence_transformers_pipeline(built, kind):
    path, _ = built[kind]
    assert isinstance(path, pathlib.Path) and path.is_dir()
    modules = json.loads((path / "modules.json").read_text())
    assert [(m["idx"], m["path"]) for m in modules] == [(0, ""), (1, "1_Pooling")]
    assert modules[0]["type"].endswith(".Transformer")
    assert modules[1]["type"].endswith(".Pooling")
    assert (path / "sentence_bert_config.json").is_file()
    assert (path / "model.safetensors").is_file()
    assert not list(path.glob("*.bin"))


@pytest.mark.parametrize(("kind", "mode"), [("bert", "mean"), ("qwen3", "lasttoken")])
def test_pooling_config(built, loaded, kind, mode):
    path, _ = built[kind]
    config = json.loads((path / "1_Pooling" / "config.json").read_text())
    assert config["pooling_mode"] == mode
    assert config["embedding_dimension"] == HIDDEN_SIZE
    assert loaded[kind][1].pooling_mode == mode


@pytest.mark.parametrize("kind", KINDS)
def test_encode_gives_finite_distinct_float32_rows(loaded, kind):
    model = loaded[kind]
    assert model.get_embedding_dimension() == HIDDEN_SIZE
    assert model.max_seq_length == MAX_SEQ_LENGTH
    emb = model.encode(TEXTS)
    assert emb.dtype == np.float32
    assert emb.shape == (len(TEXTS), HIDDEN_SIZE)
    assert np.isfinite(emb).all()
    dist = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=-1)
    assert dist[~np.eye(len(TEXTS), dtype=bool)].min() > 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_pooling_matches_hand_computation(built, loaded, kind):
    """ST's embedding equals mean / last-real-token pooling done by hand on the raw HF model."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path, _ = built[kind]
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"]
    if kind == "bert":
        expected = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    else:
        # Left padding: the last real token is the final position of every row.
        assert tokenizer.padding_side == "left"
        assert (mask[:, -1] == 1).all()
        expected = hidden[:, -1]
    np.testing.assert_allclose(loaded[kind].encode(TEXTS), expected.numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_does_not_change_embeddings(loaded, kind):
    model = loaded[kind]
    lengths = {len(model.tokenize([t])["input_ids"][0]) for t in TEXTS}
    assert len(lengths) > 1  # the batch really is padded
    batched = model.encode(TEXTS, batch_size=len(TEXTS))
    for text, row in zip(TEXTS, batched):
        np.testing.assert_allclose(model.encode([text])[0], row, atol=1e-5, rtol=0)


def test_qwen3_tokenizer_appends_eos_and_pads(built):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built["qwen3"][0])
    assert type(tokenizer).__name__ == "Qwen2Tokenizer"
    assert tokenizer.pad_token is not None and tokenizer.eos_token is not None
    ids = tokenizer("2, 3, 5")["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "2, 3, 5"


def test_bert_tokenizer_is_wordpiece_with_specials(built):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built["bert"][0])
    assert type(tokenizer).__name__ == "BertTokenizer"
    for token in ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"):
        assert token in tokenizer.get_vocab()
    ids = tokenizer("2, 3, 5, 1234567")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert tokenizer.unk_token_id not in ids
    assert any(t.startswith("##") for t in tokenizer.convert_ids_to_tokens(ids))
    assert tokenizer.decode(ids, skip_special_tokens=True) == "2, 3, 5, 1234567"


@pytest.mark.parametrize(("kind", "cls_name"), [("bert", "BertModel"), ("qwen3", "Qwen3Model")])
def test_is_a_normal_float32_transformers_model(built, kind, cls_name):
    import torch
    from transformers import AutoConfig, AutoModel

    path, _ = built[kind]
    config = AutoConfig.from_pretrained(path)
    assert config.model_type == kind
    assert config.hidden_size == HIDDEN_SIZE and config.num_hidden_layers == 2
    model = AutoModel.from_pretrained(path)
    assert type(model).__name__ == cls_name
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # peft → transformers
@pytest.mark.parametrize("kind", KINDS)
def test_lora_all_linear_wraps_and_merges_back(built, kind):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    path, _ = built[kind]
    base_keys = set(AutoModel.from_pretrained(path).state_dict())
    peft_model = get_peft_model(AutoModel.from_pretrained(path), LoraConfig(r=4, target_modules="all-linear"))
    lora_layers = [n for n, _ in peft_model.named_modules() if n.endswith("lora_A")]
    assert len(lora_layers) >= 2 * 6  # q/k/v/o + MLP in each of 2 layers
    assert set(peft_model.merge_and_unload().state_dict()) == base_keys


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_is_byte_identical(built, loaded, kind, tmp_path):
    from sentence_transformers import SentenceTransformer

    path, _ = built[kind]
    again = tiny_model(kind, tmp_path / "again", seed=0)
    assert _files(again) == _files(path)  # weights, tokenizer and configs alike
    np.testing.assert_array_equal(
        SentenceTransformer(str(again), device="cpu").encode(TEXTS), loaded[kind].encode(TEXTS)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_other_seed_gives_other_weights(built, loaded, kind, tmp_path):
    from sentence_transformers import SentenceTransformer

    path, _ = built[kind]
    other = tiny_model(kind, tmp_path / "other", seed=1)
    assert (other / "model.safetensors").read_bytes() != (path / "model.safetensors").read_bytes()
    assert (other / "tokenizer.json").read_bytes() == (path / "tokenizer.json").read_bytes()
    emb_other = SentenceTransformer(str(other), device="cpu").encode(TEXTS)
    assert not np.allclose(emb_other, loaded[kind].encode(TEXTS), atol=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_small(built, kind):
    path, _ = built[kind]  # build times: bench/, not here (a loaded machine is no failure)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size < 5 * 1024 * 1024


def test_leaves_caller_torch_rng_alone(tmp_path):
    import torch

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    tiny_model("bert", tmp_path / "m", seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_builds_and_loads_without_network(tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    path = tiny_model("qwen3", tmp_path / "m", seed=3)
    emb = SentenceTransformer(str(path), device="cpu").encode(TEXTS[:2])
    assert emb.shape == (2, HIDDEN_SIZE)
    assert attempts == []


@pytest.mark.parametrize("kind", ["gpt2", "BERT", "", None])
def test_bad_kind_names_the_valid_kinds(kind, tmp_path):
    with pytest.raises(InvalidInputError, match=r"'bert'.*'qwen3'"):
        tiny_model(kind, tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_bad_seed(seed, tmp_path):
    with pytest.raises(InvalidInputError, match="seed"):
        tiny_model("bert", tmp_path / "m", seed=seed)


def test_refuses_non_empty_directory(tmp_path):
    (tmp_path / "stale.txt").write_text("old model")
    with pytest.raises(InvalidInputError, match="not an empty directory"):
        tiny_model("bert", tmp_path)


def test_accepts_existing_empty_directory_and_str_path(tmp_path):
    path = tiny_model("bert", str(tmp_path))
    assert path == tmp_path and (path / "modules.json").is_file()
