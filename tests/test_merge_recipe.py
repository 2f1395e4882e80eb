"""mergekit YAML recipes built by geomcheck: mergekit's own example recipes on tiny real models, checked against
the methods with the parameters resolved by hand here, and against ``mergekit-yaml`` where it is installed
(``MERGEKIT_YAML=/path/to/mergekit-yaml`` or on PATH; skipped otherwise, CI does not need it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from safetensors.torch import load_file  # noqa: E402

from geomcheck.errors import MergeError  # noqa: E402
from geomcheck.merge import METHODS  # noqa: E402
from geomcheck.merge.methods.slerp import slerp_tensors  # noqa: E402
from geomcheck.merge.recipe import build_recipe, read_recipe  # noqa: E402

LAYERS = 4


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny Llama causal LMs (m0 the base, m1, m2: 4 layers, random weights) and a LoRA adapter on m0."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("recipes")
    for i in range(3):
        torch.manual_seed(i)
        cfg = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=LAYERS,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                          tie_word_embeddings=False)
        LlamaForCausalLM(cfg).save_pretrained(root / f"m{i}")
    torch.manual_seed(7)
    base = LlamaForCausalLM.from_pretrained(root / "m0")
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    peft.save_pretrained(root / "adapter")
    return root


def w(root: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(root / name / "model.safetensors"))


def write(root: Path, name: str, text: str) -> Path:
    p = root / name
    p.write_text(text)
    return p


def layer(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[2]) if len(parts) > 2 and parts[1] == "layers" else None


def gradient(anchors: list[float], x: float) -> float:
    """mergekit's gradient: linear interpolation of evenly spaced anchors at x in [0, 1]."""
    s = x * (len(anchors) - 1)
    i = min(int(s), len(anchors) - 1)
    j = min(i + 1, len(anchors) - 1)
    return (1 - (s - i)) * anchors[i] + (s - i) * anchors[j]


def depth(name: str, first: int = 0, n: int = LAYERS) -> float:
    """Where tensor ``name`` sits in a slice of layers [first, first + n): 0 … 1; 0 outside the layers."""
    i = layer(name)
    return 0.0 if i is None else (i - first) / (n - 1)


def close(a: torch.Tensor, b: torch.Tensor, what: str, rtol: float = 2e-6) -> None:
    scale = max(float(b.abs().max()), 1e-12)
    err = float((a.to(torch.float64) - b.to(torch.float64)).abs().max()) / scale
    assert err <= rtol, f"{what}: max |diff| / max |ref| = {err:.3g}"


GRADIENT_SLERP = """\
# mergekit's examples/gradient-slerp.yml, on tiny models
slices:
  - sources:
      - model: m0
        layer_range: [0, 4]
      - model: m1
        layer_range: [0, 4]
merge_method: slerp
base_model: m0
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: float32
"""


def test_gradient_slerp_with_attention_and_mlp_filters(zoo, tmp_path):
    build_recipe(write(zoo, "gradient-slerp.yml", GRADIENT_SLERP), tmp_path / "out")
    a, b, out = w(zoo, "m0"), w(zoo, "m1"), w(tmp_path, "out")
    assert set(out) == set(a)
    for name, x in a.items():
        anchors = ([0, 0.5, 0.3, 0.7, 1] if "self_attn" in name else [1, 0.5, 0.7, 0.3, 0] if "mlp" in name
                   else None)
        t = gradient(anchors, depth(name)) if anchors else 0.5
        close(out[name], slerp_tensors(x, b[name], t), f"{name} at t={t}")
    # the gradient really varies: layer 1's attention sits at x = 1/3 of [0, .5, .3, .7, 1] -> 0.4333…
    q1 = "model.layers.1.self_attn.q_proj.weight"
    close(out[q1], slerp_tensors(a[q1], b[q1], 0.5 * (1 - 1 / 3 * 4 + 1) + 0.3 * (1 / 3 * 4 - 1)), q1)


TIES = """\
# mergekit's examples/ties.yml: per-model density and weight, gradients among them
models:
  - model: m0
  - model: m1
    parameters:
      density: [1, 0.7, 0.1]
      weight: 1.0
  - model: m2
    parameters:
      density: 0.5
      weight: [0, 0.3, 0.7, 1]
merge_method: ties
base_model: m0
parameters:
  normalize: true
  int8_mask: true
dtype: float32
"""


