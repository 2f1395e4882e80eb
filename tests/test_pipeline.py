"""``geomcheck.checks.pipeline``: a variant's sentence-transformers pipeline against its base's, from the files.

The directories are written by hand (JSON files only, no weights): each test changes one part of
a copy of the base and expects exactly that part named, with both values, in the words a user reads.
"""

from __future__ import annotations

import json
import shutil

import pytest

from geomcheck.checks.pipeline import PARTS, assert_same_pipeline, pipeline_differences, read_pipeline
from geomcheck.errors import GeometryAssertionError, InvalidInputError

LEGACY = "sentence_transformers.models."
NEW = "sentence_transformers.sentence_transformer.modules.pooling."


def _write(d, name, obj):
    (d / name).parent.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(json.dumps(obj) if not isinstance(obj, str) else obj)


def _tokenizer(vocab):
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": 0, "content": "[PAD]"}], "normalizer": {"type": "BertNormalizer", "lowercase": True},
            "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": {"type": "TemplateProcessing"},
            "decoder": {"type": "WordPiece"}, "model": {"type": "WordPiece", "vocab": vocab}}


@pytest.fixture
def base(tmp_path):
    """A BGE-like pipeline in the legacy file format: Transformer → CLS Pooling → Dense → Normalize."""
    d = tmp_path / "base"
    _write(d, "modules.json", [{"idx": 0, "name": "0", "path": "", "type": LEGACY + "Transformer"},
                               {"idx": 1, "name": "1", "path": "1_Pooling", "type": LEGACY + "Pooling"},
                               {"idx": 2, "name": "2", "path": "2_Dense", "type": LEGACY + "Dense"},
                               {"idx": 3, "name": "3", "path": "3_Normalize", "type": LEGACY + "Normalize"}])
    _write(d, "1_Pooling/config.json", {"word_embedding_dimension": 8, "pooling_mode_cls_token": True,
                                        "pooling_mode_mean_tokens": False})
    _write(d, "2_Dense/config.json", {"in_features": 8, "out_features": 4, "bias": True,
                                      "activation_function": "torch.nn.modules.activation.Tanh"})
    (d / "3_Normalize").mkdir()
    _write(d, "config_sentence_transformers.json", {"prompts": {"query": "Represent this: ", "document": ""},
                                                    "default_prompt_name": None})
    _write(d, "sentence_bert_config.json", {"max_seq_length": 256, "do_lower_case": False})
    _write(d, "tokenizer_config.json", {"model_max_length": 512})
    _write(d, "config.json", {"model_type": "bert", "max_position_embeddings": 512})
    _write(d, "tokenizer.json", _tokenizer({"[PAD]": 0, "a": 1, "b": 2, "c": 3}))
    return d


@pytest.fixture
def mine(base, tmp_path):
    d = tmp_path / "mine"
    shutil.copytree(base, d)
    return d


def _messages(base, mine):
    return [d.message("mine") for d in pipeline_differences(base, mine)]


def test_an_unchanged_copy_has_no_difference(base, mine):
    assert pipeline_differences(base, mine) == []
    assert assert_same_pipeline(base, mine, name="mine") == []
    p = read_pipeline(base)
    assert set(PARTS) <= set(p.values)
    assert (p.values["pooling"], p.values["normalize"], p.values["dense"]) == ("cls", "yes", "8→4 Tanh")
    assert p.values["prompts"] == '{"query": "Represent this: "}' and p.values["max_seq_length"] == "256"
    assert p.values["tokenizer"].startswith("4 tokens, digest ")


def test_the_new_file_format_of_the_same_pipeline_is_the_same(base, mine):
    # sentence-transformers 6 writes "pooling_mode" instead of the legacy flags, other module type paths,
    # max_seq_length into the tokenizer config, and empty prompts: none of that changes an embedding
    modules = json.loads((mine / "modules.json").read_text())
    for m in modules:
        m["type"] = NEW + m["type"].rsplit(".", 1)[-1]
    _write(mine, "modules.json", modules)
    _write(mine, "1_Pooling/config.json", {"embedding_dimension": 8, "pooling_mode": "cls", "include_prompt": True})
    _write(mine, "sentence_bert_config.json", {"transformer_task": "feature-extraction"})
    _write(mine, "tokenizer_config.json", {"model_max_length": 256})
    _write(mine, "config_sentence_transformers.json", {"prompts": {"query": "Represent this: ", "document": ""},
                                                       "similarity_fn_name": "cosine"})
    assert pipeline_differences(base, mine) == []


def test_a_listed_pooling_folder_that_is_gone_names_the_pooling(base, mine):
    shutil.rmtree(mine / "1_Pooling")  # FlagEmbedding#311: the merged BGE lost its 1_Pooling folder
    assert _messages(base, mine) == ["pooling: base cls, mine missing: 1_Pooling is listed in modules.json but its "
                                     "folder is missing (the model cannot load)"]
    with pytest.raises(GeometryAssertionError) as info:
        assert_same_pipeline(base, mine, name="mine")
    first = str(info.value).splitlines()[0]
    assert first.startswith("pooling: base cls, mine missing") and info.value.metric == "pipeline"
    assert "differs from the base's in 1 part" in str(info.value)


