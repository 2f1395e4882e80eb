"""Checks of merge inputs on disk, for callers that turn the user's models into other files before merging.

``geomcheck.adapt.variants`` re-saves each checkpoint and merges LoRA adapters into the base
before ``merge_files`` reads them; an error found in those copies would name the copies (cache
paths) instead of what the user passed. These checks run on the user's own files, or compare
a copy with the base and name the user's path.
"""

from __future__ import annotations

import os
from pathlib import Path

from geomcheck.errors import IncompatibleModelsError
from geomcheck.merge.reader import LazyStateDict, lazy_state_dict, weight_groups

__all__ = ["check_finite_files", "check_fits_base"]


def _safetensors_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix == ".safetensors" else []
    if (path / "adapter_config.json").is_file():  # a peft adapter: its weights sit in the root
        return sorted(p for p in path.glob("*.safetensors") if not p.name.startswith("."))
    return [f for files in weight_groups(path).values() for f in files] if path.is_dir() else []


def check_finite_files(path: str | os.PathLike[str], what: str) -> None:
    """``NonFiniteWeightsError`` naming ``what``, the file and the tensor when a safetensors file of ``path``
    (a model directory, a peft adapter directory or a ``.safetensors`` file) holds NaN or inf.

    Tensor by tensor, one mapped at a time, so memory stays near the largest tensor.
    """
    from geomcheck.merge.core import check_finite

    for f in _safetensors_files(Path(path)):
        sd = LazyStateDict([f], str(f))
        try:
            for name in sd:
                check_finite(sd[name], name, f"{what} {str(path)!r}, file {str(f)!r}")
        finally:
            sd.close()


def check_fits_base(copy: str | os.PathLike[str], base: str | os.PathLike[str], what: str) -> None:
    """``IncompatibleModelsError`` naming ``what`` (the user's input), the tensor and both shapes when the model
    directory ``copy`` (made from that input) and ``base`` differ in a tensor's shape or in their tensor names."""
    got, ref = lazy_state_dict(copy).shapes(), lazy_state_dict(base).shapes()
    for name, shape in ref.items():
        if name not in got:
            raise IncompatibleModelsError(f"{what} has no tensor {name!r} that the base model has: it is not the "
                                          "base's architecture; use checkpoints of the same model as the base.")
        if tuple(got[name]) != tuple(shape):
            raise IncompatibleModelsError(
                f"{what} does not fit the base model: tensor {name!r} has shape {tuple(got[name])} there but "
                f"{tuple(shape)} in the base (another width or vocabulary); use checkpoints trained from this base.")
    extra = [n for n in got if n not in ref]
    if extra:
        raise IncompatibleModelsError(f"{what} has tensor {extra[0]!r} that the base model lacks ({len(extra)} "
                                      "extra): it is not the base's architecture; use checkpoints of the same model.")
