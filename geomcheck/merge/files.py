"""Streaming merges of safetensors models: tensor by tensor from disk, into a complete model directory.

Memory: the output header is known before any tensor is merged (each output tensor has
the first model's dtype and shape), so it is written first and every merged tensor is
appended as soon as it is computed, then freed. Inputs are read with
``safetensors.safe_open``, whose tensors are zero-copy views of a file mapping; every page
read through a mapping stays resident until it is closed, so a handle is dropped and the
file reopened after 64 MB (a file kept open would hold the whole model by the end; see
:class:`~geomcheck.merge.reader.LazyStateDict`). Resident memory thus holds the tensor in
hand — one tensor per input, the method's temporaries and the merged
tensor — plus the previous merged tensor while a writer thread appends it to the file
(the write overlaps the next tensor's merge). Peak memory is therefore about
``(models + base + 2 + temporaries) × the largest tensor`` plus ≤ 64 MB per input file and
the Python/torch baseline, and does not grow with the number of tensors: for a SLERP of two
Qwen3-0.6B-shaped float32 models (2.4 GB each; largest tensor the 620 MB embedding)
``bench/merge.py`` measured 2.1 GB peak RSS, 0.88 × one model.

Layout: a model directory's weights are its ``*.safetensors`` files (a sharded set listed
by ``*.safetensors.index.json`` counts as one and is written back unsharded), in the root
and, for sentence-transformers models, in the module folders that ``modules.json`` lists
(e.g. ``2_Dense``). Everything else in the first model's directory — config, tokenizer,
``modules.json``, ``1_Pooling``, ``sentence_bert_config.json``… — is copied, so the result
loads with plain ``SentenceTransformer(out_dir)`` (mergekit keeps only the transformer:
arcee-ai/mergekit#286). Weight files in other formats (``*.bin``, ``*.pt``, ``*.onnx``,
``*.gguf``…) are not copied: they would be the first model's weights, not the merge.

The output is written into a temporary sibling directory (``.<out>.merge.tmp-*``) and renamed
into place at the end, so ``out_dir`` never holds a half-written model. A merge that was killed
leaves that directory behind; the next merge into the same parent removes such leftovers of
merges (only that pattern, and only those untouched for ``STALE_AFTER_S``: a running merge
touches its own every ``_HEARTBEAT_S``). Every input tensor is checked for NaN/inf as it is read,
before the output is committed; free space is checked up front against the output's size,
and a disk that fills anyway is a ``DiskSpaceError``, the partial output removed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geomcheck._disk import check_free_space, human, is_no_space, no_space_error
from geomcheck.errors import IncompatibleModelsError, MergeError
from geomcheck.merge._base import MergeMethod
from geomcheck.merge.core import check_compatible, check_finite, plan_merge
from geomcheck.merge.reader import (
    WEIGHT_SUFFIXES,
    LazyStateDict,
    is_hidden,
    lazy_state_dict,
    sources,
    weight_groups,
)
from geomcheck.merge.registry import get_method

__all__ = ["MergedFiles", "merge_files", "write_merge", "check_output_dir", "OUTPUT_MARKER", "lazy_state_dict", "LazyStateDict",
           "weight_groups"]

@dataclass(frozen=True)
class MergedFiles:
    """What :func:`merge_files` wrote."""

    out_dir: Path
    method: str
    weight_files: tuple[str, ...]  # relative to out_dir
    copied: tuple[str, ...] = ()  # relative paths copied from the first model's directory
    skipped: tuple[str, ...] = ()  # other-format weight files of the first model, not copied
    kept: tuple[str, ...] = ()  # non-float tensors taken from the first model unmerged
    tensors: int = 0
    parameters: int = 0
    seconds: float = 0.0
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir), "method": self.method, "weight_files": list(self.weight_files),
            "copied": list(self.copied), "skipped": list(self.skipped), "kept": list(self.kept),
            "tensors": self.tensors, "parameters": self.parameters, "seconds": self.seconds,
            "params": {k: v for k, v in self.params.items()},
        }


# A merge's own temporary directories (``.<out>.merge.tmp-*``; ``.<out>.merge.old-*`` while --overwrite
# swaps): the suffix marks them as a merge's, so a later merge removes only its own kind.
_TMP_INFIX, _OLD_INFIX = ".merge.tmp-", ".merge.old-"
STALE_AFTER_S = 600.0  # a leftover untouched this long is a killed merge's, not a running one's
_HEARTBEAT_S = 60.0  # a running merge touches its temporary directory this often (<< STALE_AFTER_S)


def _write(f: Any, data: Any) -> None:
    """The one call through which a merge writes its weight files (a full disk surfaces here)."""
    f.write(data)


def _tensor_bytes(t: Any) -> memoryview:
    import torch

    flat = t.reshape(-1)
    if flat.dtype != torch.uint8:
        flat = flat.view(torch.uint8)
    return memoryview(flat.numpy())


def _write_merged(plan: Any, models: Sequence[LazyStateDict], base: LazyStateDict | None, out_file: Path,
                  metadata: Mapping[str, str], heartbeat: Path | None = None,
                  out_dtype: str | None = None) -> tuple[int, int, list[str]]:
    """Write the merged tensors of one weight file; return (tensors, parameters, names kept unmerged).

    Each input tensor is checked for NaN/inf as it is read (``NonFiniteWeightsError`` naming the
    input, its file and the tensor); ``heartbeat``'s mtime is renewed while writing, so another
    merge into the same parent does not take it for a killed merge's leftover.
    """
    ref = models[0]
    header: dict[str, Any] = {}
    offset = 0
    for name, e in ref.entries.items():
        dtype, size = _out_entry(e, out_dtype)
        header[name] = {"dtype": dtype, "shape": list(e.shape), "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = dict(metadata)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors aligns the data section to 8 bytes
    kept: list[str] = []
    params = 0
    out_file.parent.mkdir(parents=True, exist_ok=True)
    # One writer thread: tensor i is written (a page-cache copy that releases the GIL) while
    # tensor i+1 is read and merged. At most two merged tensors are alive at a time.
    touched = time.monotonic()
    with open(out_file, "wb") as f, ThreadPoolExecutor(max_workers=1) as writer:
        _write(f, struct.pack("<Q", len(raw)))
        _write(f, raw)
        pending: Future[Any] | None = None
        for name, e in ref.entries.items():
            tensors = [m[name] for m in models]
            b = base[name] if base is not None else None
            for sd, t in zip(list(models) + ([base] if base is not None else []), tensors + [b]):
                if t is not None:
                    check_finite(t, name, f"{sd.label}, file {str(sd.entries[name].file)!r}")
            if heartbeat is not None and time.monotonic() - touched > _HEARTBEAT_S:
                os.utime(heartbeat)
                touched = time.monotonic()
            out = plan.merge_tensor(name, tensors, b)
            if not tensors[0].is_floating_point():
                kept.append(name)
            data = _tensor_bytes(out)
            if data.nbytes != _out_entry(e, out_dtype)[1]:  # pragma: no cover - guards the header written above
                raise MergeError(f"internal error: merged {name!r} has {data.nbytes} bytes, expected "
                                 f"{_out_entry(e, out_dtype)[1]}.")
            del tensors, b, out
            if pending is not None:
                pending.result()
            pending = writer.submit(_write, f, data)  # the memoryview keeps the tensor alive until written
            params += math.prod(e.shape)
            del data
        if pending is not None:
            pending.result()
    return len(ref.entries), params, kept


_FLOAT_SIZES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}


def _out_entry(e: Any, out_dtype: str | None) -> tuple[str, int]:
    """(safetensors dtype, bytes) of the output tensor for input entry ``e``: floating tensors in ``out_dtype``
    when given, everything else as it is."""
    if out_dtype is None or e.dtype not in _FLOAT_SIZES:
        return e.dtype, e.end - e.start
    return out_dtype, math.prod(e.shape) * _FLOAT_SIZES[out_dtype]


def _output_size(jobs: Sequence[Any], first_dir: Path | None) -> int:
    """Bytes a merge writes: each weight file's tensors (the first model's dtypes and shapes) plus a header
    allowance, and the first model's other files that are copied beside them."""
    size = sum(sum(e.end - e.start + 256 for e in models[0].entries.values()) for _, _, models, _ in jobs)
    if first_dir is not None:
        for p in first_dir.rglob("*"):
            rel = p.relative_to(first_dir)
            if not is_hidden(rel) and p.is_file() and p.suffix not in WEIGHT_SUFFIXES:
                size += p.stat().st_size
    return size


