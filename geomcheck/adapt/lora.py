"""LoRA fine-tuning with SupCon (peft), with checkpoints and before/after geometry.

Each step draws a batch of the task (``geomcheck.adapt.tasks``) and minimises the supervised
contrastive loss (SupCon, Khosla et al. 2020) on the L2-normalised sentence embeddings. The
default task is "cluster sequence windows by family" (``WindowTask``: fresh windows of 10–30
terms at starts of a training range; the gain is measured on windows at starts training never
draws); ``TextTask`` trains on the train split of your own labelled texts and measures on
its test split.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from geomcheck.adapt.adapter_base import quiet_peft
from geomcheck.adapt.microbatch import TRAIN_TOKEN_BUDGETS, supcon_step
from geomcheck.adapt.tasks import TextTask, WindowTask
from geomcheck.errors import InvalidInputError

__all__ = ["WindowTask", "TextTask", "LoraRun", "train_lora", "load_adapter", "merge_lora", "evaluate", "supcon_loss"]


@dataclass(frozen=True)
class LoraRun:
    """What ``train_lora`` produced: adapter and checkpoint dirs, losses, timings, geometry before/after."""

    adapter_dir: Path
    checkpoint_dirs: tuple[Path, ...]
    loss_history: tuple[float, ...]
    wall_time: float
    base: str
    settings: dict[str, Any]
    before: dict[str, dict[str, float]] = field(default_factory=dict)
    after: dict[str, dict[str, float]] = field(default_factory=dict)
    eval_seconds: dict[str, float] = field(default_factory=dict)  # {"before": s, "after": s}

    def gain(self, dataset: str = "task", metric: str = "silhouette") -> float:
        return self.after[dataset][metric] - self.before[dataset][metric]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["adapter_dir"] = str(self.adapter_dir)
        d["checkpoint_dirs"] = [str(p) for p in self.checkpoint_dirs]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoraRun:
        """Inverse of ``to_dict`` (``lora_run.json``)."""
        return cls(Path(d["adapter_dir"]), tuple(Path(p) for p in d["checkpoint_dirs"]),
                   tuple(float(x) for x in d["loss_history"]), float(d["wall_time"]), str(d["base"]),
                   dict(d["settings"]), dict(d.get("before") or {}), dict(d.get("after") or {}),
                   dict(d.get("eval_seconds") or {}))


def supcon_loss(z: Any, labels: Any, temperature: float = 0.1) -> Any:
    """Supervised contrastive loss (Khosla et al. 2020, eq. 2, "L_out") on L2-normalised rows of ``z``.

    L = mean_i  -1/|P(i)| Σ_{p∈P(i)} log( exp(z_i·z_p/τ) / Σ_{a≠i} exp(z_i·z_a/τ) ),
    P(i) = the other rows with the same label.
    """
    import torch

    z = torch.nn.functional.normalize(z, dim=1)
    sim = z @ z.T / temperature
    n = z.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = pos.sum(1)
    per_anchor = -(log_prob.masked_fill(~pos, 0.0).sum(1)) / n_pos.clamp(min=1)
    return per_anchor[n_pos > 0].mean()


def evaluate(embedder: Any, sets: dict[str, Any], *, cache: bool = False) -> dict[str, dict[str, float]]:
    """Silhouette and Davies–Bouldin (true labels) of ``embedder`` on each dataset (through the embedding
    cache only with ``cache=True``: never for a model whose weights changed after its fingerprint was taken)."""
    from geomcheck.metrics import davies_bouldin, silhouette

    out = {}
    for name, ds in sets.items():
        X = embedder.encode(ds.texts, cache=cache)
        out[name] = {"silhouette": float(silhouette(X, ds.labels)), "davies_bouldin": float(davies_bouldin(X, ds.labels))}
    return out


def _base_path(model: Any, trust_remote_code: bool = False, dtype: str = "float32") -> tuple[Any, Path, str]:
    """A fresh Embedder of ``model`` (never the caller's: training changes the weights) and its directory.

    An ``Embedder`` brings the consent it was loaded with (its own code may run again); a path runs
    code only with ``trust_remote_code``."""
    from geomcheck.models.embedder import Embedder
    from geomcheck.models import load_model

    if isinstance(model, Embedder):
        if model.source_path is None:
            raise InvalidInputError("train_lora needs a model loaded from a directory (load_model), not one built in memory")
        fresh = load_model(str(model.source_path), device=model.device, dtype=dtype, prompt=model.prompt,
                           cache=False, max_seq_length=model.max_seq_length,
                           trust_remote_code=getattr(model, "trust_remote_code", False))
        fresh.spec = model.spec  # the same model: its registry entry picks the recipe, as for the caller's cache key
        return fresh, model.source_path, model.name
    fresh = load_model(str(model), dtype=dtype, cache=False, trust_remote_code=trust_remote_code)
    return fresh, fresh.source_path, str(model)


def _train_dtype(model: Any) -> str:
    """bfloat16 base weights for training on a CUDA device that has it (LoRA matrices stay float32 and the
    forward runs under bf16 autocast); float32 elsewhere."""
    from geomcheck.models.embedder import Embedder

    device = model.device if isinstance(model, Embedder) else "auto"
    from geomcheck._device import resolve_device

    if not resolve_device(device).startswith("cuda"):
        return "float32"
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"


def train_lora(
    model: Any,
    train_data: WindowTask | TextTask | None = None,
    *,
    out_dir: str | os.PathLike,
    r: int | None = None,
    alpha: int | None = None,
    target_modules: str | Sequence[str] = "all-linear",
    objective: str = "supcon",
    lr: float | None = None,
    max_steps: int | None = None,
    warmup_steps: int = 0,
    temperature: float = 0.1,
    max_grad_norm: float | None = None,
    max_seq_length: int | None = None,
    top_layers: int | None = None,
    recipe: str = "auto",
    seed: int = 0,
    checkpoints: int = 3,
    progress: bool = True,
    evaluate_sets: bool = True,
    gradient_checkpointing: bool | None = None,
    token_budget: int | None = None,
) -> LoraRun:
    """Train a LoRA adapter on ``model`` (alias, path or Embedder) for ``train_data``.

    ``r``, ``alpha``, ``lr``, ``max_steps``, ``max_seq_length``, ``top_layers`` and
    ``train_data`` left at None come from the recipe (``geomcheck.adapt.recipes``: "auto" picks
    the encoder or the decoder recipe by the model's kind). AdamW, linear warmup then cosine
    decay to 0, SupCon with temperature ``temperature``. ``max_seq_length`` truncates the
    training batches only; ``top_layers`` puts LoRA on the top N transformer layers only.
    Saves ``checkpoints`` adapters along the way (``out_dir/checkpoint-<step>``) and the final
    one in ``out_dir/adapter``, all in peft's format. Same seed, same adapter.

    Memory is bounded by design: a step's batch is embedded in micro-batches of at most
    ``token_budget`` padded tokens (None: ``TRAIN_TOKEN_BUDGETS`` of the device) with the SupCon loss
    still over the whole batch (``geomcheck.adapt.microbatch``: two passes when it does not fit one);
    ``gradient_checkpointing`` (None: the recipe's) recomputes each layer's activations in the
    backward pass instead of keeping them. On CUDA the base weights are bfloat16 and the forward runs
    under bf16 autocast (LoRA matrices and the loss in float32). The pipeline's modules after the
    transformer (Dense layers) stay frozen. ``geomcheck.adapt.memory`` predicts the memory of a run.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    from geomcheck.adapt.recipes import recipe_for

    if objective != "supcon":
        raise InvalidInputError(f"objective must be 'supcon' (the only one implemented), got {objective!r}")
    _check_settings(r, alpha, max_steps, checkpoints, lr, temperature, top_layers)  # before loading the model
    if token_budget is not None and (not isinstance(token_budget, int) or isinstance(token_budget, bool)
                                     or token_budget < 1):
        raise InvalidInputError(f"token_budget must be an integer >= 1, got {token_budget!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)
    rng = random.Random(seed)
    emb, base_dir, base_name = _base_path(model, dtype=_train_dtype(model))
    rec = recipe_for(emb, recipe)

    def pick(given: Any, default: Any) -> Any:
        return default if given is None else given

    r, alpha, lr, max_steps = pick(r, rec.r), pick(alpha, rec.alpha), pick(lr, rec.lr), pick(max_steps, rec.max_steps)
    max_seq_length, top_layers = pick(max_seq_length, rec.max_seq_length), pick(top_layers, rec.top_layers)
    task = pick(train_data, rec.task())
    checkpointing = pick(gradient_checkpointing, rec.checkpointing)
    # Truncation applies to the training batches only: evaluation sees the texts as the model
    # normally does (digit-level tokenizers turn a 50-term window into ~250 tokens).
    full_length = emb.model.max_seq_length
    sets = task.eval_sets() if evaluate_sets else {}
    # the base's vectors are those of any other run on this base (the suites have embedded the paper and
    # held-out sets already): read from and kept in the embedding cache, unlike the trained model's below
    t_eval = time.perf_counter()
    before = evaluate(emb, sets, cache=True) if sets else {}
    eval_seconds = {"before": time.perf_counter() - t_eval}

    transformer = emb.model[0]
    layers, pattern = _top_layers(transformer.model, top_layers)
    targets = target_modules if isinstance(target_modules, str) else list(target_modules)
    if layers is not None and isinstance(targets, str):  # peft takes layers_to_transform with a list of names only
        targets = _linear_names(transformer.model) if targets == "all-linear" else [targets]
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, bias="none",
                     layers_to_transform=layers, layers_pattern=pattern)
    for m in list(emb.model)[1:]:  # Dense layers after pooling: not trained, so no gradients kept for them
        for p in m.parameters():
            p.requires_grad_(False)
    checkpointing = checkpointing and _enable_checkpointing(transformer.model)
    with torch.random.fork_rng(devices=[]), quiet_peft():
        torch.manual_seed(seed)  # LoRA's A matrices are initialised randomly
        peft_model = get_peft_model(transformer.model, cfg)
    transformer.model = peft_model
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        span = max(1, max_steps - warmup_steps)
        return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / span))

    save_at = sorted({max(1, round(max_steps * (i + 1) / checkpoints)) for i in range(checkpoints)}) if checkpoints else []
    losses: list[float] = []
    ckpts: list[Path] = []
    device = emb.model.device
    budget = token_budget or TRAIN_TOKEN_BUDGETS.get(device.type, TRAIN_TOKEN_BUDGETS["cpu"])
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and emb.dtype == "bfloat16"
                else contextlib.nullcontext())
    micro_counts: list[int] = []
    t0, cpu0 = time.perf_counter(), time.process_time()
    bar = _progress(progress, max_steps)
    emb.model.max_seq_length = max_seq_length
    emb.model.train()
    try:
        for step in range(max_steps):
            texts, labels = task.batch(rng)
            full = emb.model.preprocess(texts, prompt=emb.prompt or None)
            lengths = [int(n) for n in full["attention_mask"].sum(1)] if "attention_mask" in full else \
                [int(full["input_ids"].shape[1])] * len(texts)

            def embed(idx: list[int]) -> Any:
                feats = full if len(idx) == len(texts) else emb.model.preprocess([texts[i] for i in idx],
                                                                                   prompt=emb.prompt or None)
                feats = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in feats.items()}
                with autocast:
                    return emb.model(feats)["sentence_embedding"]

            opt.zero_grad(set_to_none=True)
            loss, parts = supcon_step(embed, lengths, torch.tensor(labels, device=device), budget,
                                      lambda z, y: supcon_loss(z.float(), y, temperature), device)
            micro_counts.append(parts)
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            opt.step()
            losses.append(float(loss.detach()))
            if step + 1 in save_at:
                ck = out / f"checkpoint-{step + 1}"
                peft_model.save_pretrained(str(ck))
                ckpts.append(ck)
            if bar is not None:
                bar[0].update(bar[1], advance=1, loss=losses[-1])
    finally:
        if bar is not None:
            bar[0].stop()
        emb.model.eval()
        emb.model.max_seq_length = full_length
    adapter = out / "adapter"
    peft_model.save_pretrained(str(adapter))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    t_eval = time.perf_counter()
    after = evaluate(emb, sets) if sets else {}
    eval_seconds["after"] = time.perf_counter() - t_eval
    settings = dict(r=r, alpha=alpha, target_modules=target_modules if isinstance(target_modules, str) else list(target_modules),
                    objective=objective, lr=lr, max_steps=max_steps, warmup_steps=warmup_steps, temperature=temperature,
                    max_grad_norm=max_grad_norm, max_seq_length=max_seq_length, top_layers=top_layers,
                    recipe=rec.name, seed=seed, task=task.describe(),
                    base_dir=str(base_dir), gradient_checkpointing=bool(checkpointing), token_budget=budget,
                    micro_batches=max(micro_counts, default=0), train_dtype=emb.dtype,
                    train_cpu_seconds=round(cpu, 1))  # all threads: on a shared machine, what wall time hides
    run = LoraRun(adapter, tuple(ckpts), tuple(losses), wall, base_name, settings, before, after, eval_seconds)
    (out / "lora_run.json").write_text(json.dumps(run.to_dict(), indent=1, default=str))
    return run


