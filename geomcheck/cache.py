"""On-disk cache of embeddings and file digests, keyed by model fingerprint and texts.

An entry is ``<key>.<digest>.npy`` (the array, ``np.save``, no pickle) and ``<key>.json``
(shape, dtype, sha256 of the array bytes, the file it points to). Files are written to a
temp name and moved into place with ``os.replace``, the sidecar last, so a reader sees a
whole old entry or a whole new one. Writers of the same key (pytest-xdist workers) each
commit a complete entry; the last sidecar wins. A sidecar whose array is missing, cut
short or does not match its digest is reported with a warning and ignored (recomputed).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from typing import Any

import numpy as np

ENV_VAR = "GEOMCHECK_CACHE_DIR"
_FORMAT = 1


def cache_dir() -> Path:
    """``$GEOMCHECK_CACHE_DIR``, else ``$XDG_CACHE_HOME/geomcheck``, else ``~/.cache/geomcheck``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "geomcheck"


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 of the texts in order (each length-prefixed, so ``["ab"]`` != ``["a", "b"]``)."""
    h = hashlib.sha256()
    for i, t in enumerate(texts):
        try:
            b = t.encode("utf-8")
        except UnicodeEncodeError as exc:
            from geomcheck.errors import InvalidInputError

            raise InvalidInputError(f"text {i} is not valid Unicode ({exc.reason} at character {exc.start}); "
                                    f"decode the source with errors='replace' or remove the character") from None
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def array_digest(X: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(X).tobytes()).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers see all of it or none."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class EmbeddingCache:
    """``get`` / ``put`` embeddings for (model fingerprint, texts)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "embeddings"

    def _sidecar(self, fingerprint: str, texts: Sequence[str]) -> Path:
        return self.root / fingerprint[:2] / f"{fingerprint}-{texts_digest(texts)[:40]}.json"

    def get(self, fingerprint: str, texts: Sequence[str]) -> np.ndarray | None:
        side = self._sidecar(fingerprint, texts)
        try:
            meta = json.loads(side.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            warnings.warn(f"geomcheck: ignoring unreadable cache entry {side} ({exc}); recomputing", stacklevel=3)
            return None
        try:
            X = np.load(side.with_name(meta["file"]), allow_pickle=False)
            ok = (
                meta.get("format") == _FORMAT
                and list(X.shape) == meta["shape"]
                and str(X.dtype) == meta["dtype"]
                and array_digest(X) == meta["sha256"]
            )
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:  # EOFError: an empty or cut .npy
            ok, why = False, f"{type(exc).__name__}: {exc}"
        else:
            why = "its array does not match the digest, shape or dtype recorded beside it"
        if not ok:
            warnings.warn(f"geomcheck: corrupt cache entry {side}: {why}; recomputing", stacklevel=3)
            return None
        X.flags.writeable = False
        return X

    def put(self, fingerprint: str, texts: Sequence[str], X: np.ndarray, **info: object) -> Path:
        side = self._sidecar(fingerprint, texts)
        side.parent.mkdir(parents=True, exist_ok=True)
        digest = array_digest(X)
        npy = side.with_name(f"{side.stem}.{digest[:16]}.npy")
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(X), allow_pickle=False)
        atomic_write(npy, buf.getvalue())
        meta = {"format": _FORMAT, "file": npy.name, "shape": list(X.shape), "dtype": str(X.dtype),
                "sha256": digest, "fingerprint": fingerprint, "n_texts": len(texts), **info}
        atomic_write(side, json.dumps(meta, indent=1).encode())
        return side


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file, memoised on disk by (real path, size, mtime) so big weights hash once.

    Files in a Hugging Face cache are links to ``blobs/<sha256 or git sha1>``: that name is used as is.
    """
    p = Path(path)
    real = p.resolve()
    if p.is_symlink() and len(real.name) in (40, 64) and all(c in "0123456789abcdef" for c in real.name):
        return real.name
    st = real.stat()
    memo = cache_dir() / "digests"
    key = hashlib.sha256(f"{real}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    entry = memo / key[:2] / key
    try:
        return entry.read_text().strip()
    except OSError:
        pass
    h = hashlib.sha256()
    with open(real, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    digest = h.hexdigest()
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(entry, digest.encode())
    except OSError:  # a read-only cache still gives the right digest, just not memoised
        pass
    return digest


def lock_for(path: str | os.PathLike) -> Any:
    """A ``filelock.FileLock`` for work on ``path``, kept under ``<cache>/locks/`` (never beside files
    that users commit, such as baselines): processes writing the same path wait for each other."""
    from filelock import FileLock

    key = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:24]
    folder = cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / f"{Path(path).name}-{key}.lock"))
