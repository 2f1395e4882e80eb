"""Embedding models: the registry of the paper's models and ``load_model``.

``REGISTRY`` maps aliases to ``ModelSpec``; ``load_model(name_or_path)`` returns an
``Embedder``. Importing this package is light (no torch until a model is loaded).
"""

from __future__ import annotations

from geomcheck.models.loading import load_model, model_kind, resolve
from geomcheck.models.registry import REGISTRY
from geomcheck.models.spec import ModelSpec, PaperResult

__all__ = ["REGISTRY", "ModelSpec", "PaperResult", "load_model", "model_kind", "resolve"]
