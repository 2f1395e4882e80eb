"""Progress lines on stderr for metric steps that can take a while (silhouette tiles, KMeans, t-SNE).

``Progress(what, total, enabled)`` is told of work done (``advance(units)``) and rewrites one
line on stderr at most every ``_EVERY`` seconds: the share done, the rate and the time left
(ETA from the rate so far). ``heartbeat(what, enabled)`` is for a step that reports nothing
while it runs (sklearn's KMeans and t-SNE): a thread prints the elapsed time every few
seconds. Nothing is printed for steps that end within ``_QUIET_FOR`` seconds, or when
``enabled`` is False (``-q``, ``progress=False``); ``enabled=None`` ("auto") prints when stderr
is a terminal or ``GEOMCHECK_PROGRESS=1`` is set (``GEOMCHECK_PROGRESS=0`` silences it).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["Progress", "heartbeat", "resolve"]

_EVERY = 1.0  # seconds between two updates of the line
_QUIET_FOR = 2.0  # a step that ends sooner prints nothing at all


def resolve(enabled: bool | None) -> bool:
    """``enabled``, or for None: ``GEOMCHECK_PROGRESS`` (1/0) if set, else whether stderr is a terminal."""
    if enabled is not None:
        return bool(enabled)
    env = os.environ.get("GEOMCHECK_PROGRESS", "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return False
    if env in ("1", "true", "yes", "on"):
        return True
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """One step's progress line: ``advance(done_units)``; ``close()`` ends the line (also as a context)."""

    def __init__(self, what: str, total: float, enabled: bool | None = None, *, unit: str = "",
                 stream: TextIO | None = None):
        self.what, self.total, self.unit = what, float(total), unit
        self.enabled = resolve(enabled) and self.total > 0
        self.stream = stream
        self.done = 0.0
        self.start = time.perf_counter()
        self._last = self.start
        self._shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def line(self, now: float | None = None) -> str:
        """The text of the progress line: ``what: 42% (rate), 0:07 elapsed, ETA 0:10``."""
        now = time.perf_counter() if now is None else now
        elapsed = now - self.start
        share = min(1.0, self.done / self.total) if self.total else 1.0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.what}: {share:4.0%}"
        if self.unit and rate > 0:
            text += f" ({rate:,.3g} {self.unit}/s)"
        text += f", {_clock(elapsed)} elapsed"
        if 0 < share < 1 and rate > 0:
            text += f", ETA {_clock((self.total - self.done) / rate)}"
        return text

    def advance(self, units: float = 1.0) -> None:
        self.done += units
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last >= _EVERY and now - self.start >= _QUIET_FOR:
            self._last = now
            self._write("\r" + self.line(now) + " " * 4)

    def close(self) -> None:
        if self.enabled and self._shown:
            self._write("\r" + self.line() + " " * 4 + "\n")
            self._shown = False
        self.enabled = False

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stderr
        try:
            stream.write(text)
            stream.flush()
            self._shown = True
        except (OSError, ValueError):  # a closed stream: progress is never worth an error
            self.enabled = False


@contextlib.contextmanager
def heartbeat(what: str, enabled: bool | None = None, *, every: float = 5.0,
              stream: TextIO | None = None) -> Iterator[None]:
    """Print ``what: 0:12 elapsed`` on stderr every ``every`` seconds while the block runs (a step that
    reports no progress of its own); a last line with the total time when it ran past ``_QUIET_FOR``."""
    if not resolve(enabled):
        yield
        return
    start = time.perf_counter()
    stop = threading.Event()
    out = stream or sys.stderr
    shown = []

    def beat() -> None:
        while not stop.wait(min(every, _QUIET_FOR) if not shown else every):
            if time.perf_counter() - start < _QUIET_FOR:
                continue
            try:
                out.write(f"\r{what}: {_clock(time.perf_counter() - start)} elapsed    ")
                out.flush()
                shown.append(True)
            except (OSError, ValueError):
                return

    t = threading.Thread(target=beat, name="geomcheck-heartbeat", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        if shown:
            with contextlib.suppress(OSError, ValueError):
                out.write(f"\r{what}: done in {_clock(time.perf_counter() - start)}    \n")
                out.flush()
