"""Model merging: one module per method, a registry (``METHODS``), in-memory and streaming merges, diagnostics.

Methods (``METHODS[name]``, each module documents its formula and reference): ``linear``
(model soup), ``slerp``, ``nuslerp``, ``multislerp``, ``karcher``, ``task_arithmetic``,
``ties``, ``dare_linear``, ``dare_ties``, ``model_stock``. Entry points:

- ``slerp(a, b, t, *, granularity="tensor", dot_threshold=0.9995, eps=1e-8)`` on two tensors;
- ``merge_state_dicts(method, models, base=None, *, weights=None, **params)`` in memory;
- ``merge_files(method, paths, out_dir, base=None, *, weights=None, **params)`` streams
  safetensors tensor by tensor and writes a complete sentence-transformers directory;
- ``merge_diagnostics(a, b, base=None)`` / ``adapter_share(merged, base, adapter)``.

Importing this package is cheap: torch loads when one of these names is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from geomcheck.errors import IncompatibleModelsError, MergeError, UnknownMergeMethodError
from geomcheck.merge._base import MergeMethod

__all__ = [
    "METHODS",
    "MergeMethod",
    "MergeError",
    "IncompatibleModelsError",
    "UnknownMergeMethodError",
    "slerp",
    "merge_state_dicts",
    "merge_files",
    "MergedFiles",
    "lazy_state_dict",
    "merge_diagnostics",
    "adapter_share",
    "MergeDiagnostics",
    "TensorDiagnostics",
    "AdapterShare",
]

_LAZY = {
    "METHODS": "geomcheck.merge.registry",
    "get_method": "geomcheck.merge.registry",
    "slerp": "geomcheck.merge.methods.slerp",
    "merge_state_dicts": "geomcheck.merge.core",
    "plan_merge": "geomcheck.merge.core",
    "merge_files": "geomcheck.merge.files",
    "MergedFiles": "geomcheck.merge.files",
    "lazy_state_dict": "geomcheck.merge.reader",
    "merge_diagnostics": "geomcheck.merge.diagnostics",
    "adapter_share": "geomcheck.merge.diagnostics",
    "MergeDiagnostics": "geomcheck.merge.diagnostics",
    "TensorDiagnostics": "geomcheck.merge.diagnostics",
    "AdapterShare": "geomcheck.merge.diagnostics",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'geomcheck.merge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
