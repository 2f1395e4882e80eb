"""``model+adapter`` in a recipe: a model directory with a peft LoRA adapter merged into its weights, on disk.

``W' = W + s·B·A`` for every adapted tensor (``s = lora_alpha / r``, ``lora_alpha / √r`` with
``use_rslora``; ``Bᵀ``/``Aᵀ`` swapped for ``fan_in_fan_out``), written tensor by tensor through the
merge engine, so it streams like a merge and keeps the model's whole directory (pipeline,
tokenizer). An adapter module is matched to the model tensor whose name ends with its path
(peft prefixes ``base_model.model.``; a sentence-transformers model saves its transformer without
the ``model.`` a causal LM has). What this does not do is refused: DoRA, per-module ranks
(``rank_pattern``/``alpha_pattern``), ``modules_to_save``, and an adapter module that matches no
tensor or several.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geomcheck.errors import MergeError

__all__ = ["merge_lora_into"]


def _read_adapter(adapter: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg_file, weights = adapter / "adapter_config.json", adapter / "adapter_model.safetensors"
    if not cfg_file.is_file():
        raise MergeError(f"{str(adapter)!r} is not a peft adapter (no adapter_config.json).")
    if not weights.is_file():
        raise MergeError(f"{str(adapter)!r} has no adapter_model.safetensors (save it with safe_serialization).")
    cfg = json.loads(cfg_file.read_text())
    for key, why in (("use_dora", "DoRA"), ("rank_pattern", "per-module ranks"), ("alpha_pattern", "per-module alphas"),
                     ("modules_to_save", "modules_to_save (whole modules trained beside the LoRA)")):
        if cfg.get(key):
            raise MergeError(f"{str(adapter)!r} uses {why} ({key} in adapter_config.json), which a recipe's "
                             "MODEL+ADAPTER does not merge; merge it with peft's merge_and_unload and pass the directory.")
    from safetensors import safe_open

    tensors: dict[str, Any] = {}
    with safe_open(str(weights), framework="pt") as f:
        for k in f.keys():
            tensors[k] = f.get_tensor(k)
    return cfg, tensors


def _match(module: str, names: Sequence[str]) -> str:
    """The model tensor ``<...>.<module>.weight`` the adapter module ``module`` adapts (suffix match by dotted parts)."""
    parts = module.split(".")
    for start in range(len(parts)):
        want = ".".join(parts[start:]) + ".weight"
        hits = [n for n in names if n == want or n.endswith("." + want)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            continue
    raise MergeError(f"the adapter's module {module!r} matches no single weight of the model; is the adapter for "
                     "this model?")


class _LoraPlan:
    def __init__(self, deltas: dict[str, tuple[Any, Any]], scale: float, fan_in_fan_out: bool):
        self.deltas, self.scale, self.fan_in_fan_out = deltas, scale, fan_in_fan_out

    def merge_tensor(self, name: str, tensors: Sequence[Any], base: Any = None) -> Any:
        import torch

        w = tensors[0]
        if name not in self.deltas:
            return w
        a, b = self.deltas[name]
        delta = (b.to(torch.float32) @ a.to(torch.float32)) * self.scale
        if self.fan_in_fan_out:
            delta = delta.T
        if tuple(delta.shape) != tuple(w.shape):
            raise MergeError(f"the adapter's update of {name!r} has shape {tuple(delta.shape)}, the model's tensor "
                             f"{tuple(w.shape)}; the adapter was trained on another model.")
        return (w.to(torch.float32) + delta).to(w.dtype).contiguous()


def merge_lora_into(model_dir: Path, adapter: Path, out_dir: Path) -> Path:
    """``out_dir``: ``model_dir`` with ``adapter`` merged into its weights (module doc)."""
    from geomcheck.merge.files import write_merge
    from geomcheck.merge.reader import LazyStateDict, weight_groups

    cfg, tensors = _read_adapter(Path(adapter))
    r, alpha = cfg.get("r"), cfg.get("lora_alpha", cfg.get("r"))
    if not isinstance(r, int) or r < 1:
        raise MergeError(f"{str(adapter)!r}: adapter_config.json has no positive rank r.")
    scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    groups = weight_groups(model_dir)
    main = "model.safetensors" if "model.safetensors" in groups else next(iter(groups))
    names = list(LazyStateDict(groups[main], str(model_dir)).entries)
    modules: dict[str, dict[str, Any]] = {}
    for key, t in tensors.items():
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in key:
                module = key.split(marker)[0]
                for prefix in ("base_model.model.",):
                    if module.startswith(prefix):
                        module = module[len(prefix):]
                modules.setdefault(module, {})[part] = t
                break
        else:
            if "lora_embedding" in key or "lora_magnitude" in key:
                raise MergeError(f"{str(adapter)!r} holds {key!r}, which a recipe's MODEL+ADAPTER does not merge.")
    deltas = {}
    for module, ab in modules.items():
        if set(ab) != {"lora_A", "lora_B"}:
            raise MergeError(f"{str(adapter)!r}: module {module!r} has no {'lora_B' if 'lora_A' in ab else 'lora_A'}.")
        deltas[_match(module, names)] = (ab["lora_A"], ab["lora_B"])
    if not deltas:
        raise MergeError(f"{str(adapter)!r} holds no LoRA weights (lora_A / lora_B).")
    plan = _LoraPlan(deltas, float(scale), bool(cfg.get("fan_in_fan_out")))
    write_merge([Path(model_dir)], None, out_dir, lambda _names: plan, method="lora",
                params={"adapter": str(adapter), "r": r, "lora_alpha": alpha},
                provenance={"method": "lora", "model": str(model_dir), "adapter": str(adapter)},
                labels=[f"model ({model_dir})"])
    return Path(out_dir)
