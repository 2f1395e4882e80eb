"""Free space for the models geomcheck writes: an up-front check, and a full disk turned into a clear error.

A model written into a nearly full disk fails deep inside a writer (``OSError: [Errno 28]``
from ``file.write``, a ``SafetensorError`` wrapping ``code: 28`` from ``save_file``) after
minutes of work; both are turned into one :class:`~geomcheck.errors.DiskSpaceError` that names
the directory, the space the model needs (estimated from its tensor sizes) and what is free.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from geomcheck.errors import DiskSpaceError

__all__ = ["free_bytes", "check_free_space", "is_no_space", "no_space_error", "human", "remove_stale"]

# ENOSPC: the disk is full; EDQUOT: the user's quota is, which the user fixes the same way.
_NO_SPACE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# How safetensors' Rust writer spells errno 28 (std::io::ErrorKind::StorageFull / QuotaExceeded).
_NO_SPACE_TEXT = ("code: 28", "StorageFull", "No space left on device", "QuotaExceeded", "Disk quota exceeded")


def human(n: float) -> str:
    """Bytes as "1.2 GB" (decimal units, as ``df -H``)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - the loop returns


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """Free bytes on the file system of ``folder`` for this user (None where it cannot be read)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _message(folder: Path, needed: int, free: int | None, what: str, during: bool) -> str:
    have = f"{human(free)} free" if free is not None else "free space unknown"
    head = (f"the disk filled while writing {what} into {str(folder)!r}" if during
            else f"not enough free space in {str(folder)!r} for {what}")
    return (f"{head}: it needs about {human(needed)} (estimated from the tensor sizes), {have}"
            f"{' now that the partial output is removed' if during else ''}; free some space there, or "
            f"write it to a directory on another disk. Nothing was left behind.")


def check_free_space(folder: str | os.PathLike[str], needed: int, what: str) -> None:
    """A ``DiskSpaceError`` before anything is written when ``folder``'s disk has less than ``needed`` bytes free."""
    free = free_bytes(folder)
    if free is not None and free < needed:
        raise DiskSpaceError(_message(Path(folder), needed, free, what, during=False))


def is_no_space(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or quota) is full: an ``OSError`` with ENOSPC/EDQUOT, or safetensors' text for it."""
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE_ERRNOS:
        return True
    return type(exc).__name__ == "SafetensorError" and any(t in str(exc) for t in _NO_SPACE_TEXT)


def no_space_error(folder: str | os.PathLike[str], needed: int, what: str) -> DiskSpaceError:
    """The ``DiskSpaceError`` for a write into ``folder`` that ran out of space (raise it after removing the partial output)."""
    return DiskSpaceError(_message(Path(folder), needed, free_bytes(folder), what, during=True))


def remove_stale(folder: str | os.PathLike, pattern: str, *, older_than_s: float = 600.0) -> list[Path]:
    """Delete what killed runs left in ``folder`` (temporary files or directories matching ``pattern``)
    that nothing has touched for ``older_than_s`` seconds; returns what was removed."""
    import shutil
    import time

    removed = []
    now = time.time()
    for p in Path(folder).glob(pattern):
        try:
            if now - p.stat().st_mtime < older_than_s:
                continue
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            removed.append(p)
        except OSError:
            continue
    return removed
