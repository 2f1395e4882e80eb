"""LoRA training on tiny real models: SupCon, windows, adapters that plain peft reloads."""

from __future__ import annotations

import random

import numpy as np
import pytest

from geomcheck.adapt import WindowTask, load_adapter, merge_lora, supcon_loss, train_lora
from geomcheck.errors import InvalidInputError


def _supcon_reference(z: np.ndarray, y: np.ndarray, tau: float) -> float:
    """Khosla et al. 2020 eq. 2, written out with loops in float64."""
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z)
    total, anchors = 0.0, 0
    for i in range(n):
        pos = [p for p in range(n) if p != i and y[p] == y[i]]
        if not pos:
            continue
        denom = sum(np.exp(z[i] @ z[a] / tau) for a in range(n) if a != i)
        total += -np.mean([np.log(np.exp(z[i] @ z[p] / tau) / denom) for p in pos])
        anchors += 1
    return total / anchors


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_supcon_matches_the_papers_formula(tau):
    import torch

    rng = np.random.default_rng(0)
    z = rng.normal(size=(12, 5))
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 1, 4])  # label 4 has no positive: not an anchor
    got = supcon_loss(torch.tensor(z), torch.tensor(y), tau).item()
    assert got == pytest.approx(_supcon_reference(z, y, tau), rel=1e-9)


def test_window_task_partitions_starts_and_is_seeded():
    task = WindowTask()
    starts = task.train_starts()
    assert not set(starts.tolist()) & set(task.eval_starts)
    assert starts.min() == 201 and starts.max() == 799 and len(starts) == 600 - 4  # 200 is an eval start
    a = task.batch(random.Random(3))
    assert a == task.batch(random.Random(3)) and a != task.batch(random.Random(4))
    texts, labels = a
    assert len(texts) == 6 * 8 and labels == [lab for lab in range(6) for _ in range(8)]
    sets = task.eval_sets()
    assert set(sets) == {"task", "paper", "far", "heldout"}
    assert sorted(set(sets["task"].starts)) == [200, 350, 500, 650]
    assert min(sets["far"].starts) == 1500 and len(sets["task"]) == 24
    assert sets["task"].texts[0] == ", ".join(map(str, range(201, 251)))  # consecutive from index 200
    with pytest.raises(InvalidInputError, match="eval_starts"):
        WindowTask(eval_starts=(100,))
    with pytest.raises(InvalidInputError, match="2 windows per family"):
        WindowTask(per_family=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from geomcheck.testing import tiny_model

    root = tmp_path_factory.mktemp("lora")
    base = tiny_model("bert", root / "bert")
    task = WindowTask(families=("prime", "squares", "odd"), per_family=4)
    return base, train_lora(str(base), task, out_dir=root / "run", max_steps=8, lr=1e-2, checkpoints=2,
                            seed=0, progress=False)


def test_run_records_adapter_checkpoints_losses_and_geometry(run):
    base, r = run
    assert (r.adapter_dir / "adapter_config.json").is_file() and (r.adapter_dir / "adapter_model.safetensors").is_file()
    assert [p.name for p in r.checkpoint_dirs] == ["checkpoint-4", "checkpoint-8"]
    assert len(r.loss_history) == 8 and all(np.isfinite(r.loss_history))
    assert set(r.before) == set(r.after) == {"task", "paper", "far", "heldout"}
    assert r.after["task"]["silhouette"] != r.before["task"]["silhouette"]  # training moved the geometry
    assert (r.adapter_dir.parent / "lora_run.json").is_file()


def test_same_seed_same_adapter(run, tmp_path):
    base, r = run
    task = WindowTask(families=("prime", "squares", "odd"), per_family=4)
    again = train_lora(str(base), task, out_dir=tmp_path / "again", max_steps=8, lr=1e-2, checkpoints=2, seed=0,
                       progress=False, evaluate_sets=False)
    a = (r.adapter_dir / "adapter_model.safetensors").read_bytes()
    assert (again.adapter_dir / "adapter_model.safetensors").read_bytes() == a
    assert again.loss_history == r.loss_history


def test_adapter_reloads_with_plain_peft_to_the_same_outputs(run):
    import torch
    from peft import PeftModel
    from transformers import AutoModel, AutoTokenizer

    base, r = run
    texts = ["2, 3, 5, 7, 11", "1, 4, 9, 16"]
    tok = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModel.from_pretrained(base), str(r.adapter_dir)).eval()
    ref = []
    for t in texts:
        with torch.no_grad():
            ref.append(model(**tok([t], return_tensors="pt")).last_hidden_state[0].mean(0).numpy())
    ours = load_adapter(str(base), r.adapter_dir).encode(texts, cache=False)
    assert np.abs(ours - np.stack(ref)).max() < 1e-5