def test_ties_with_per_model_density_and_weight_lists(zoo, tmp_path):
    build_recipe(write(zoo, "ties.yml", TIES), tmp_path / "out")
    base, m1, m2, out = w(zoo, "m0"), w(zoo, "m1"), w(zoo, "m2"), w(tmp_path, "out")
    ties = METHODS["ties"]
    for name, x in base.items():
        d = depth(name)
        dens = [gradient([1, 0.7, 0.1], d), 0.5]
        weights = [1.0, gradient([0, 0.3, 0.7, 1], d)]
        ref = ties([m1[name], m2[name]], x, weights, density=dens, scale=1.0, normalize=True)
        close(out[name], ref, name)


FILTERED_LINEAR = """\
# filter-conditional per-model weights: the first filter that is part of the name wins
models:
  - model: m1
    parameters:
      weight:
        - filter: mlp
          value: 0.2
        - value: 1.0
  - model: m2
    parameters:
      weight:
        - filter: self_attn.q_proj
          value: [0, 1]
        - filter: self_attn
          value: 3.0
merge_method: linear
parameters:
  weight: 0.5
  normalize: true
"""


def test_filter_conditional_parameters_fall_through_to_the_recipe_level(zoo, tmp_path):
    build_recipe(write(zoo, "linear.yml", FILTERED_LINEAR), tmp_path / "out")
    m1, m2, out = w(zoo, "m1"), w(zoo, "m2"), w(tmp_path, "out")
    for name, x in m1.items():
        w1 = 0.2 if "mlp" in name else 1.0
        # m2: q_proj -> gradient over depth; other attention -> 3; anything else matches no filter -> recipe's 0.5
        w2 = depth(name) if "self_attn.q_proj" in name else 3.0 if "self_attn" in name else 0.5
        ref = (w1 * x + w2 * m2[name]) / (w1 + w2) if w1 + w2 else None
        close(out[name], ref, name)


SLICES = """\
# layer_range slices with their own parameters; the gradient spans each slice
slices:
  - sources:
      - model: m0
        layer_range: [0, 2]
      - model: m1
        layer_range: [0, 2]
        parameters:
          weight: 2.0
    parameters:
      lambda: 0.5
  - sources:
      - model: m0
        layer_range: [2, 4]
      - model: m1
        layer_range: [2, 4]
        parameters:
          weight: [1, 0]
merge_method: task_arithmetic
base_model: m0
parameters:
  weight: 1.0
  lambda: 1.0
"""


def test_layer_range_slices_take_their_own_parameters(zoo, tmp_path):
    build_recipe(write(zoo, "slices.yml", SLICES), tmp_path / "out")
    base, m1, out = w(zoo, "m0"), w(zoo, "m1"), w(tmp_path, "out")
    for name, x in base.items():
        i = layer(name)
        if i is not None and i < 2:
            weight, lam = 2.0, 0.5
        elif i is not None:
            weight, lam = gradient([1, 0], (i - 2) / 1), 1.0
        elif "embed" in name:  # before the layers: the first slice's parameters at t = 0
            weight, lam = 2.0, 0.5
        else:  # after them: the last slice's, at t = 0
            weight, lam = 1.0, 1.0
        close(out[name], x + lam * weight * (m1[name] - x), name)


TWO_STAGES = """\
name: mid
merge_method: linear
models:
  - model: m1
    parameters: {weight: 0.25}
  - model: m2
    parameters: {weight: 0.75}
---
merge_method: slerp
base_model: m0
models:
  - model: m0
  - model: mid
parameters:
  t: 0.4
"""


def test_a_two_stage_recipe_uses_the_first_stage_by_name(zoo, tmp_path):
    recipe = read_recipe(write(zoo, "two-stage.yml", TWO_STAGES))
    assert [st.name for st in recipe.stages] == ["mid", None] and recipe.base_model == "m0"
    assert sorted(r.text for r in recipe.external_refs()) == ["m0", "m1", "m2"]  # not the stage "mid"
    build_recipe(recipe, tmp_path / "out")
    base, m1, m2, out = w(zoo, "m0"), w(zoo, "m1"), w(zoo, "m2"), w(tmp_path, "out")
    for name, x in base.items():
        mid = 0.25 * m1[name] + 0.75 * m2[name]
        close(out[name], slerp_tensors(x, mid, 0.4), name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the intermediate stage is gone


LORA = """\
merge_method: task_arithmetic
base_model: m0
models:
  - model: m0+adapter
    parameters: {weight: 0.5}
"""


def test_model_plus_lora_merges_the_adapter_first(zoo, tmp_path):
    from peft import PeftModel
    from transformers import LlamaForCausalLM

    build_recipe(write(zoo, "lora.yml", LORA), tmp_path / "out")
    base, out = w(zoo, "m0"), w(tmp_path, "out")
    merged = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(zoo / "m0"), zoo / "adapter").merge_and_unload()
    ref = merged.state_dict()
    changed = 0
    for name, x in base.items():
        close(out[name], x + 0.5 * (ref[name] - x), name)
        changed += not torch.equal(ref[name], x)
    assert changed == 2 * LAYERS  # q_proj and v_proj of every layer


