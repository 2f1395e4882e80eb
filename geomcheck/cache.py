"""On-disk cache of embeddings and file digests, keyed by model fingerprint and texts.

An entry is ``<key>.<digest>.npy`` (the array, ``np.save``, no pickle) and ``<key>.json``
(shape, dtype, sha256 of the array bytes, the file it points to). Files are written to a
temp name and moved into place with ``os.replace``, the sidecar last, so a reader sees a
whole old entry or a whole new one. Writers of the same key (pytest-xdist workers) each
commit a complete entry; the last sidecar wins. A sidecar whose array is missing, cut
short or does not match its digest is reported with a warning and ignored (recomputed), and so
is a sidecar that records another key than the one it was read for (an entry copied or renamed
under another model's or texts' name).

A large encode keeps its finished chunks (``ChunkStore``) in ``<key>.chunks/``: one entry of the
same kind per chunk of texts (``<start>-<stop>.json`` and its ``.npy``), each sidecar naming the
model, the whole texts' digest and the rows it holds, each checked like an entry when read. A run
killed half-way leaves half the chunks; the next encode of the same model and texts reads them and
encodes only the rest. The folder goes once the whole entry is written; the folder of a run that is
never resumed goes when another large encode starts and nothing has been added to it for
``CHUNKS_KEEP_DAYS`` days.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from typing import Any

import numpy as np

ENV_VAR = "GEOMCHECK_CACHE_DIR"
_FORMAT = 2  # 2: the sidecar records the texts' digest, so a read checks the whole key
# A memo of a file's digest is written only for a file unchanged for this long: a later write to it
# then gets a ctime past the memo's, even on file systems whose clock ticks coarsely (4 ms jiffies,
# 1 s on some network file systems), so no edit can land in the same tick as the one memoised.
_SETTLED_S = 2.0
# The chunks of a killed encode wait this long for the run to be resumed (see the module docstring).
CHUNKS_KEEP_DAYS = 7.0


def cache_dir() -> Path:
    """``$GEOMCHECK_CACHE_DIR``, else ``$XDG_CACHE_HOME/geomcheck``, else ``~/.cache/geomcheck``.

    A ``GEOMCHECK_CACHE_DIR`` that is (or lies under) a file is an ``InvalidInputError`` naming it:
    every read would fail, which looked like a cache full of unreadable entries.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        for p in (path, *path.parents):
            if p.exists():
                if not p.is_dir():
                    from geomcheck.errors import InvalidInputError

                    raise InvalidInputError(
                        f"{ENV_VAR}={env!r} " + ("is a file" if p == path else f"lies under the file {str(p)!r}")
                        + ", not a directory: point it at a directory (it is created if missing), or unset it "
                          "to use ~/.cache/geomcheck")
                break
        return path
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
    """sha256 of the array's bytes in C order (hashed in place: no copy of a large matrix)."""
    X = np.ascontiguousarray(X)
    return hashlib.sha256(memoryview(X.reshape(-1).view(np.uint8))).hexdigest()


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


def atomic_save(path: Path, X: np.ndarray) -> None:
    """``np.save`` of ``X`` to ``path`` through a temporary file and a rename, streamed: no copy in memory."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.ascontiguousarray(X), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_entry(side: Path, expect: dict[str, Any], what: str = "cache entry") -> tuple[np.ndarray, dict] | None:
    """The array of the entry whose sidecar is ``side`` and the sidecar, if the sidecar records ``expect``
    (its key) and the array matches its digest, shape and dtype; else None, with a warning where something
    is wrong (not for a missing entry or an older layout)."""
    try:
        meta = json.loads(side.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        warnings.warn(f"geomcheck: ignoring unreadable {what} {side} ({exc}); recomputing", stacklevel=4)
        return None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        return None  # an older layout: recomputed and overwritten, nothing is wrong with it
    # The file name is only a short prefix of the key, and a file can be copied or renamed: the
    # entry must say it was written for this very model and these very texts.
    wrong = [k for k, v in expect.items() if meta.get(k) != v]
    if wrong:
        which = {"fingerprint": "model fingerprint", "texts_sha256": "texts", "n_texts": "texts", "start": "rows",
                 "stop": "rows"}.get(wrong[0], wrong[0])
        warnings.warn(f"geomcheck: {what} {side} was written for other {which} than it is read for "
                      f"(copied or renamed?); ignoring it and recomputing", stacklevel=4)
        return None
    try:
        X = np.load(side.with_name(meta["file"]), allow_pickle=False)
        ok = (
            list(X.shape) == meta["shape"]
            and str(X.dtype) == meta["dtype"]
            and array_digest(X) == meta["sha256"]
        )
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:  # EOFError: an empty or cut .npy
        ok, why = False, f"{type(exc).__name__}: {exc}"
    else:
        why = "its array does not match the digest, shape or dtype recorded beside it"
    if not ok:
        warnings.warn(f"geomcheck: corrupt {what} {side}: {why}; recomputing", stacklevel=4)
        return None
    X.flags.writeable = False
    return X, meta


def _write_entry(side: Path, X: np.ndarray, meta: dict[str, Any]) -> Path:
    """The array beside ``side`` (named by its digest), then the sidecar: readers see all or nothing."""
    side.parent.mkdir(parents=True, exist_ok=True)
    digest = array_digest(X)
    npy = side.with_name(f"{side.stem}.{digest[:16]}.npy")
    atomic_save(npy, X)
    meta = {"format": _FORMAT, "file": npy.name, "shape": list(X.shape), "dtype": str(X.dtype), "sha256": digest,
            **meta}
    atomic_write(side, json.dumps(meta, indent=1).encode())
    return side


class EmbeddingCache:
    """``get`` / ``put`` embeddings for (model fingerprint, texts); ``chunks`` for an encode in progress.

    ``digest=``: the texts' ``texts_digest`` where the caller has it already (a million texts take a
    second to hash)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "embeddings"

    def _sidecar(self, fingerprint: str, digest: str) -> Path:
        return self.root / fingerprint[:2] / f"{fingerprint}-{digest[:40]}.json"

    def get(self, fingerprint: str, texts: Sequence[str], *, digest: str | None = None) -> np.ndarray | None:
        got = self.entry(fingerprint, texts, digest=digest)
        return None if got is None else got[0]

    def entry(self, fingerprint: str, texts: Sequence[str], *,
              digest: str | None = None) -> tuple[np.ndarray, dict[str, Any]] | None:
        """(array, sidecar) of a whole, checked entry, or None."""
        digest = digest or texts_digest(texts)
        return _read_entry(self._sidecar(fingerprint, digest), {"fingerprint": fingerprint, "texts_sha256": digest})

    def put(self, fingerprint: str, texts: Sequence[str], X: np.ndarray, *, digest: str | None = None,
            **info: object) -> Path:
        digest = digest or texts_digest(texts)
        return _write_entry(self._sidecar(fingerprint, digest), X, {
            "fingerprint": fingerprint, "texts_sha256": digest, "n_texts": len(texts), **info})

    def chunks(self, fingerprint: str, texts: Sequence[str], *, digest: str | None = None) -> ChunkStore:
        """The finished chunks of an encode of these texts by this model (``ChunkStore``). Folders of other
        encodes untouched for ``CHUNKS_KEEP_DAYS`` days (runs killed and never resumed) are removed."""
        from geomcheck._disk import remove_stale

        digest = digest or texts_digest(texts)
        folder = self._sidecar(fingerprint, digest).with_suffix(".chunks")
        if folder.is_dir():
            try:
                os.utime(folder)  # this run resumes it: not stale, whatever its age
            except OSError:
                pass
        if self.root.is_dir():
            remove_stale(self.root, "*/*.chunks", older_than_s=CHUNKS_KEEP_DAYS * 86400.0)
        return ChunkStore(folder, fingerprint, digest, len(texts))