def _check_settings(r: Any, alpha: Any, max_steps: Any, checkpoints: Any, lr: Any, temperature: Any,
                    top_layers: Any) -> None:
    """The training settings given (None: the recipe's), or an ``InvalidInputError`` naming the bad one."""
    for name, v, lo in (("r", r, 1), ("alpha", alpha, 1), ("max_steps", max_steps, 1), ("checkpoints", checkpoints, 0),
                        ("top_layers", top_layers, 1)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < lo):
            raise InvalidInputError(f"{name} must be an integer >= {lo}, got {v!r}")
    if (lr is not None and not lr > 0) or not temperature > 0:
        raise InvalidInputError(f"lr and temperature must be > 0, got lr={lr}, temperature={temperature}")


def _top_layers(model: Any, top: int | None) -> tuple[list[int], str] | tuple[None, None]:
    """(indices of the top ``top`` transformer layers of ``model``, the name of their list: "layers", "layer", …),
    or (None, None) for all layers."""
    import torch

    if top is None:
        return None, None
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    blocks = [name for name, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n]
    if not isinstance(n, int) or n < 1 or not blocks:
        raise InvalidInputError("top_layers: cannot find the model's list of transformer layers "
                                "(config.num_hidden_layers); train all layers (top_layers=None)")
    return list(range(max(0, n - top), n)), blocks[0].rsplit(".", 1)[-1]


