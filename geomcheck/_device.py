"""The one place that knows device names: what ``device=`` accepts and what "auto" becomes.

``check_device`` validates a name without importing torch (option parsing, settings);
``resolve_device`` turns a name into the device torch will use, saying what to do when the
device is not there. Models, metrics and the plugin all go through these two.
"""

from __future__ import annotations

import re
from typing import Any

from geomcheck.errors import InvalidInputError

__all__ = ["DEVICE_PATTERN", "DEVICES_HINT", "check_device", "resolve_device", "cuda_available"]

DEVICE_PATTERN = r"cpu|mps|cuda(:\d+)?"  # what device= accepts besides "auto"
DEVICES_HINT = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"


def check_device(device: Any, *, what: str = "device") -> str:
    """``device`` if it is "auto" or a name of ``DEVICE_PATTERN`` this machine has, else an ``InvalidInputError``.

    Imports torch only for an explicit "cuda…" or "mps" (to ask whether it is there): a device that is
    not there is one usage error here, not an error in every test that would load a model on it.
    """
    if device is None:
        return "auto"
    if not isinstance(device, str) or not (device == "auto" or re.fullmatch(DEVICE_PATTERN, device)):
        raise InvalidInputError(f"{what} must be {DEVICES_HINT}, got {device!r}")
    if device.startswith("cuda"):
        n = _cuda_count()
        index = int(device.partition(":")[2] or 0)
        if n == 0:
            raise InvalidInputError(f"{what}={device!r} but CUDA is not available on this machine{_torch_build()}; "
                                    f"use 'cpu' or 'auto' (CUDA when there is one), or install a CUDA build of torch")
        if index >= n:
            raise InvalidInputError(f"{what}={device!r} but this machine has {n} CUDA device(s) (cuda:0 … "
                                    f"cuda:{n - 1}); use one of those, or 'auto'")
    elif device == "mps" and not _mps_available():
        raise InvalidInputError(f"{what}='mps' but MPS is not available on this machine (Apple silicon GPUs only); "
                                f"use 'cpu' or 'auto'")
    return device


def _cuda_count() -> int:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def _torch_build() -> str:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return ""
    return f" (torch {torch.__version__}{', a CPU-only build' if torch.version.cuda is None else ''})"


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (False where torch is not installed)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: Any = "auto", *, what: str = "device", allow_mps: bool = True) -> str:
    """The device to run on: "auto" → "cuda" when there is one, else "mps" (``allow_mps``), else "cpu".

    An explicit "cuda…" without CUDA (or "mps" without MPS) is an ``InvalidInputError`` that
    says what to use instead.
    """
    name = check_device(device, what=what)
    if name == "auto":
        if cuda_available():
            return "cuda"
        if allow_mps and _mps_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda") and not cuda_available():
        import torch

        raise InvalidInputError(f"{what}={name!r} but CUDA is not available (torch {torch.__version__}); "
                                f"use {what}='cpu' or 'auto', or install a CUDA build of torch")
    if name == "mps" and not allow_mps:
        raise InvalidInputError(f"{what}='mps' is not supported here; use 'auto', 'cpu' or 'cuda'")
    return name


def _mps_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()
