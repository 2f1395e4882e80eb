"""What a LoRA run of ``train_lora`` holds in memory, predicted from the model's shape and the recipe.

``lora_memory(shape, ...)`` adds up, in bytes:

- ``weights``: every parameter of the transformer in the weights' dtype (float32 on a CPU,
  bfloat16 on CUDA), frozen;
- ``lora``: the LoRA matrices of the trained layers (r·(in + out) per targeted linear layer), in
  float32, with their gradients and AdamW's two moments: 16 bytes a parameter;
- ``saved``: what autograd keeps for the backward pass of one micro-batch of T padded tokens. Only
  the trained (top) layers keep anything: the frozen layers below run with inputs that need no
  gradient. With gradient checkpointing each trained layer keeps its input (T·hidden); without,
  every trained layer keeps its full activations;
- ``working``: one layer's full activations for the micro-batch, on top: the layer running in the
  forward pass, or with checkpointing the layer recomputed in the backward pass;
- ``batch``: the SupCon pass-1 embeddings and their gradient (n × dim × 2, float32).

Full activations of one layer for T tokens (decoder layer: RMSNorm, q/k/v/o, gated MLP; the
accounting of Korthikanti et al. 2022, arXiv:2205.05198, for a gated MLP of width I, with
attention by SDPA — flash / memory-efficient kernels keep no T×T score matrix on CUDA):
``T · act_bytes · (10·hidden + 2·kv_heads·head_dim + 4·I)``, plus on a CPU the attention
probabilities ``heads · L² · act_bytes`` per sequence of L tokens (the math kernel keeps them).
It is an estimate (allocator slack, framework overhead and fragmentation come on top:
``overhead``); ``bench/adapt.py`` prints it beside the measured peak of the replica.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ModelShape", "lora_memory", "MISTRAL_7B", "QWEN2_7B", "shape_of"]


@dataclass(frozen=True)
class ModelShape:
    """A transformer's shape: enough to count its parameters and activations."""

    name: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    gated_mlp: bool = True  # gate, up, down (Llama, Mistral, Qwen, Gemma); False: up, down (BERT)
    norms: int = 2  # RMSNorms a layer (Gemma 2 / 3: 4)
    attn_bias: bool = False  # q/k/v biases (Qwen2)
    qk_norm: bool = False  # per-head q and k norms (Qwen3, Gemma 3)

    def linears(self) -> list[tuple[int, int]]:
        """(in, out) of each linear layer of one transformer layer."""
        h, q, kv, i = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        attn = [(h, q), (h, kv), (h, kv), (q, h)]
        return attn + ([(h, i), (h, i), (i, h)] if self.gated_mlp else [(h, i), (i, h)])

    def params(self) -> int:
        """Parameters of the decoder backbone (no LM head): exact for Llama, Mistral, Qwen2/3 and Gemma 2/3."""
        per_layer = sum(a * b for a, b in self.linears()) + self.norms * self.hidden
        if self.attn_bias:
            per_layer += (self.heads + 2 * self.kv_heads) * self.head_dim
        if self.qk_norm:
            per_layer += 2 * self.head_dim
        return self.vocab * self.hidden + self.layers * per_layer + self.hidden


# e5-mistral-7b-instruct: 7,110,660,096 parameters, gte-Qwen2-7B-instruct: 7,069,121,024 (mteb's counts; params()
# gives both exactly)
MISTRAL_7B = ModelShape("Mistral-7B (e5-mistral-7b-instruct)", layers=32, hidden=4096, intermediate=14336, heads=32,
                        kv_heads=8, head_dim=128, vocab=32000)
QWEN2_7B = ModelShape("Qwen2-7B (gte-Qwen2-7B-instruct)", layers=28, hidden=3584, intermediate=18944, heads=28,
                      kv_heads=4, head_dim=128, vocab=151646, attn_bias=True)


def shape_of(config: Any, name: str = "model") -> ModelShape:
    """The ``ModelShape`` of a transformers config."""
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    kind = getattr(config, "model_type", "")
    return ModelShape(name, int(config.num_hidden_layers), int(config.hidden_size), int(config.intermediate_size),
                      heads, int(getattr(config, "num_key_value_heads", None) or heads), head_dim,
                      int(config.vocab_size), gated_mlp=kind not in ("bert", "xlm-roberta"),
                      norms=4 if kind.startswith(("gemma2", "gemma3")) else 2, attn_bias=kind == "qwen2",
                      qk_norm=kind in ("qwen3", "gemma3_text", "gemma3"))


def lora_memory(shape: ModelShape, *, tokens: int, seq_len: int, texts: int, top_layers: int | None, r: int = 16,
                checkpointing: bool = True, weight_bytes: int = 4, act_bytes: int = 4, cuda: bool = False,
                dim: int | None = None, overhead: float = 0.5e9) -> dict[str, Any]:
    """Predicted bytes of a LoRA step (see the module docstring): ``tokens`` padded tokens a micro-batch in
    sequences of ``seq_len``, ``texts`` texts a batch, LoRA of rank ``r`` on every linear layer of the top
    ``top_layers`` layers (None: all). Returns each part, ``total`` and the inputs."""
    trained = shape.layers if top_layers is None else min(top_layers, shape.layers)
    lora_params = trained * sum(r * (a + b) for a, b in shape.linears())
    full_layer = tokens * act_bytes * (10 * shape.hidden + 2 * shape.kv_heads * shape.head_dim
                                       + 4 * shape.intermediate)
    if not cuda:  # the CPU's SDPA math kernel keeps the attention probabilities
        full_layer += (tokens // max(1, seq_len)) * shape.heads * seq_len * seq_len * act_bytes
    saved = trained * tokens * shape.hidden * act_bytes if checkpointing else trained * full_layer
    parts = {
        "weights": shape.params() * weight_bytes,
        "lora": lora_params * 16,
        "saved": saved,
        "working": full_layer,
        "batch": texts * (dim or shape.hidden) * 4 * 2,
        "overhead": int(overhead),
    }
    return {**parts, "total": sum(parts.values()), "lora_params": lora_params, "params": shape.params(),
            "inputs": {"shape": asdict(shape), "tokens": tokens, "seq_len": seq_len, "texts": texts,
                       "top_layers": top_layers, "r": r, "checkpointing": checkpointing,
                       "weight_bytes": weight_bytes, "act_bytes": act_bytes, "cuda": cuda}}