def _copy_rest(src: Path, dst: Path, written: set[str]) -> tuple[list[str], list[str]]:
    copied, skipped = [], []
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if is_hidden(rel) or p.is_dir() or rel.as_posix() in written:
            continue
        name = p.name
        is_weights = p.suffix in WEIGHT_SUFFIXES or (
            name.endswith(".index.json") and Path(name[: -len(".index.json")]).suffix in WEIGHT_SUFFIXES)
        if is_weights:
            skipped.append(rel.as_posix())
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dst / rel)
        copied.append(rel.as_posix())
    return copied, skipped


OUTPUT_MARKER = "geomcheck_merge.json"  # in every output directory: provenance, and "geomcheck wrote this"


def _inside(path: Path, folder: Path) -> bool:
    return folder in path.parents


def check_output_dir(out: Path, inputs: Sequence[Path], *, overwrite: bool = False) -> None:
    """Refuse an output that would lose data: one that is, contains or lies inside an input (paths
    resolved, symlinks followed), and an existing non-empty directory unless ``overwrite`` and it is
    a merge output geomcheck wrote (it holds ``OUTPUT_MARKER``)."""
    o = out.resolve()
    for p in inputs:
        r = p.resolve()
        how = ("is" if o == r else "contains" if _inside(r, o)
               else "lies inside" if r.is_dir() and _inside(o, r) else None)
        if how is not None:
            raise MergeError(f"the output {str(out)!r} {how} the input {str(p)!r}: a merge never writes where its "
                             f"inputs are (it would delete them or be read as part of them later); choose an "
                             f"output directory outside every input.")
    if not out.exists():
        return
    if not out.is_dir():
        raise MergeError(f"{str(out)!r} exists and is a file, not a directory; choose another output directory.")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise MergeError(f"{str(out)!r} already exists and is not an empty directory; choose a new output "
                         f"directory, or replace an earlier merge there with --overwrite (overwrite=True).")
    if not (out / OUTPUT_MARKER).is_file():
        raise MergeError(f"{str(out)!r} is not a merge geomcheck wrote (it has no {OUTPUT_MARKER}), and --overwrite "
                         f"(overwrite=True) replaces only those; choose another output directory, or remove it "
                         f"yourself if it is yours to lose.")


