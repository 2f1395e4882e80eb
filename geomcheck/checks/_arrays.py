"""How a baseline file stores a dataset's embeddings: inline as base64, or in a ``.npy`` file beside it.

Up to ``INLINE_MAX_BYTES`` of float32 (32 MiB: ~21,000 texts at d = 384) the embeddings sit in the JSON
(``{"dtype": "float32-le", "shape": [...], "base64": ...}``), so the file is one self-contained
document. Larger ones would make a JSON of gigabytes, parsed whole: they go to
``<baseline stem>.embeddings.<dataset>.<sha256[:16]>.npy`` beside the file, and the JSON records
``{"dtype", "shape", "file", "sha256"}``. The ``.npy`` is read memory-mapped and checked against its
digest, so a missing, replaced or damaged file is an error naming it, never other embeddings; commit
it with the baseline. Writing a baseline removes the files of its datasets' earlier versions.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from geomcheck.errors import InvalidInputError

__all__ = ["INLINE_MAX_BYTES", "decode_embeddings", "encode_embeddings", "remove_replaced"]

INLINE_MAX_BYTES = 32 * 2**20
_HEX16 = re.compile(r"[0-9a-f]{16}")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "_"


def _prefix(path: Path, dataset: str) -> str:
    return f"{path.stem}.embeddings.{_safe(dataset)}."


def encode_embeddings(X: np.ndarray, path: Path | None = None, dataset: str = "") -> dict[str, Any]:
    """The JSON value for ``X``: inline, or (with the baseline's ``path``, above ``INLINE_MAX_BYTES``) the
    description of the ``.npy`` written beside it (atomically; an identical file is kept)."""
    A = np.ascontiguousarray(X, dtype="<f4")
    if path is None or A.nbytes <= INLINE_MAX_BYTES:
        return {"dtype": "float32-le", "shape": list(A.shape), "base64": base64.b64encode(A.tobytes()).decode("ascii")}
    from geomcheck.cache import array_digest, atomic_save

    digest = array_digest(A)
    out = path.parent / f"{_prefix(path, dataset)}{digest[:16]}.npy"
    if not out.is_file():
        atomic_save(out, A)
        out.chmod(0o644)  # committed beside the baseline: read by others
    return {"dtype": "float32-le", "shape": list(A.shape), "file": out.name, "sha256": digest}


def remove_replaced(path: Path, stored: Mapping[str, Mapping[str, Any]]) -> list[Path]:
    """Delete the ``.npy`` files of the datasets of ``stored`` (dataset -> its embeddings value) that
    the baseline at ``path`` no longer references; returns them."""
    removed = []
    for dataset, value in stored.items():
        prefix = _prefix(path, dataset)
        for f in path.parent.glob(f"{prefix}*.npy"):
            if f.name != value.get("file") and _HEX16.fullmatch(f.name[len(prefix):-len(".npy")]):
                f.unlink(missing_ok=True)
                removed.append(f)
    return removed


def decode_embeddings(d: Mapping[str, Any], where: str, folder: Path | None, hint: str) -> np.ndarray:
    """The embeddings a JSON value describes (``folder``: the baseline's directory, for a ``.npy``)."""
    if isinstance(d, Mapping) and "file" in d:
        return _from_file(d, where, folder, hint)
    try:
        raw = base64.b64decode(d["base64"], validate=True)
        shape = tuple(int(s) for s in d["shape"])
        if d.get("dtype") != "float32-le" or len(raw) != 4 * math.prod(shape):
            raise ValueError(f"{len(raw)} bytes for shape {shape} and dtype {d.get('dtype')!r}")
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: the stored embeddings are damaged ({exc}); regenerate it ({hint})") from None


def _from_file(d: Mapping[str, Any], where: str, folder: Path | None, hint: str) -> np.ndarray:
    from geomcheck.cache import array_digest

    name = d.get("file")
    if not isinstance(name, str) or not name.endswith(".npy") or Path(name).name != name or name.startswith("."):
        raise InvalidInputError(f"{where}, field embeddings.file: expected the name of a .npy file beside the "
                                f"baseline, got {name!r:.80}; regenerate it ({hint})")
    f = (folder or Path(".")) / name
    if not f.is_file():
        raise InvalidInputError(f"{where}: its embeddings file {str(f)!r} is missing (a baseline of this size keeps "
                                f"them beside the JSON: commit both); regenerate it ({hint})")
    try:
        X = np.load(f, mmap_mode="r", allow_pickle=False)
        shape = tuple(int(s) for s in d["shape"])
        ok = X.dtype == np.dtype("<f4") and X.shape == shape and array_digest(X) == d.get("sha256")
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        ok, why = False, f"{type(exc).__name__}: {exc}"
    else:
        why = "its contents do not match the sha256, shape or dtype the baseline records"
    if not ok:
        raise InvalidInputError(f"{where}: its embeddings file {str(f)!r} is damaged or was replaced ({why}); "
                                f"regenerate it ({hint})")
    return X
