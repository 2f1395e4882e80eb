"""Model directories from model directories: a noisy copy (graded damage) and a Hugging Face cache layout."""

from __future__ import annotations

import os
import pathlib
import shutil
from typing import Any

from geomcheck.errors import InvalidInputError

__all__ = ["noisy_copy", "hf_cache_layout"]


def noisy_copy(
    src_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    scale: float = 0.4,
    seed: int = 0,
) -> pathlib.Path:
    """Copy the model directory ``src_dir`` to ``out_dir`` with noise on its weight matrices; return ``out_dir``.

    Every file is copied; in each ``*.safetensors`` file every floating-point tensor with
    ``ndim >= 2`` becomes ``W + scale * std(W) * Z``, ``Z ~ N(0, 1)`` drawn elementwise
    (biases, LayerNorm vectors and integer buffers are kept). Tensors are visited in sorted
    file / key order from one ``torch.Generator`` seeded with ``seed``, so the same source,
    ``scale`` and ``seed`` give byte-identical weights; dtypes, shapes and file metadata are
    kept. ``scale=0`` gives an exact copy. ``out_dir`` must not exist or be empty.

    On all-MiniLM-L6-v2 and the paper dataset, scale 0.4 moves Davies-Bouldin (true labels)
    from 3.10 to 3.65 / 3.66 / 3.89 (seeds 0 / 1 / 2), the silhouette from -0.092 to -0.110 /
    -0.106 / -0.121, and gives a linear CKA to the clean model of 0.91 / 0.85 / 0.89
    (``bench/baseline_tolerances.py`` measures more).
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale >= 0 or scale == float("inf"):
        raise InvalidInputError(f"scale must be a finite number >= 0 (noise std in units of std(W)), got {scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    src, out = pathlib.Path(src_dir), pathlib.Path(out_dir)
    if not src.is_dir():
        raise InvalidInputError(f"{str(src)!r} is not a model directory")
    weights = sorted(p for p in src.rglob("*.safetensors") if p.is_file())
    if not weights:
        raise InvalidInputError(
            f"{str(src)!r} holds no *.safetensors weights; noisy_copy reads safetensors only "
            "(convert .bin weights with save_pretrained(..., safe_serialization=True))"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(f"{str(out)!r} already exists and is not an empty directory; pass a new path")

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, out, dirs_exist_ok=True,
                    ignore=lambda _dir, names: [n for n in names if n.endswith(".safetensors")])
    gen = torch.Generator().manual_seed(seed)
    for path in weights:
        tensors: dict[str, Any] = {}
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
            for key in sorted(f.keys()):
                t = f.get_tensor(key)
                if t.ndim >= 2 and t.is_floating_point() and scale > 0:
                    w = t.to(torch.float32)
                    noise = torch.randn(w.shape, generator=gen, dtype=torch.float32)
                    t = (w + (scale * float(w.std())) * noise).to(t.dtype)
                tensors[key] = t.contiguous()
        dest = out / path.relative_to(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(dest), metadata=metadata)
    return out


def hf_cache_layout(root: str | os.PathLike[str], repo_id: str, model_dir: str | os.PathLike[str],
                    rev: str = "0123456789abcdef0123456789abcdef01234567") -> pathlib.Path:
    """A Hugging Face hub cache: models--org--name/{blobs,refs/main,snapshots/<rev>} with links to blobs."""
    import hashlib

    root, model_dir = pathlib.Path(root), pathlib.Path(model_dir)
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(rev)
    (repo / "blobs").mkdir()
    snap = repo / "snapshots" / rev
    for f in model_dir.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            dest = snap / f.relative_to(model_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(blob)
    return snap