def merge_files(method: str | MergeMethod, paths: Sequence[str | os.PathLike[str]],
                out_dir: str | os.PathLike[str], base: str | os.PathLike[str] | None = None, *,
                weights: Sequence[float] | None = None, overwrite: bool = False, threads: int | None = None,
                **params: Any) -> MergedFiles:
    """Merge models stored as safetensors, streaming tensor by tensor, into ``out_dir``.

    ``paths``: model directories (the result is a complete copy of the first one with merged
    weights) or ``.safetensors`` files (the result is ``out_dir/<first file's name>``);
    ``base``: the base model for methods that use one; ``weights``/``params``: as for
    :func:`geomcheck.merge.merge_state_dicts`, with the same results. ``out_dir`` must not
    exist or be empty unless ``overwrite``. Memory stays near a few × the largest tensor
    (module doc). ``threads``: torch's intra-op threads while merging (default: torch's
    setting, at most one fewer than the CPUs so the writer thread has one; restored
    afterwards). Returns what was written.
    """
    m = get_method(method)
    if isinstance(paths, (str, os.PathLike)) or not isinstance(paths, Sequence):
        raise MergeError("paths must be a list of model directories or .safetensors files.")
    in_paths = [Path(p) for p in paths]
    base_path = Path(base) if base is not None else None
    # Method-level checks first: they need no file, and a bad t should not wait for a header read.
    plan_merge(m, len(in_paths), has_base=base_path is not None, weights=weights, params=params)
    provenance = {"method": m.name, "params": params, "weights": list(weights) if weights else None,
                  "models": [str(p) for p in in_paths], "base": str(base_path) if base_path else None}
    return write_merge(
        in_paths, base_path, out_dir,
        lambda names: plan_merge(m, len(in_paths), has_base=base_path is not None, weights=weights, names=names,
                                 params=params),
        method=m.name, params=params, provenance=provenance, overwrite=overwrite, threads=threads)