def test_merge_lora_is_w_plus_scaled_ba(run):
    from safetensors.numpy import load_file
    from transformers import AutoModel

    base, r = run
    merged = merge_lora(str(base), r.adapter_dir)
    lora = load_file(str(r.adapter_dir / "adapter_model.safetensors"))
    key = next(k for k in lora if "query" in k and "lora_A" in k)
    prefix = key.split("lora_A")[0]
    A, B = lora[key], lora[prefix + "lora_B.weight"]
    target = prefix.replace("base_model.model.", "") + "weight"
    W = AutoModel.from_pretrained(base).state_dict()[target].numpy()
    expected = W.astype(np.float64) + (16 / 16) * B.astype(np.float64) @ A.astype(np.float64)
    assert np.abs(merged[target].numpy() - expected).max() < 1e-5
    assert np.abs(B).max() > 0  # the adapter learned something, so this compares a real update


def test_bad_arguments(tmp_path):
    with pytest.raises(InvalidInputError, match="objective"):
        train_lora("minilm", out_dir=tmp_path, objective="triplet")
    with pytest.raises(InvalidInputError, match="r must be an integer >= 1"):
        train_lora("minilm", out_dir=tmp_path, r=0)
    with pytest.raises(InvalidInputError, match="not a peft adapter"):
        load_adapter("minilm", tmp_path)


def _topics_task(**kw):
    from geomcheck.adapt import TextTask
    from geomcheck.data import TextDataset

    words = {"sport": "goal match team coach", "food": "bread soup salt oven", "sky": "star moon comet orbit"}
    texts, labels = [], []
    for k, (name, vocab) in enumerate(words.items()):
        for i in range(8):
            texts.append(f"{name} {i}: " + " ".join(vocab.split()[j % 4] for j in range(i, i + 3)))
            labels.append(k)
    return TextTask.from_dataset(TextDataset(tuple(texts), labels, tuple(words), source="topics"), **kw)


def test_a_text_task_trains_on_its_train_split_only_and_measures_its_test_split():
    task = _topics_task(per_label=4)
    assert (len(task.train), len(task.test)) == (18, 6)  # 2 of 8 per label held out
    assert not set(task.train.texts) & set(task.test.texts)
    rng = random.Random(0)
    for _ in range(20):
        texts, labels = task.batch(rng)
        assert len(texts) == 12 and len(set(texts)) == 12 and set(texts) <= set(task.train.texts)
        assert labels == [0] * 4 + [1] * 4 + [2] * 4
    assert task.eval_sets() == {"task": task.test}
    d = task.describe()
    assert d["kind"] == "texts" and d["labels"] == ["sport", "food", "sky"] and d["test"]["n"] == 6
    assert d["train"]["digest"] != _topics_task(seed=1).describe()["train"]["digest"]  # another split, another run
    assert _topics_task(max_batch=6).texts_per_label == 2


def test_train_lora_on_your_own_texts(tmp_path):
    from geomcheck.testing import tiny_model

    base = tiny_model("bert", tmp_path / "bert")
    task = _topics_task()
    r = train_lora(str(base), task, out_dir=tmp_path / "run", max_steps=6, lr=1e-2, checkpoints=2, progress=False)
    assert set(r.before) == set(r.after) == {"task"}  # the test split
    assert r.loss_history[-1] < r.loss_history[0]
    assert r.settings["task"]["kind"] == "texts" and r.settings["task"]["source"] == "topics"


