"""Every backbone family of the registry, for real, in miniature (``geomcheck.testing.ARCHITECTURES``).

Each tiny model goes the way a Table-1 model goes: loaded by its Hugging Face id from an offline
hub cache, measured as Table 2 (``geomcheck table``, checked against scikit-learn on the same
vectors), LoRA-trained with the recipe (the family's own linear layers found, the top layer only,
micro-batches and gradient checkpointing on), merged (soup, SLERP, TIES) into directories that keep
the whole pipeline, Dense layers and remote code included, and run through the shipped fast and slow
suites. What makes each family itself is checked on the loaded pipeline: the attention mask
(bidirectional or causal), the pooling, the EOS a last-token model pools, the Dense layers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from geomcheck.errors import ModelLoadError
from geomcheck.testing import ARCHITECTURES, REMOTE_CODE_FILE, hf_cache_layout, tiny_model

ROOT = Path(__file__).resolve().parents[1]
KINDS = tuple(ARCHITECTURES)
BIDIRECTIONAL = {"bert", "xlmr", "gemma3", "llama"}
EOS_POOLED = {"qwen2", "qwen3", "mistral"}  # last-token models whose tokenizer files ask for EOS
ATTENTION = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
TARGETS = {"bert": {"query", "key", "value", "dense"}, "xlmr": {"query", "key", "value", "dense"},
           **{k: ATTENTION for k in ("gemma3", "qwen2", "qwen3", "mistral", "llama", "gemma2")}}
MODULES = {"gemma3": ["Transformer", "Pooling", "Dense", "Dense", "Normalize"], "gemma2": ["Transformer", "Pooling", "Dense"],
           "bert": ["Transformer", "Pooling"], "qwen3": ["Transformer", "Pooling"], "xlmr": ["Transformer", "Pooling"]}
TEXTS = ["2, 3, 5, 7, 11", "1, 4, 9, 16, 25, 36", "0, 1, 1, 2, 3, 5, 8", "7"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """Every tiny model in one offline Hugging Face hub cache, as ``tiny-org/<kind>``."""
    root = tmp_path_factory.mktemp("arch")
    snaps = {k: hf_cache_layout(root / "hub", f"tiny-org/{k}", tiny_model(k, root / "src" / k)) for k in KINDS}
    return root / "hub", snaps, root / "src"


@pytest.fixture
def offline_hub(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(hub[0]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub[1]


def _load(kind, **kw):
    from geomcheck.models import load_model

    return load_model(f"tiny-org/{kind}", device="cpu", trust_remote_code=ARCHITECTURES[kind].remote_code, **kw)


def _sees_later_tokens(emb) -> bool:
    """Whether the first token's state depends on the last token: no causal mask."""
    import torch

    auto = emb.model[0].auto_model
    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, 8, 10]])
    with torch.no_grad():
        h = auto(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[:, 0]
    return not torch.allclose(h[0], h[1], atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_loads_from_the_hub_cache_as_the_real_family_behaves(kind, offline_hub, capsys):
    from sklearn.metrics import davies_bouldin_score, silhouette_score
    from transformers import AutoTokenizer

    from geomcheck.cli import main
    from geomcheck.data import paper_dataset

    arch = ARCHITECTURES[kind]
    if arch.remote_code:  # its own modelling code: refused until the user allows it, by name
        from geomcheck.models import load_model

        with pytest.raises(ModelLoadError, match=r"runs Python code shipped with the model .*auto_map.*trust_remote_code"):
            load_model(f"tiny-org/{kind}", device="cpu")
    emb = _load(kind)
    assert emb.source_path == offline_hub[kind]
    assert [type(m).__name__ for m in emb.model][:len(MODULES.get(kind, []))] == MODULES.get(kind, [])
    assert emb.model[1].get_config_dict()["pooling_mode"] == arch.pooling
    assert _sees_later_tokens(emb) == (kind in BIDIRECTIONAL)
    tok = emb.model.tokenizer
    ids = tok("2, 3, 5")["input_ids"]
    plain = AutoTokenizer.from_pretrained(offline_hub[kind])("2, 3, 5")["input_ids"]
    if kind in EOS_POOLED:  # the last token pooled is the EOS, as the models were trained
        assert ids[-1] == tok.eos_token_id
        # transformers >= 5 drops tokenizer_config.json's add_eos_token: geomcheck puts it back, BOS kept
        assert (plain[-1] != tok.eos_token_id) == (arch.eos == "config") and ids[:len(plain)] == plain
        assert bool(emb.tokenizer_fixes) == (arch.eos == "config")
    else:
        assert ids == plain and not emb.tokenizer_fixes
    X = emb.encode(TEXTS, cache=False)
    assert X.shape == (4, emb.dim) and np.isfinite(X).all() and len({r.tobytes() for r in X}) == 4

    # Table 2 on the paper dataset through the command line equals scikit-learn on the same vectors
    argv = ["table", "--model", f"tiny-org/{kind}", "--device", "cpu", "--json"]
    capsys.readouterr()  # what loading printed above
    assert main(argv + (["--trust-remote-code"] if arch.remote_code else [])) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    ds = paper_dataset()
    V = emb.encode(ds.texts)
    assert row["silhouette_true"] == pytest.approx(silhouette_score(V, ds.labels), abs=1e-4)
    assert row["davies_bouldin_true"] == pytest.approx(davies_bouldin_score(V, ds.labels), rel=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_lora_recipe_and_merges_keep_the_whole_pipeline(kind, offline_hub, tmp_path):
    from safetensors.torch import load_file

    from geomcheck.adapt import WindowTask, load_adapter, train_lora
    from geomcheck.adapt.recipes import recipe_for
    from geomcheck.adapt.variants import build_variants

    arch = ARCHITECTURES[kind]
    base = _load(kind, cache=False)
    assert recipe_for(base).name == ("decoder" if arch.pooling == "lasttoken" else "encoder")
    task = WindowTask(families=("prime", "squares", "odd"), per_family=2, lengths=(6, 10))
    # the top layer only, two passes of micro-batches of <= 48 tokens, checkpointing on: each family's layer list
    # and linear layers are found, and its checkpointing runs
    run = train_lora(base, task, out_dir=tmp_path / "lora", max_steps=2, checkpoints=2, top_layers=1, token_budget=48,
                     gradient_checkpointing=True, progress=False, evaluate_sets=False)
    assert run.settings["micro_batches"] > 1 and run.settings["gradient_checkpointing"]
    assert np.isfinite(run.loss_history).all()
    config = json.loads((run.adapter_dir / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == TARGETS[kind]
    keys = load_file(str(run.adapter_dir / "adapter_model.safetensors"))
    layers = {int(k.split("layers." if ".layers." in k else "layer.")[1].split(".")[0]) for k in keys}
    assert layers == {1}, sorted(keys)[:4]
    assert {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in keys} == TARGETS[kind]
    tuned = load_adapter(base, run.adapter_dir, trust_remote_code=arch.remote_code)
    assert not np.allclose(tuned.encode(TEXTS, cache=False), base.encode(TEXTS, cache=False), atol=1e-6)

    dirs = build_variants(base, run, methods=("soup", "slerp", "ties"), out_dir=tmp_path / "variants", load=False)
    src = offline_hub[kind]

    def layout(d: Path) -> dict[str, list[str]]:
        return {p.name: sorted(f.name for f in p.iterdir()) for p in [d, *sorted(x for x in d.iterdir() if x.is_dir())]}

    want = json.loads((src / "modules.json").read_text())
    for name in ("base", "lora", "soup", "slerp", "ties"):
        d = dirs[name]
        assert json.loads((d / "modules.json").read_text()) == want, name
        for m in want[1:]:  # the pipeline after the transformer: the same module folders, the same files
            assert layout(d).get(m["path"]) == sorted(f.name for f in (src / m["path"]).iterdir()), (name, m)
            for w in (src / m["path"]).glob("*.safetensors"):  # untrained Dense layers come through unchanged
                a, b = load_file(str(w)), load_file(str(d / m["path"] / w.name))
                assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a), (name, m["path"])
        assert (d / REMOTE_CODE_FILE).is_file() == arch.remote_code, name
        from geomcheck.models import load_model

        merged = load_model(str(d), device="cpu", cache=False, trust_remote_code=arch.remote_code)
        assert [type(m).__name__ for m in merged.model] == [type(m).__name__ for m in base.model]
        assert _sees_later_tokens(merged) == (kind in BIDIRECTIONAL), name
        X = merged.encode(TEXTS, cache=False)
        assert X.shape == (4, base.dim) and np.isfinite(X).all()
        if kind in EOS_POOLED:
            assert merged.model.tokenizer("2, 3")["input_ids"][-1] == merged.model.tokenizer.eos_token_id, name


def _labelled_texts(path: Path) -> Path:
    """3 families x 8 short windows as a CSV: the suites' own-data path keeps the run small (LoRA trains on its
    train split, the variants are measured on its test split, no held-out families)."""
    from geomcheck.data import get_family, render

    rows = ["text,label"]
    for fam in ("prime", "squares", "odd"):
        for k in range(8):
            rows.append(f'"{render(get_family(fam).terms(3 * k, 6))[0]}",{fam}')
    path.write_text("\n".join(rows) + "\n")
    return path


def test_the_suites_run_on_every_architecture(hub, tmp_path):
    """The shipped suites, fast and slow (LoRA with each model's recipe, soup / SLERP / TIES), on all eight
    models in one run on a small labelled-text file: every test of every model runs to a verdict (a random
    model may fail a geometry gate; nothing may error), and the report has each model's variants."""
    src = hub[2]
    xml = tmp_path / "junit.xml"
    args = [sys.executable, "-m", "pytest", str(ROOT / "suites"), "-p", "no:cacheprovider", "-q", "--device", "cpu",
            "--merge", "soup", "--merge", "slerp", "--merge", "ties", "--geomcheck-report", str(tmp_path / "report"),
            "--dataset", str(_labelled_texts(tmp_path / "fams.csv")), f"--junitxml={xml}", "-k", "not baseline"]
    for kind in KINDS:
        args += ["--model", str(src / kind)]
    args += ["--geomcheck-trust-remote-code", str(src / "llama")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), out[-4000:]
    cases = list(ET.parse(xml).getroot().iter("testcase"))
    errors = [c.get("name") for c in cases if c.find("error") is not None]
    assert not errors, (errors, out[-4000:])
    ran = {c.get("name").split("[")[0] for c in cases if c.find("skipped") is None}
    assert {"test_geometry_is_in_range", "test_lora_learns_the_task", "test_merge_geometry",
            "test_embedding_does_not_depend_on_batch_neighbours"} <= ran, sorted(ran)
    # a failure is a verdict (an assertion, or a gate's pytest.fail message), not an exception
    crash = re.compile(r"^(?!AssertionError)[A-Za-z_.]*(Error|Exception|Interrupt)\b")
    crashes = [(c.get("name"), f.get("message")) for c in cases if (f := c.find("failure")) is not None
               and crash.match(f.get("message") or "")]
    assert not crashes, crashes
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    rows = {(g["model"], g["variant"]) for g in report["geometry"]}
    for kind in KINDS:
        assert {(kind, v) for v in (None, "lora", "soup", "slerp", "ties")} <= rows, (kind, sorted(rows))