def test_a_sentence_transformers_recipe_keeps_the_base_pipeline(tmp_path):
    """mergekit cannot merge BERT-family sentence-transformers models (its issues #286, #577); geomcheck writes the
    base's whole pipeline beside the merged weights."""
    from sentence_transformers import SentenceTransformer

    from geomcheck.testing import tiny_model

    for i in range(2):
        tiny_model("bert", tmp_path / f"b{i}", seed=i)
    recipe = write(tmp_path, "bert.yml", GRADIENT_SLERP.replace("m0", "b0").replace("m1", "b1")
                   .replace("layer_range: [0, 4]", "layer_range: [0, 2]").replace("self_attn", "attention")
                   .replace("mlp", "intermediate"))
    out = build_recipe(recipe, tmp_path / "out")
    for f in ("modules.json", "1_Pooling/config.json", "sentence_bert_config.json", "tokenizer.json"):
        assert (out / f).read_bytes() == (tmp_path / "b0" / f).read_bytes(), f
    vecs = SentenceTransformer(str(out), device="cpu").encode(["1, 2, 3", "2, 4, 8"])
    assert vecs.shape[0] == 2 and torch.isfinite(torch.from_numpy(vecs)).all()


@pytest.mark.parametrize("text, line, match", [
    ("merge_method: slerp\nbase_model: m0\nmodels:\n  - model: m0\n  - model: m1\nparameters:\n  t: 0.5\n"
     "tokenizer_sorce: base\n", 8, "no key 'tokenizer_sorce'"),
    ("merge_method: passthrough\nslices:\n  - sources:\n      - model: m0\n        layer_range: [0, 4]\n", 1,
     "passthrough .* not supported"),
    ("merge_method: linear\nslices:\n  - sources:\n      - model: m0\n        layer_range: [0, 3]\n"
     "  - sources:\n      - model: m0\n        layer_range: [2, 4]\n", 6, "in order, without a gap or a repeat"),
    ("merge_method: linear\nslices:\n  - sources:\n      - model: m0\n        layer_range: [0, 4]\n"
     "      - model: m1\n        layer_range: [1, 5]\n", 3, "frankenmerge"),
    ("merge_method: ties\nbase_model: m0\nmodels:\n  - model: m1\n    parameters:\n      densty: 0.5\n", 6,
     "ties has no parameter 'densty'"),
    ("merge_method: ties\nbase_model: m0\nmodels:\n  - model: m1\n    parameters:\n      normalize: true\n", 6,
     "parameter of the whole ties merge"),
    ("merge_method: della\nbase_model: m0\nmodels:\n  - model: m1\n", 1, "della' is not supported"),
    ("merge_method: slerp\nmodels:\n  - model: m0\n  t: [0\n", 4, "not valid YAML"),
    ("merge_method: linear\nmodels:\n  - model: m1\n  - model: m1\nmodules: {}\n", 5, "per-module recipes"),
    ("name: a\nmerge_method: linear\nmodels:\n  - model: b\n---\nname: b\nmerge_method: linear\nmodels:\n"
     "  - model: m1\n", 4, "used before it is built"),
])
def test_what_is_not_supported_is_refused_with_its_line(zoo, tmp_path, text, line, match):
    recipe = write(tmp_path, "bad.yml", text)
    with pytest.raises(MergeError, match=match) as exc:
        build_recipe(recipe, tmp_path / "out")
    assert f"line {line}:" in str(exc.value), str(exc.value)
    assert not (tmp_path / "out").exists()


