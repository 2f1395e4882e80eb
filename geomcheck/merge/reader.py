"""Reading model weights stored as safetensors: headers, sharded sets, module folders, lazy state dicts.

A model directory's weights are its ``*.safetensors`` files (a sharded set listed by
``*.safetensors.index.json`` counts as one), in the root and, for sentence-transformers
models, in the module folders that ``modules.json`` lists (e.g. ``2_Dense``). Tensors are
loaded one at a time with ``safetensors.safe_open``, reopened per tensor so that only the
tensor in hand stays mapped in memory.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geomcheck.errors import MergeError

__all__ = ["LazyStateDict", "lazy_state_dict", "weight_groups", "sources", "is_hidden", "WEIGHT_SUFFIXES"]

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx",
                    ".onnx_data", ".ot")
_MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class _Entry:
    file: Path
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


def _read_header(path: Path) -> tuple[dict[str, _Entry], dict[str, str]]:
    """The tensors (name → dtype, shape, byte range) and ``__metadata__`` of one safetensors file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ValueError("shorter than 8 bytes")
            (n,) = struct.unpack("<Q", raw)
            if n > _MAX_HEADER:
                raise ValueError(f"header of {n} bytes")
            header = json.loads(f.read(n))
    except (OSError, ValueError) as exc:
        raise MergeError(f"{str(path)!r} is not a readable safetensors file ({exc}); pass model directories "
                         "or .safetensors files saved with safe_serialization=True.") from None
    meta = header.pop("__metadata__", None) or {}
    entries = {
        name: _Entry(path, info["dtype"], tuple(info["shape"]), int(info["data_offsets"][0]),
                     int(info["data_offsets"][1]))
        for name, info in header.items()
    }
    return entries, {str(k): str(v) for k, v in meta.items()}


class LazyStateDict(Mapping[str, Any]):
    """A read-only state dict over safetensors files that loads each tensor when it is looked up.

    Tensors are zero-copy views of a ``safe_open`` file mapping, and every page read through
    a mapping stays resident until the mapping is closed. So a handle is reused only until
    ``reopen_bytes`` have been read through it, then dropped and the file reopened: a loop
    over all tensors holds at most that much besides the tensors still referenced, instead
    of the whole file, and small tensors do not pay a reopen (header parse) each.
    """

    reopen_bytes = 64 * 1024 * 1024

    def __init__(self, files: Sequence[Path], label: str = ""):
        self.label = label or str(files[0])
        entries: dict[str, _Entry] = {}
        self.metadata: dict[str, str] = {}
        for i, path in enumerate(files):
            found, meta = _read_header(Path(path))
            if i == 0:
                self.metadata = meta
            for name, entry in found.items():
                if name in entries:
                    raise MergeError(f"tensor {name!r} is stored twice in {self.label} "
                                     f"({entries[name].file.name} and {path.name}).")
                entries[name] = entry
        file_order = {Path(p): i for i, p in enumerate(files)}
        # Sequential reads: shard by shard, each in byte order.
        self.entries = dict(sorted(entries.items(), key=lambda kv: (file_order[kv[1].file], kv[1].start)))
        self._handles: dict[Path, tuple[Any, int]] = {}  # file -> (safe_open handle, bytes read through it)

    def __getitem__(self, name: str) -> Any:
        from safetensors import safe_open

        entry = self.entries[name]
        size = entry.end - entry.start
        handle, used = self._handles.pop(entry.file, (None, 0))
        if handle is None or used + size > self.reopen_bytes:
            handle, used = safe_open(str(entry.file), framework="pt"), 0
        tensor = handle.get_tensor(name)
        if used + size <= self.reopen_bytes:
            self._handles[entry.file] = (handle, used + size)
        return tensor  # a dropped handle's mapping lives on only as long as this tensor

    def close(self) -> None:
        """Drop the open file handles (their mappings go once no tensor from them is referenced)."""
        self._handles.clear()

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: e.shape for k, e in self.entries.items()}


def is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _module_dirs(model_dir: Path) -> list[Path]:
    """The root plus the sentence-transformers module folders listed in ``modules.json``."""
    model_dir = model_dir.resolve()
    dirs = [model_dir]
    mj = model_dir / "modules.json"
    if mj.is_file():
        try:
            modules = json.loads(mj.read_text())
        except ValueError as exc:
            raise MergeError(f"{str(mj)!r} is not valid JSON ({exc}).") from None
        for m in modules if isinstance(modules, list) else []:
            sub = (model_dir / str(m.get("path", ""))).resolve() if isinstance(m, dict) else None
            if sub is not None and sub.is_dir() and sub != model_dir and sub not in dirs:
                dirs.append(sub)
    return dirs


def weight_groups(model_dir: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """The weight files of a model directory: output path (relative) → the safetensors files that hold it."""
    root = Path(model_dir).resolve()
    groups: dict[str, list[Path]] = {}
    for d in _module_dirs(root):
        sharded: set[Path] = set()
        for index in sorted(d.glob("*.safetensors.index.json")):
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (ValueError, KeyError, TypeError) as exc:
                raise MergeError(f"{str(index)!r} is not a safetensors index ({exc!r}).") from None
            files = sorted({(d / str(v)) for v in weight_map.values()})
            for f in files:
                if not f.is_file():
                    raise MergeError(f"{str(index)!r} lists shard {f.name!r}, which is missing.")
            sharded.update(files)
            out_name = index.name[: -len(".index.json")]
            groups[(d / out_name).relative_to(root).as_posix()] = files
        for f in sorted(d.glob("*.safetensors")):
            if f not in sharded and not f.name.startswith("."):
                groups[f.relative_to(root).as_posix()] = [f]
    return groups


def sources(path: Path, label: str) -> tuple[str, dict[str, list[Path]]]:
    if path.is_dir():
        groups = weight_groups(path)
        if not groups:
            others = sorted(p.name for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
            raise MergeError(
                f"{label} {str(path)!r} holds no *.safetensors weights"
                + (f" (only {', '.join(others)})" if others else "")
                + "; save it with safe_serialization=True (or convert it) first."
            )
        return "dir", groups
    if path.is_file():
        if path.suffix != ".safetensors":
            raise MergeError(f"{label} {str(path)!r} is not a .safetensors file or a model directory.")
        return "file", {path.name: [path]}
    raise MergeError(f"{label} {str(path)!r} does not exist; pass model directories or .safetensors files.")


def lazy_state_dict(path: str | os.PathLike[str], weights_file: str | None = None) -> LazyStateDict:
    """A state dict that loads tensors on access from a ``.safetensors`` file or a model directory.

    In a directory, ``weights_file`` picks the weight file (relative path, e.g.
    ``"2_Dense/model.safetensors"``); by default ``model.safetensors`` (sharded or not).
    """
    p = Path(path)
    kind, groups = sources(p, "model")
    if kind == "file":
        return LazyStateDict(next(iter(groups.values())), str(p))
    key = weights_file or ("model.safetensors" if "model.safetensors" in groups else None)
    if key is None and len(groups) == 1:
        key = next(iter(groups))
    if key not in groups:
        raise MergeError(f"{str(p)!r} has weight files {', '.join(groups)}; pick one with weights_file=...")
    return LazyStateDict(groups[key], f"{p}/{key}")