class ChunkStore:
    """Rows ``[start, stop)`` of one (model, texts) encode, kept as they finish so that a killed run resumes.

    Each chunk is an entry like ``EmbeddingCache``'s (array named by its digest, sidecar written last, both
    atomically) whose sidecar records the model fingerprint, the digest of *all* the texts and the rows; a
    chunk is served only for exactly those rows of exactly those texts and that model, and only when its
    array matches its digest. ``remove()`` deletes the folder once the whole entry is written.
    """

    def __init__(self, folder: Path, fingerprint: str, digest: str, n_texts: int):
        self.folder, self.fingerprint, self.digest, self.n_texts = folder, fingerprint, digest, n_texts

    def _side(self, start: int, stop: int) -> Path:
        return self.folder / f"{start}-{stop}.json"

    def get(self, start: int, stop: int) -> np.ndarray | None:
        if not self.folder.is_dir():
            return None
        got = _read_entry(self._side(start, stop), {"fingerprint": self.fingerprint, "texts_sha256": self.digest,
                                                   "n_texts": self.n_texts, "start": start, "stop": stop},
                          "cached chunk")
        if got is None or got[0].ndim != 2 or got[0].shape[0] != stop - start:
            return None
        return got[0]

    def put(self, start: int, stop: int, X: np.ndarray) -> Path:
        return _write_entry(self._side(start, stop), X, {
            "kind": "chunk", "fingerprint": self.fingerprint, "texts_sha256": self.digest, "n_texts": self.n_texts,
            "start": start, "stop": stop})

    def count(self) -> int:
        """How many chunk sidecars the folder holds (finished chunks, checked or not)."""
        return len(list(self.folder.glob("*-*.json"))) if self.folder.is_dir() else 0

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file, memoised on disk so big weights hash once.

    The memo is keyed by what identifies this version of the file and what user space cannot set
    back: (real path, device, inode, size, mtime_ns, ctime_ns). ``cp -p``, ``rsync -a`` and
    ``tar x`` restore size and mtime (and ``os.utime`` sets any mtime), so those two alone served
    the old digest for new weights; any write or rename gives the file a new ctime (or inode), which
    nothing but the kernel sets. A memo is written only for a file that has not changed for
    ``_SETTLED_S`` seconds and did not change while it was hashed; a younger file is hashed each
    time (cheap: fresh files are small tiny models or were just written anyway).

    Files in a Hugging Face cache are links to ``blobs/<sha256>`` (weights, Git LFS): that name is
    used as is. Other blobs are named by their git sha1, which no local copy of the file shares:
    they are hashed (they are small), so a copy of a snapshot has the same digests as the cache.
    """
    import time

    p = Path(path)
    real = p.resolve()
    if p.is_symlink() and len(real.name) == 64 and all(c in "0123456789abcdef" for c in real.name):
        return real.name
    st = real.stat()

    def ident(s: os.stat_result) -> str:
        return f"{real}|{s.st_dev}|{s.st_ino}|{s.st_size}|{s.st_mtime_ns}|{s.st_ctime_ns}"

    memo = cache_dir() / "digests"
    key = hashlib.sha256(ident(st).encode()).hexdigest()
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
    after = real.stat()
    settled = time.time() - max(after.st_mtime_ns, after.st_ctime_ns) / 1e9 > _SETTLED_S
    if ident(after) == ident(st) and settled:
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
