"""LoRA memory by design: token-budget micro-batches whose SupCon gradient is the full batch's, the large recipes,
and the memory model's parameter counts against real models."""

from __future__ import annotations

import pytest

from geomcheck.adapt.memory import MISTRAL_7B, QWEN2_7B, lora_memory, shape_of
from geomcheck.adapt.microbatch import micro_batches


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_micro_batches_keep_the_batch_whole_when_it_fits_and_bound_the_padded_tokens_when_not():
    assert micro_batches([5, 9, 3], 27) == [[0, 1, 2]]  # 3 x 9 padded tokens: one pass, the batch's order
    lengths = [5, 9, 3, 7, 40, 2]
    groups = micro_batches(lengths, 20)
    assert sorted(i for g in groups for i in g) == list(range(6))
    assert groups[0] == [4]  # longer than the budget: alone
    assert all(len(g) * max(lengths[i] for i in g) <= 20 for g in groups[1:])
    assert [lengths[i] for g in groups for i in g] == sorted(lengths, reverse=True)


def test_two_pass_micro_batches_give_the_gradient_of_the_whole_batch(tmp_path):
    """GradCache: the in-batch negatives stay the whole batch, so every parameter's gradient equals the one-pass
    gradient (tiny Qwen3: no dropout, so the passes see the same function); plain accumulation would not."""
    import torch

    from geomcheck.adapt.lora import supcon_loss
    from geomcheck.adapt.microbatch import supcon_step
    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    emb = load_model(str(tiny_model("qwen3", tmp_path / "q")), device="cpu", cache=False)
    texts = ["2, 3, 5, 7", "1, 4, 9", "2, 3, 5, 7, 11, 13", "1, 4, 9, 16, 25", "3, 5", "4, 16, 36, 64, 100"]
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    full = emb.model.preprocess(texts)
    lengths = [int(n) for n in full["attention_mask"].sum(1)]

    def embed(idx):
        return emb.model(emb.model.preprocess([texts[i] for i in idx]))["sentence_embedding"]

    def grads(budget):
        emb.model.zero_grad(set_to_none=True)
        loss, parts = supcon_step(embed, lengths, labels, budget, lambda z, y: supcon_loss(z, y), torch.device("cpu"))
        return loss, parts, {n: p.grad.clone() for n, p in emb.model.named_parameters() if p.grad is not None}

    loss1, parts1, g1 = grads(10_000)
    budget = 3 * max(lengths)  # micro-batches of 3 texts
    loss2, parts2, g2 = grads(budget)
    assert parts1 == 1 and parts2 == 2
    assert float(loss2) == pytest.approx(float(loss1), abs=1e-6)
    assert g1.keys() == g2.keys() and len(g1) > 10
    for n in g1:  # float32 summation order differs: 1e-5 of the tensor's largest gradient
        scale = float(g1[n].abs().max())
        assert float((g1[n] - g2[n]).abs().max()) <= 1e-5 * scale, n
    # per-micro-batch losses summed (plain accumulation) is another gradient: the check above has teeth
    emb.model.zero_grad(set_to_none=True)
    for g in micro_batches(lengths, budget):
        if len(set(labels[g].tolist())) < len(g):  # a micro-batch with a positive pair has a loss of its own
            supcon_loss(embed(g), labels[g]).backward()
    acc = {n: p.grad for n, p in emb.model.named_parameters() if p.grad is not None}
    assert acc.keys() == g1.keys()
    assert any(float((acc[n] - g1[n]).abs().max()) > 1e-2 * float(g1[n].abs().max()) for n in acc)


@pytest.mark.parametrize("kind", ["qwen2", "qwen3", "mistral", "llama", "gemma2", "gemma3"])
def test_the_memory_models_parameter_count_is_the_real_models(kind, tmp_path):
    from transformers import AutoModel

    from geomcheck.testing import tiny_model

    model = AutoModel.from_pretrained(tiny_model(kind, tmp_path / kind), trust_remote_code=kind == "llama")
    assert shape_of(model.config).params() == sum(p.numel() for p in model.parameters())


def test_the_7b_prediction_fits_80_gb_and_counts_the_real_parameters():
    assert MISTRAL_7B.params() == 7_110_660_096 and QWEN2_7B.params() == 7_069_121_024  # mteb's counts
    for shape in (MISTRAL_7B, QWEN2_7B):
        m = lora_memory(shape, tokens=32_768, seq_len=512, texts=24, top_layers=8, checkpointing=True,
                        weight_bytes=2, act_bytes=2, cuda=True)
        assert m["weights"] == 2 * shape.params() and m["total"] < 80e9
        # by hand: LoRA on q, k, v, o, gate, up, down of 8 layers, r 16, 16 bytes a parameter with AdamW
        per_layer = sum(16 * (a + b) for a, b in shape.linears())
        assert m["lora"] == 8 * per_layer * 16
        assert m["saved"] == 8 * 32_768 * shape.hidden * 2
        without = lora_memory(shape, tokens=32_768, seq_len=512, texts=24, top_layers=8, checkpointing=False,
                              weight_bytes=2, act_bytes=2, cuda=True)
        assert without["saved"] == 8 * m["working"] > m["saved"]


def test_a_deep_or_large_model_gets_the_large_recipe(tmp_path, monkeypatch):
    from geomcheck.adapt import recipes
    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    bert = load_model(str(tiny_model("bert", tmp_path / "b")), device="cpu", cache=False)
    qwen = load_model(str(tiny_model("qwen3", tmp_path / "q")), device="cpu", cache=False)
    assert recipes.recipe_for(bert).name == "encoder" and recipes.recipe_for(qwen).name == "decoder"
    assert recipes.model_size(bert)[0] == 2
    monkeypatch.setattr(recipes, "LARGE_ENCODER_LAYERS", 1)  # 2 layers are now "deep"
    assert recipes.recipe_for(bert).name == "encoder-large" and recipes.recipe_for(qwen).name == "decoder"
    monkeypatch.setattr(recipes, "LARGE_DECODER_PARAMS", 1000)
    big = recipes.recipe_for(qwen)
    assert big.name == "decoder-large" and big.checkpointing and big.top_layers == 8
