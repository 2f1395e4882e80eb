"""Plain JSON from measured values: the one NaN → null conversion of reports, records and fingerprints."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["jsonable", "nan_if_none"]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: non-finite floats → None, numpy scalars → Python numbers, tuples →
    lists, mapping keys → str, anything else that JSON has no type for → ``str(value)``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return jsonable(value.item())
    if isinstance(value, Mapping):
        return {str(k): jsonable(x) for k, x in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(x) for x in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def nan_if_none(value: Any) -> float:
    """The inverse for one number: None (a stored NaN) → NaN, else ``float(value)``."""
    return float("nan") if value is None else float(value)
