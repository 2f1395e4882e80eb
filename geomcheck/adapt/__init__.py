"""The adapt stage: fine-tune a base model with LoRA and build its merged variants.

- ``geomcheck.adapt.tasks``: what a run learns — ``WindowTask`` (sequence windows, the default)
  and ``TextTask`` (the train split of your own labelled texts);
- ``geomcheck.adapt.lora``: ``train_lora`` → ``LoraRun``, ``load_adapter``, ``merge_lora``,
  ``evaluate``, ``supcon_loss``;
- ``geomcheck.adapt.variants``: ``build_variants`` (base, lora, soup, slerp, … as full model
  directories), ``save_with_adapter``;
- ``geomcheck.adapt.cached``: the LoRA run and the variants kept on disk once per base
  model and settings, safe under several processes (pytest-xdist workers).

Importing this package loads numpy only; torch and peft load when a model is trained.
"""

from __future__ import annotations

from geomcheck.adapt.lora import (
    LoraRun,
    evaluate,
    load_adapter,
    merge_lora,
    supcon_loss,
    train_lora,
)
from geomcheck.adapt.tasks import TextTask, WindowTask

__all__ = ["WindowTask", "TextTask", "LoraRun", "train_lora", "load_adapter", "merge_lora", "evaluate", "supcon_loss"]