def _enable_checkpointing(model: Any) -> bool:
    """Turn on the transformers model's gradient checkpointing (non-reentrant: the layers' inputs need no
    gradient); False where the architecture has none."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        return False
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x; the old name is deprecated
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return True


def _linear_names(model: Any) -> list[str]:
    """The names of the linear layers inside the transformer blocks, as peft's "all-linear" picks them."""
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                   if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] not in ("lm_head", "score")})


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    p = Progress(TextColumn("LoRA"), BarColumn(), TextColumn("step {task.completed}/{task.total}"),
                 TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(),
                 transient=True)  # gone when done: a line left behind splits pytest's progress line
    task_id = p.add_task("train", total=total, loss=float("nan"))
    p.start()
    return p, task_id


def _with_adapter(base: Any, adapter_dir: str | os.PathLike, trust_remote_code: bool = False) -> tuple[Any, Path]:
    from geomcheck.adapt.adapter_base import apply_adapter, check_adapter_base

    emb, base_dir, base_name = _base_path(base, trust_remote_code)
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise InvalidInputError(f"{adapter_dir} is not a peft adapter directory (no adapter_config.json)")
    transformer = emb.model[0]
    check_adapter_base(transformer.model, base_name, base_dir, emb.spec, adapter_dir)
    transformer.model = apply_adapter(transformer.model, adapter_dir, base_name)
    return emb, base_dir


