"""The typed parsers of the plugin's options: text -> value, or a ``GeomcheckError`` saying what is wrong.

On the command line each is argparse's ``type=`` (through ``_argparse_type``: a bad value is pytest's
usage error naming the option); in an ini file it runs when the settings are built. Nothing here
imports torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geomcheck.errors import GeomcheckError, InvalidInputError


def _int_at_least(minimum: int, why: str = "") -> Callable[[str], int]:
    def parse(text: Any) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise InvalidInputError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise InvalidInputError(f"must be >= {minimum}{why}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _device(text: str) -> str:
    from geomcheck._device import check_device

    return check_device(str(text).strip(), what="the device")


def _metric(text: str) -> str:
    from geomcheck.metrics._kernels import METRICS

    name = str(text).strip().lower()
    if name not in METRICS:
        raise InvalidInputError(f"must be one of {', '.join(METRICS)}, got {text!r}")
    return name


def _dtype(text: str) -> str:
    from geomcheck.models.loading import dtype_name_ok

    if not dtype_name_ok(text):
        raise InvalidInputError(f"must be one of auto, float32, bfloat16, float16, got {text!r}")
    return str(text)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise InvalidInputError(f"must lie in [0, 1], got {value}")
    return value


def _families(text: str) -> tuple[str, ...]:
    return tuple(f.strip() for f in str(text).split(",") if f.strip())


def _dataset_format(text: str) -> str:
    from geomcheck.data.text import FORMATS  # only where the option is given: the plugin's import stays light

    if str(text).strip().lower() not in FORMATS:
        raise InvalidInputError(f"must be one of {', '.join(FORMATS)}, got {text!r}")
    return str(text).strip().lower()


def _tolerances(lines: list[str]) -> dict[str, float]:
    out = {}
    for line in lines:
        name, sep, value = line.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise InvalidInputError(f"expected NAME=NUMBER, got {line!r}")
    return out


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` as argparse's ``type=``: its message becomes the usage error."""

    def typed(text: str) -> Any:
        try:
            return parse(text)
        except GeomcheckError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    typed.__name__ = getattr(parse, "__name__", "value")
    return typed


def _ini_model(name: str, ini_dir: Path) -> str:
    """A model named in an ini file: a directory there (``./ckpt``, ``models/ckpt`` that exists beside the ini
    file) becomes its absolute path; a registry alias or a Hugging Face id stays as written."""
    p = Path(name).expanduser()
    if p.is_absolute():
        return str(p)
    beside = ini_dir / p
    if name.startswith((".", "~")) or beside.is_dir():
        return str(beside.resolve())
    return name