def test_a_pooling_module_dropped_from_modules_json_names_the_pooling(base, mine):
    shutil.rmtree(mine / "1_Pooling")
    modules = [m for m in json.loads((mine / "modules.json").read_text()) if not m["type"].endswith("Pooling")]
    _write(mine, "modules.json", modules)
    assert _messages(base, mine) == ["pooling: base cls, mine none: no Pooling module in modules.json (1_Pooling "
                                     "missing): the pipeline yields no sentence embedding"]


def test_another_pooling_mode_and_an_excluded_prompt(base, mine):
    _write(mine, "1_Pooling/config.json", {"word_embedding_dimension": 8, "pooling_mode_mean_tokens": True})
    assert _messages(base, mine) == ["pooling: base cls, mine mean"]
    _write(mine, "1_Pooling/config.json", {"embedding_dimension": 8, "pooling_mode": "cls", "include_prompt": False})
    assert _messages(base, mine) == ["pooling: base cls, mine cls, prompt excluded"]


def test_no_modules_json_is_a_directory_the_loader_builds_a_default_pipeline_for(base, mine):
    # what mergekit writes (#286): weights, config and tokenizer, no pipeline
    for f in ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json"):
        (mine / f).unlink()
    for d in ("1_Pooling", "2_Dense", "3_Normalize"):
        shutil.rmtree(mine / d)
    got = {d.part: d for d in pipeline_differences(base, mine)}
    assert list(got) == ["modules", "pooling", "dense", "normalize", "prompts", "max_seq_length"]
    assert got["modules"].variant == "none" and "no modules.json" in got["modules"].why
    assert got["pooling"].message("mine").startswith("pooling: base cls, mine default: no modules.json")
    assert got["max_seq_length"].message("mine") == "max_seq_length: base 256, mine 512"  # the tokenizer's own


def test_dense_normalize_prompts_length_lowercase_and_similarity(base, mine):
    _write(mine, "2_Dense/config.json", {"in_features": 8, "out_features": 6, "bias": False,
                                         "activation_function": "torch.nn.modules.linear.Identity"})
    assert _messages(base, mine) == ["dense: base 8→4 Tanh, mine 8→6 Identity, no bias"]
    shutil.copytree(base, mine, dirs_exist_ok=True)
    _write(mine, "modules.json", [m for m in json.loads((base / "modules.json").read_text())
                                  if not m["type"].endswith("Normalize")])
    assert _messages(base, mine) == ["normalize: base yes, mine no"]  # not a "modules" line besides
    shutil.copytree(base, mine, dirs_exist_ok=True)
    _write(mine, "config_sentence_transformers.json", {"prompts": {"query": "q: "}, "default_prompt_name": "query",
                                                       "similarity_fn_name": "dot"})
    _write(mine, "sentence_bert_config.json", {"max_seq_length": 128, "do_lower_case": True})
    assert _messages(base, mine) == ['prompts: base {"query": "Represent this: "}, mine {"query": "q: "}',
                                     "default prompt: base none, mine query", "similarity: base cosine, mine dot",
                                     "max_seq_length: base 256, mine 128", "lowercase: base no, mine yes"]


def test_modules_in_another_order(base, mine):
    modules = json.loads((base / "modules.json").read_text())
    modules[2], modules[3] = modules[3], modules[2]  # normalise before the Dense layer
    _write(mine, "modules.json", modules)
    assert _messages(base, mine) == ["modules: base Transformer → Pooling → Dense → Normalize, "
                                     "mine Transformer → Pooling → Normalize → Dense"]


def test_the_tokenizer_names_the_section_that_differs(base, mine):
    _write(mine, "tokenizer.json", _tokenizer({"[PAD]": 0, "a": 1, "c": 2, "b": 3}))  # same size, other ids
    (d,) = pipeline_differences(base, mine)
    assert d.part == "tokenizer" and d.why == "differs in model"
    assert d.base.startswith("4 tokens") and d.variant.startswith("4 tokens") and d.base != d.variant
    doc = _tokenizer({"[PAD]": 0, "a": 1, "b": 2, "c": 3})
    doc["normalizer"]["lowercase"] = False
    _write(mine, "tokenizer.json", doc)
    assert pipeline_differences(base, mine)[0].why == "differs in normalizer"


def test_a_transformer_in_a_module_folder_and_vocab_files(tmp_path):
    # older sentence-transformers saved the transformer under 0_Transformer/, some tokenizers have vocab.txt only
    d = tmp_path / "old"
    _write(d, "modules.json", [{"idx": 0, "name": "0", "path": "0_Transformer", "type": LEGACY + "Transformer"},
                               {"idx": 1, "name": "1", "path": "1_Pooling", "type": LEGACY + "Pooling"}])
    _write(d, "1_Pooling/config.json", {"word_embedding_dimension": 8, "pooling_mode_mean_tokens": True})
    _write(d, "0_Transformer/sentence_bert_config.json", {"max_seq_length": 64})
    _write(d, "0_Transformer/vocab.txt", "[PAD]\na\nb\n")
    p = read_pipeline(d)
    assert (p.values["max_seq_length"], p.values["pooling"]) == ("64", "mean")
    assert p.values["tokenizer"].startswith("3 tokens, digest ")
    e = tmp_path / "other"
    shutil.copytree(d, e)
    _write(e, "0_Transformer/vocab.txt", "[PAD]\nb\na\n")
    assert [x.part for x in pipeline_differences(d, e)] == ["tokenizer"]
    with pytest.raises(InvalidInputError, match="no model directory"):
        read_pipeline(tmp_path / "nowhere")
