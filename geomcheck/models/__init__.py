"""The models stage: the registry of the paper's models, loading, and the ``Embedder``.

``REGISTRY`` maps aliases to ``ModelSpec`` (``spec``, ``registry``); ``load_model(name_or_path)``
(``loading``; pipelines in ``_pipeline``, SmolLM2's GGUF in ``gguf``) returns an ``Embedder``
(``embedder``: device, dtype, batching, fingerprint, cache) whose ``embed(dataset)`` gives an
``EmbeddedDataset``. Importing this package is light (no torch until a model is loaded).
"""

from __future__ import annotations

from typing import Any

from geomcheck.models.loading import load_model, model_id, model_ids, model_kind, resolve
from geomcheck.models.registry import REGISTRY
from geomcheck.models.spec import ModelSpec, PaperResult

__all__ = ["REGISTRY", "ModelSpec", "PaperResult", "Embedder", "EmbeddedDataset", "load_model", "model_id", "model_ids",
           "model_kind", "resolve"]


def __getattr__(name: str) -> Any:
    if name in ("Embedder", "EmbeddedDataset"):  # numpy: only when asked for
        from geomcheck.models import embedder

        return getattr(embedder, name)
    raise AttributeError(f"module 'geomcheck.models' has no attribute {name!r}")