@pytest.mark.parametrize(("kw", "match"), [({"per_label": 1}, "per_label must be an integer >= 2"),
                                           ({"max_batch": 4}, r"max_batch must be >= 2 per label \(6\)")])
def test_text_task_refuses_bad_settings(kw, match):
    with pytest.raises(InvalidInputError, match=match):
        _topics_task(**kw)


def test_the_recipe_follows_the_kind_of_model(tmp_path):
    from geomcheck.adapt.recipes import RECIPES, recipe_for
    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    decoder = load_model(str(tiny_model("qwen3", tmp_path / "q")), device="cpu")  # last-token pooling, no spec
    encoder = load_model(str(tiny_model("bert", tmp_path / "b")), device="cpu")
    assert recipe_for(decoder) is RECIPES["decoder"] and recipe_for(encoder) is RECIPES["encoder"]
    assert recipe_for(encoder, "decoder") is RECIPES["decoder"]
    with pytest.raises(InvalidInputError, match="unknown LoRA recipe 'fast'; known: auto, encoder, decoder"):
        recipe_for(encoder, "fast")
    assert RECIPES["decoder"].task().per_family == 4 and RECIPES["encoder"].task() == WindowTask()
    # train_lora trains a fresh copy of an Embedder: the copy keeps its registry entry, so the recipe it
    # trains with is the one the LoRA cache key was made with
    from geomcheck.models.registry import REGISTRY

    encoder.spec = REGISTRY["smollm2-135m"]  # kind "llm"
    run = train_lora(encoder, WindowTask(families=("prime", "odd"), per_family=2), out_dir=tmp_path / "run",
                     max_steps=1, checkpoints=0, progress=False, evaluate_sets=False)
    assert run.settings["recipe"] == "decoder" and recipe_for(encoder) is RECIPES["decoder"]


def test_top_layers_put_lora_on_the_top_layers_only(tmp_path):
    from safetensors.torch import load_file

    from geomcheck.testing import tiny_model

    base = tiny_model("qwen3", tmp_path / "q")
    task = WindowTask(families=("prime", "squares", "odd"), per_family=2)
    r = train_lora(str(base), task, out_dir=tmp_path / "run", max_steps=2, checkpoints=0, top_layers=1,
                   progress=False, evaluate_sets=False)
    keys = load_file(str(r.adapter_dir / "adapter_model.safetensors")).keys()
    layers = {int(k.split("layers.")[1].split(".")[0]) for k in keys}
    from transformers import AutoConfig

    n = AutoConfig.from_pretrained(base).num_hidden_layers
    assert n >= 2 and layers == {n - 1}, (n, layers)
    assert r.settings["recipe"] == "decoder" and r.settings["top_layers"] == 1 and r.settings["lr"] == 1e-2
    with pytest.raises(InvalidInputError, match="top_layers must be an integer >= 1, got 0"):
        train_lora(str(base), task, out_dir=tmp_path / "bad", top_layers=0)


def test_training_pools_as_inference_does(tmp_path):
    """train_lora's forward (the pipeline's preprocess and modules, a padded batch) gives each text the vector
    ``encode`` gives it: the same last-token (decoder) or mean (encoder) pooling, padding masked out."""
    import torch

    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    texts = ["1, 2", "2, 3, 5, 7, 11, 13, 17, 19", "4, 9, 16, 25"]
    for kind in ("qwen3", "bert"):
        emb = load_model(str(tiny_model(kind, tmp_path / kind)), device="cpu", cache=False)
        with torch.no_grad():
            z = emb.model(emb.model.preprocess(texts, prompt=emb.prompt or None))["sentence_embedding"]
        assert np.allclose(z.numpy(), emb.encode(texts), atol=1e-5), kind