def write_merge(in_paths: Sequence[Path], base_path: Path | None, out_dir: str | os.PathLike[str],
                make_plan: Any, *, method: str, params: Mapping[str, Any], provenance: Mapping[str, Any],
                overwrite: bool = False, threads: int | None = None, pipeline_from: Path | None = None,
                out_dtype: str | None = None, labels: Sequence[str] | None = None) -> MergedFiles:
    """The engine behind :func:`merge_files`: stream ``make_plan(tensor names)``'s ``merge_tensor`` over every
    weight file of ``in_paths`` (and ``base_path``) into ``out_dir``, atomically (module doc).

    ``pipeline_from``: the model directory whose other files (config, tokenizer, sentence-transformers
    pipeline) are copied (default: the first input); ``out_dtype``: the safetensors dtype (``"F32"``, ``"BF16"``…)
    of the floating tensors written (default: the first input's); ``labels``: the inputs' names in messages.
    """
    started = time.perf_counter()
    in_paths = [Path(p) for p in in_paths]
    labels = [f"model {i} ({p})" for i, p in enumerate(in_paths)] if labels is None else list(labels)
    found = [sources(p, f"model {i}") for i, p in enumerate(in_paths)]
    base_found = sources(base_path, "base") if base_path is not None else None
    kinds = {k for k, _ in found} | ({base_found[0]} if base_found else set())
    if len(kinds) > 1:
        raise MergeError("mix of model directories and .safetensors files; pass all directories or all files.")
    kind = found[0][0]
    group_names = list(found[0][1])
    if kind == "dir":
        others = [(groups, label) for (_, groups), label in zip(found[1:], labels[1:])]
        if base_found is not None:
            others.append((base_found[1], f"base ({base_path})"))
        for groups, label in others:
            for g in group_names:
                if g not in groups:
                    raise IncompatibleModelsError(f"{label} has no weight file {g!r} that model 0 has; "
                                                  "merge models with the same layout.")
            extra = [g for g in groups if g not in group_names]
            if extra:
                raise IncompatibleModelsError(f"{label} has weight file {extra[0]!r} that model 0 lacks; "
                                              "merge models with the same layout.")

    def group_files(i: int | None, g: str) -> list[Path]:
        groups = base_found[1] if i is None else found[i][1]  # type: ignore[index]
        return groups[g] if kind == "dir" else next(iter(groups.values()))

    jobs = []
    for g in group_names:
        models = [LazyStateDict(group_files(i, g), labels[i]) for i in range(len(in_paths))]
        b = LazyStateDict(group_files(None, g), f"base ({base_path})") if base_path is not None else None
        check_compatible([x.shapes() for x in models + ([b] if b is not None else [])],
                         labels + ([f"base ({base_path})"] if b is not None else []))
        plan = make_plan(list(models[0]))
        jobs.append((g, plan, models, b))

    out = Path(out_dir)
    check_output_dir(out, in_paths + ([base_path] if base_path is not None else []), overwrite=overwrite)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise MergeError(f"threads must be a positive integer, got {threads!r}.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a parent directory should be, no permission, …
        raise MergeError(f"cannot create the output's parent directory {str(out.parent)!r}: "
                         f"{exc.strerror or exc}; choose another output directory") from None
    from geomcheck._disk import remove_stale

    for infix in (_TMP_INFIX, _OLD_INFIX):  # what killed merges into this parent left (module doc)
        remove_stale(out.parent, f".*{infix}*", older_than_s=STALE_AFTER_S)
    needed = _output_size(jobs, (pipeline_from or in_paths[0]) if kind == "dir" else None)
    what = f"the merged model ({human(needed)})"
    check_free_space(out.parent, needed, what)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{_TMP_INFIX}", dir=out.parent))
    import torch

    threads_before = torch.get_num_threads()
    # The work is memory-bound and a writer thread runs beside it: more torch threads than
    # free cores make OpenMP spin-wait (measured on 2 cores: 3-4x the CPU time, slower wall).
    torch.set_num_threads(threads or max(1, min(threads_before, (os.cpu_count() or 2) - 1)))
    try:
        n_tensors = n_params = 0
        kept: list[str] = []
        written: list[str] = []
        provenance_text = json.dumps(dict(provenance), default=str)
        for g, plan, models, b in jobs:
            meta = {**models[0].metadata, "format": models[0].metadata.get("format", "pt"),
                    "geomcheck_merge": provenance_text}
            try:
                nt, npar, k = _write_merged(plan, models, b, tmp / g, meta, heartbeat=tmp, out_dtype=out_dtype)
            finally:
                for sd in models + ([b] if b is not None else []):
                    sd.close()
            n_tensors, n_params = n_tensors + nt, n_params + npar
            kept += k
            written.append(g)
        copied: list[str] = []
        skipped: list[str] = []
        if kind == "dir":
            copied, skipped = _copy_rest(pipeline_from or in_paths[0], tmp, set(written))
        (tmp / OUTPUT_MARKER).write_text(provenance_text + "\n")  # what --overwrite may replace later
        # mkdtemp makes the directory 0700; give it the mode a plain mkdir gets under the umask
        probe = tmp / ".mode-probe"
        probe.mkdir()
        os.chmod(tmp, probe.stat().st_mode & 0o7777)
        probe.rmdir()
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}{_OLD_INFIX}", dir=out.parent))
            os.replace(out, old / "x")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_no_space(exc):  # after the removal, so the free space reported is what the user has
            raise no_space_error(out.parent, needed, what) from None
        raise
    finally:
        torch.set_num_threads(threads_before)
    return MergedFiles(out, method, tuple(written), tuple(copied), tuple(skipped), tuple(kept), n_tensors, n_params,
                       time.perf_counter() - started, dict(params))