def test_refusals_found_only_when_merging_leave_nothing_behind(zoo, tmp_path):
    recipe = write(zoo, "no-t.yml", "merge_method: slerp\nbase_model: m0\nmodels:\n  - model: m0\n  - model: m1\n"
                   "parameters:\n  t:\n    - filter: mlp\n      value: 0.3\n")
    with pytest.raises(MergeError, match=r"slerp needs the parameter 't' \(tensor "):
        build_recipe(recipe, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    shutil.copytree(zoo / "m1", tmp_path / "other-vocab")
    cfg = json.loads((tmp_path / "other-vocab" / "config.json").read_text())
    (tmp_path / "other-vocab" / "tokenizer.json").write_text("{}")
    union = write(tmp_path, "union.yml", f"merge_method: linear\nmodels:\n  - model: {zoo / 'm0'}\n    parameters: "
                  f"{{weight: 1}}\n  - model: {tmp_path / 'other-vocab'}\n    parameters: {{weight: 1}}\n"
                  "tokenizer_source: union\n")
    with pytest.raises(MergeError, match="tokenizer_source: union over models whose tokenizers differ"):
        build_recipe(union, tmp_path / "out")
    assert not (tmp_path / "out").exists() and cfg["num_hidden_layers"] == LAYERS


def test_cli_builds_a_recipe_with_bound_names(zoo, tmp_path, capsys):
    from geomcheck.cli import main

    recipe = write(tmp_path, "bound.yml", GRADIENT_SLERP.replace("m0", "base").replace("m1", "lora"))
    rc = main(["merge", "--config", str(recipe), "--bind", f"base={zoo / 'm0'}", "--bind", f"lora={zoo / 'm1'}",
               "--out", str(tmp_path / "out")])
    assert rc == 0
    assert "slerp of base, lora (base base)" in capsys.readouterr().out
    build_recipe(write(zoo, "gradient-slerp.yml", GRADIENT_SLERP), tmp_path / "direct")
    for name, x in w(tmp_path, "direct").items():
        assert torch.equal(w(tmp_path, "out")[name], x)
    rc = main(["merge", "--config", str(recipe), "--out", str(tmp_path / "nope")])
    assert rc == 2 and "model 'base' is not a directory" in capsys.readouterr().err


def _mergekit() -> str | None:
    exe = os.environ.get("MERGEKIT_YAML") or shutil.which("mergekit-yaml")
    return exe if exe and Path(exe).exists() else None


@pytest.mark.skipif(_mergekit() is None, reason="mergekit-yaml is not installed (MERGEKIT_YAML=… or on PATH); "
                    "a reference only, not a dependency")
@pytest.mark.parametrize("name, text", [("gradient-slerp", GRADIENT_SLERP), ("ties", TIES),
                                        ("filtered-linear", FILTERED_LINEAR), ("slices", SLICES),
                                        ("two-stage", TWO_STAGES), ("lora", LORA)])
def test_equal_to_mergekit_tensor_for_tensor(zoo, tmp_path, name, text):
    recipe = write(zoo, f"{name}.yml", text)
    ours = build_recipe(recipe, tmp_path / "ours")
    theirs = tmp_path / "theirs"
    if name == "two-stage":
        exe = str(Path(_mergekit()).with_name("mergekit-multi"))
        cmd = [exe, str(recipe), "--intermediate-dir", str(tmp_path / "mid"), "--out-path", str(theirs)]
    else:
        cmd = [_mergekit(), str(recipe), str(theirs)]
    extra = ["--lora-merge-cache", str(tmp_path / "lora-cache")] if name == "lora" else []
    run = subprocess.run(cmd + extra + ["--no-write-model-card", "--no-copy-tokenizer"], cwd=zoo, capture_output=True,
                         text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    a, b = w(tmp_path, "ours"), load_file(str(next(theirs.glob("*.safetensors"))))
    assert set(a) == set(b)
    worst = max(float((a[k] - b[k]).abs().max()) / max(float(b[k].abs().max()), 1e-12) for k in a)
    print(f"{name}: max relative difference to mergekit {worst:.3g}")
    assert worst <= 1e-6, f"{name}: geomcheck and mergekit differ by {worst:.3g} (relative)"
    assert ours.is_dir()


def test_the_example_recipes_build_on_a_bert_model_with_the_names_the_suites_bind(tmp_path):
    """examples/recipes/*.yml: BERT tensor names (MiniLM's); every filter of the gradient SLERP matches something."""
    from geomcheck.testing import noisy_copy, tiny_model

    examples = Path(__file__).resolve().parents[1] / "examples" / "recipes"
    base = tiny_model("bert", tmp_path / "base")
    bind = {"base": base, "lora": noisy_copy(base, tmp_path / "lora", seed=1),
            "checkpoint-0": noisy_copy(base, tmp_path / "ck0", seed=2)}
    for recipe in ("gradient-slerp.yml", "ties.yml"):
        out = build_recipe(examples / recipe, tmp_path / recipe, bind=bind)
        assert (out / "1_Pooling" / "config.json").is_file()
    a, b, out = w(tmp_path, "base"), w(tmp_path, "lora"), w(tmp_path, "gradient-slerp.yml")
    top = max(layer_of for layer_of in (int(k.split(".")[2]) for k in a if k.startswith("encoder.layer.")))
    for name, t in ((f"encoder.layer.{top}.attention.self.query.weight", 1.0),
                    (f"encoder.layer.{top}.intermediate.dense.weight", 0.0),
                    (f"encoder.layer.{top}.output.dense.weight", 0.0),
                    ("embeddings.word_embeddings.weight", 0.5)):
        close(out[name], slerp_tensors(a[name], b[name], t), f"{name} at t={t}")