def load_adapter(base: Any, adapter_dir: str | os.PathLike, *, trust_remote_code: bool = False) -> Any:
    """The base model with a peft LoRA adapter merged in, as an ``Embedder`` with its own fingerprint.

    The adapter must have been trained on ``base`` (``adapter_config.json``'s ``base_model_name_or_path``
    names it, a copy of it, or a model with the same weights), else a ``ModelLoadError`` names both."""
    from geomcheck.models.embedder import Embedder
    from geomcheck.models.files import weights_digest_of_dir

    emb, base_dir = _with_adapter(base, adapter_dir, trust_remote_code)
    digest = f"{weights_digest_of_dir(base_dir)}+adapter:{weights_digest_of_dir(adapter_dir)}"
    out = Embedder(emb.model, name=f"{emb.name}+lora", spec=emb.spec, prompt=emb.prompt,
                   batch_size=emb.batch_size, weights_digest=digest)
    out.trust_remote_code = emb.trust_remote_code
    out.tokenizer_fixes = emb.tokenizer_fixes
    return out


def merge_lora(base: Any, adapter_dir: str | os.PathLike) -> dict[str, Any]:
    """The transformer's state dict with the LoRA update W + (α/r)·B·A merged in (keys as in the base)."""
    emb, _ = _with_adapter(base, adapter_dir)
    return {k: v.detach().clone() for k, v in emb.model[0].model.state_dict().items()}
