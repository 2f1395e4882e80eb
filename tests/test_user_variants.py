"""Your own merges as variants: ``NAME=PATH`` parsing and the check that a model is a merge of the base.

``parse_variant`` / ``split_variants`` need no model. ``base_differences`` runs on tiny real BERTs:
a noisy copy stands for a merge of the base (each weight matrix W + s·std(W)·Z keeps a cosine of
about 1/sqrt(1 + s²) to W), another seed for a model of the same shapes from another base.
"""

from __future__ import annotations

import json
import math
import re
import shutil

import pytest

from geomcheck.adapt.user_variants import parse_variant, reserved_names, split_variants
from geomcheck.errors import IncompatibleModelsError, InvalidInputError
from geomcheck.merge.validate import MIN_WEIGHT_COSINE, base_differences, check_same_base


@pytest.fixture(scope="module")
def berts(tmp_path_factory):
    from geomcheck.testing import noisy_copy, tiny_model

    d = tmp_path_factory.mktemp("berts")
    tiny_model("bert", d / "base")
    tiny_model("bert", d / "other", seed=3)
    noisy_copy(d / "base", d / "near", scale=0.4)  # cosine ~ 1/sqrt(1.16) = 0.93 per matrix
    noisy_copy(d / "base", d / "far", scale=3.0)  # cosine ~ 1/sqrt(10) = 0.32
    tiny_model("qwen3", d / "qwen3")
    return d


def test_names_and_paths(tmp_path):
    model = tmp_path / "merged"
    model.mkdir()
    (model / "config.json").write_text("{}")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("merge_method: slerp\n")
    v = parse_variant(f"mine={model}")
    assert (v.name, v.path, v.recipe) == ("mine", model.resolve(), False)
    assert parse_variant("r.1-x=r.yaml", relative_to=tmp_path).recipe  # relative to where the option was given
    methods, user = split_variants(["slerp", f"mine={model}", "soup", "slerp", f"mine={model}"])
    assert methods == ["slerp", "soup"] and [u.name for u in user] == ["mine"]
    assert {"base", "lora", "soup", "slerp", "ties", "slerp_gradient"} <= set(reserved_names())
    bad = {
        "soup=" + str(model): "'soup' is a built-in variant name",
        "lora=" + str(model): "'lora' is a built-in variant name",
        "my merge=" + str(model): "the name 'my merge' must start with a letter or digit",
        "-x=" + str(model): "the name '-x' must start",
        "mine=": "expected a method name or NAME=PATH",
        "mine=" + str(tmp_path / "nowhere"): "nothing at",
        "mine=" + str(tmp_path): "is not a model directory (no modules.json or config.json",
        "soupy": "unknown method(s) soupy; known: ",
    }
    (tmp_path / "notes.txt").write_text("")
    bad["mine=" + str(tmp_path / "notes.txt")] = "is a file but not a mergekit recipe"
    for text, message in bad.items():
        with pytest.raises(InvalidInputError, match=re.escape(message)):
            split_variants([text])
    other = tmp_path / "merged2"
    shutil.copytree(model, other)
    with pytest.raises(InvalidInputError, match="the name 'mine' is given twice"):
        split_variants([f"mine={model}", f"mine={other}"])


def test_a_merge_of_the_base_fits_and_another_base_of_the_same_shapes_is_refused(berts):
    assert base_differences(berts / "near", berts / "base") == []
    assert base_differences(berts / "base", berts / "base") == []
    for far in ("other", "far"):
        (line,) = base_differences(berts / far, berts / "base")
        assert line.startswith("weights: ") and "not a merge of this base" in line
    # the cosines named are the closed form's: 1/sqrt(1 + 3²) for the far copy's matrices
    cosines = [float(c) for c in re.findall(r"cosine ([+-]\d\.\d\d)", base_differences(berts / "far", berts / "base")[0])]
    assert cosines and all(abs(c - 1 / math.sqrt(10)) < 0.05 for c in cosines), cosines
    assert MIN_WEIGHT_COSINE == 0.5
    with pytest.raises(IncompatibleModelsError, match=r"^mine .* is not a merge of the base model 'tiny': weights"):
        check_same_base(berts / "other", berts / "base", "mine '…'", base_name="tiny")


def test_config_vocabulary_and_shapes_are_named(berts, tmp_path):
    d = tmp_path / "act"
    shutil.copytree(berts / "near", d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["hidden_act"], cfg["layer_norm_eps"], cfg["transformers_version"] = "relu", 1e-5, "0.0"
    (d / "config.json").write_text(json.dumps(cfg))
    assert base_differences(d, berts / "base") == ["config.json hidden_act: base 'gelu', this model 'relu'",
                                                   "config.json layer_norm_eps: base 1e-12, this model 1e-05"]
    v = tmp_path / "vocab"
    shutil.copytree(berts / "near", v)
    tok = json.loads((v / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    a, b = list(vocab)[10:12]
    vocab[a], vocab[b] = vocab[b], vocab[a]  # same size, two ids swapped
    (v / "tokenizer.json").write_text(json.dumps(tok))
    (line,) = base_differences(v, berts / "base")
    assert re.fullmatch(r"tokenizer vocabulary: base (\d+) tokens, this model \1; 2 of the base's tokens are "
                        r"missing or have another id", line), line
    lines = base_differences(berts / "qwen3", berts / "base")
    assert "config.json model_type: base 'bert', this model 'qwen3'" in lines
    assert lines[-1].startswith("tensors: this model has no tensor")
