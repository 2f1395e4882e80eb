"""How a LoRA run is trained, per kind, depth and size of model: encoder, decoder and their "-large" forms.

``train_lora`` (and the suites, ``geomcheck merges``) take their defaults from
``recipe_for(model)``; any argument given explicitly wins. The decoder recipe exists because a
decoder LLM on a CPU is ~10x an encoder's cost per text: SmolLM2-135M has 30 layers and a
digit-level tokenizer (a 20-term window is ~120 tokens), so the encoder recipe (48 windows of
10-30 terms a step, LoRA on every layer) took 716 s of training on a 2-core CPU. The decoder
recipe trains on fewer, shorter windows and puts LoRA on the top layers only (the backward pass
then stops there), with a higher learning rate; measured with ``bench/adapt.py --model
smollm2-135m`` (numbers in its docstring).

A model is a decoder when its ``ModelSpec.kind`` is "llm", or, for a model outside the
registry, when its pipeline pools the last token or its transformer config says it is a
causal LM.

Deep or large models get the "-large" form of their kind's recipe (``is_large``): an encoder of
more than 12 layers or more than 150M parameters (EmbeddingGemma-300M: 24 layers; MiniLM has 6),
a decoder of more than 300M parameters (SmolLM2-135M stays on "decoder"). It trains the decoder
recipe's short windows with LoRA on the top 8 layers only and gradient checkpointing: the
encoder recipe on a random-weight EmbeddingGemma-300M replica was killed by the OOM killer at
17.4 GB; ``bench/adapt.py --model replica`` prints what the large recipe takes. Every recipe
bounds memory by splitting a step's batch into micro-batches of at most ``token_budget``
padded tokens (``geomcheck.adapt.microbatch``); the batches of "encoder" and "decoder" fit one
micro-batch, so MiniLM and SmolLM2 train exactly as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from geomcheck.adapt.tasks import WindowTask
from geomcheck.errors import InvalidInputError

__all__ = ["Recipe", "RECIPES", "recipe_for", "is_decoder", "is_large", "model_size"]


@dataclass(frozen=True)
class Recipe:
    """LoRA settings and the window task's training draws for one kind of model."""

    name: str
    r: int
    alpha: int
    lr: float
    max_steps: int
    max_seq_length: int  # of the training batches only
    top_layers: int | None  # LoRA on the top N transformer layers (None: all)
    per_family: int  # windows of each family a step
    lengths: tuple[int, int]  # terms of a training window
    checkpointing: bool = False  # gradient checkpointing of the transformer layers (recompute in backward)

    def task(self) -> WindowTask:
        """The window task with this recipe's training draws (its evaluation sets are the default ones)."""
        return WindowTask(per_family=self.per_family, lengths=self.lengths)

    def train_kwargs(self) -> dict[str, Any]:
        """``train_lora`` keyword arguments of this recipe (the task under ``train_data``)."""
        return {"r": self.r, "alpha": self.alpha, "lr": self.lr, "max_steps": self.max_steps,
                "max_seq_length": self.max_seq_length, "top_layers": self.top_layers, "train_data": self.task()}

    def describe(self) -> dict[str, Any]:
        return asdict(self)


RECIPES: dict[str, Recipe] = {
    # MiniLM (6 layers, 2-core CPU): task-window silhouette +0.39..+0.44 in ~35 s.
    "encoder": Recipe("encoder", r=16, alpha=16, lr=3e-3, max_steps=17, max_seq_length=128, top_layers=None,
                      per_family=8, lengths=(10, 30)),
    # SmolLM2-135M (30 layers): LoRA on the top 10 only, 24 windows of 8-16 terms a step, lr 1e-2.
    "decoder": Recipe("decoder", r=16, alpha=16, lr=1e-2, max_steps=20, max_seq_length=64, top_layers=10,
                      per_family=4, lengths=(8, 16)),
    # deep / large encoders (EmbeddingGemma-300M): the decoder recipe's draws, top 8 layers, checkpointing
    "encoder-large": Recipe("encoder-large", r=16, alpha=16, lr=1e-2, max_steps=20, max_seq_length=64, top_layers=8,
                            per_family=4, lengths=(8, 16), checkpointing=True),
    # large decoders (0.6B-9B): the same; on CUDA in bfloat16 (geomcheck.adapt.memory predicts a 7B's memory)
    "decoder-large": Recipe("decoder-large", r=16, alpha=16, lr=1e-2, max_steps=20, max_seq_length=64, top_layers=8,
                            per_family=4, lengths=(8, 16), checkpointing=True),
}
LARGE_ENCODER_LAYERS = 12
LARGE_ENCODER_PARAMS = 150_000_000
LARGE_DECODER_PARAMS = 300_000_000


def is_decoder(model: Any) -> bool:
    """Whether ``model`` (an ``Embedder``) is a decoder LLM: registry kind "llm", else last-token pooling
    or a causal-LM transformer config."""
    spec = getattr(model, "spec", None)
    if spec is not None:
        return spec.kind == "llm"
    st = getattr(model, "model", None)
    try:
        modules = list(st) if st is not None else []
    except TypeError:
        modules = []
    for m in modules:
        mode = getattr(m, "pooling_mode", None) or getattr(m, "get_pooling_mode_str", lambda: None)()
        if mode in ("lasttoken", "last_token"):
            return True
        config = getattr(getattr(m, "auto_model", None), "config", None)
        if config is not None and (getattr(config, "is_decoder", False) or any(
                a.endswith("ForCausalLM") for a in (getattr(config, "architectures", None) or ()))):
            return True
    return False


def model_size(model: Any) -> tuple[int | None, int]:
    """(transformer layers from the config or None, parameters) of an ``Embedder``'s pipeline."""
    st = getattr(model, "model", None)
    try:
        modules = list(st) if st is not None else []
    except TypeError:
        modules = []
    layers = None
    for m in modules:
        config = getattr(getattr(m, "auto_model", None), "config", None)
        n = getattr(config, "num_hidden_layers", None) if config is not None else None
        if isinstance(n, int):
            layers = n
            break
    params = sum(p.numel() for p in st.parameters()) if hasattr(st, "parameters") else 0
    return layers, params


def is_large(model: Any, decoder: bool | None = None) -> bool:
    """Whether ``model`` gets the "-large" recipe: an encoder of more than ``LARGE_ENCODER_LAYERS`` layers or
    ``LARGE_ENCODER_PARAMS`` parameters, a decoder of more than ``LARGE_DECODER_PARAMS`` parameters."""
    layers, params = model_size(model)
    if is_decoder(model) if decoder is None else decoder:
        return params > LARGE_DECODER_PARAMS
    return params > LARGE_ENCODER_PARAMS or (layers or 0) > LARGE_ENCODER_LAYERS


def recipe_for(model: Any, name: str = "auto") -> Recipe:
    """The recipe ``name`` ("encoder", "decoder", "encoder-large", "decoder-large"), or with "auto" the one for
    ``model``'s kind, depth and size."""
    if name == "auto":
        decoder = is_decoder(model)
        kind = "decoder" if decoder else "encoder"
        return RECIPES[f"{kind}-large" if is_large(model, decoder) else kind]
    if name not in RECIPES:
        raise InvalidInputError(f"unknown LoRA recipe {name!r}; known: auto, {', '.join(RECIPES)}")
    return RECIPES[name]
