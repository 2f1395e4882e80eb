"""The costly artefacts of a suite run, built once and kept on disk: the LoRA run and its variants.

``cached_lora_run`` trains the LoRA adapter once per base model and settings, and
``cached_variants`` builds the merged variants once per LoRA run; both are safe to call
from several processes at once (pytest-xdist workers): the first takes a file lock and
builds, the others wait and read. ``external_run`` wraps an adapter or checkpoints given
by the user instead of training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geomcheck._disk import remove_stale
from geomcheck.cache import lock_for
from geomcheck.errors import InvalidInputError

__all__ = ["ExternalRun", "cached_lora_run", "cached_variants", "external_run", "lora_cache_dir", "variants_cache_dir",
           "adapter_dir", "lora_steps", "LORA_DEFAULTS"]

# The LoRA the suites train when no adapter is given: the model's recipe (geomcheck.adapt.recipes:
# encoder r=16, 17 steps of SupCon, ~35 s for MiniLM on a 2-core CPU; decoder: top 10 layers,
# 20 steps) with 3 checkpoints and seed 0.
LORA_DEFAULTS: dict[str, Any] = {"checkpoints": 3, "seed": 0}
_FORMAT = 1  # bump when the cached artefacts' layout changes


def adapter_dir(path: str, what: str) -> Path:
    """``path`` as a peft adapter directory (it holds ``adapter_config.json``), else an ``InvalidInputError``."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise InvalidInputError(f"{what}: no directory at {path!r}")
    if not (p / "adapter_config.json").is_file():
        raise InvalidInputError(f"{what}: {path!r} is not a peft adapter directory (no adapter_config.json)")
    return p


@dataclass(frozen=True)
class ExternalRun:
    """A LoRA run given on the command line (``--adapter`` / ``--checkpoint``) instead of trained.

    Checkpoints may be peft adapter dirs or full model dirs; ``before``/``after`` are empty
    (the task gain is measured by the suite on the variants instead).
    """

    adapter_dir: Path
    checkpoint_dirs: tuple[Path, ...]
    base: str
    settings: dict[str, Any] = field(default_factory=dict)
    before: dict[str, dict[str, float]] = field(default_factory=dict)
    after: dict[str, dict[str, float]] = field(default_factory=dict)
    trained: bool = False


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_lora_run(base: Any, *, root: str | os.PathLike | None = None, cache: bool = True,
                    progress: bool = False, **train_kw: Any) -> Any:
    """``train_lora(base, **LORA_DEFAULTS | train_kw)`` (the rest from ``recipe_for(base)``), kept under
    ``root/lora/<key>``.

    The key is the base model's fingerprint plus the training settings and the task
    (``train_data=``'s ``describe()``: a ``TextTask`` on another dataset is another run), so a
    warm run reads the adapter and its before/after numbers back instead of training again.
    ``cache=False`` trains into a fresh temporary directory.
    """
    import tempfile

    from geomcheck.adapt.lora import LoraRun, train_lora

    kw = {**LORA_DEFAULTS, **train_kw}  # the rest from the model's recipe, inside train_lora
    if not cache:
        return train_lora(base, out_dir=tempfile.mkdtemp(prefix="geomcheck-lora-"), progress=progress, **kw)
    out = Path(root) if root is not None else lora_cache_dir(base, **train_kw)
    with lock_for(out):
        record = out / "lora_run.json"
        if record.is_file():
            try:
                return LoraRun.from_dict(json.loads(record.read_text()))
            except (ValueError, KeyError, TypeError):
                pass  # a half-written or old record: train again
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(out.parent, f".{out.name}.tmp-*")  # what a killed run (SIGKILL) left
        # Trained beside its place and moved there whole: an interrupted run (Ctrl-C) leaves nothing.
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        try:
            run = train_lora(base, out_dir=tmp, progress=progress, **kw)
            run = dataclasses.replace(run, adapter_dir=out / run.adapter_dir.relative_to(tmp),
                                      checkpoint_dirs=tuple(out / p.relative_to(tmp) for p in run.checkpoint_dirs))
            (tmp / "lora_run.json").write_text(json.dumps(run.to_dict(), indent=1, default=str))
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return run


def lora_cache_dir(base: Any, **train_kw: Any) -> Path:
    """Where ``cached_lora_run`` keeps the run of ``base`` with these settings (``lora_run.json`` once done)."""
    from geomcheck.cache import cache_dir

    from geomcheck.adapt.recipes import recipe_for

    settings = {**recipe_for(base, train_kw.get("recipe", "auto")).train_kwargs(), **LORA_DEFAULTS, **train_kw}
    if settings.get("train_data") is not None:  # the task itself, not its repr: another dataset is another run
        settings["train_data"] = settings["train_data"].describe()
    key = _digest({"format": _FORMAT, "base": base.fingerprint, "settings": settings})
    return cache_dir() / "lora" / key


def cached_variants(base: Any, run: Any, methods: Sequence[str], *, device: str = "auto", cache: bool = True,
                    root: str | os.PathLike | None = None, t: float = 0.5, user: Sequence[Any] = (),
                    progress: Any = None) -> Any:
    """``build_variants`` under ``root/variants/<key>`` (key: base, adapter, checkpoints, methods, t).

    Returns a ``geomcheck.adapt.variants.Variants``: the ``Embedder`` per variant name, with
    ``info`` (the contents of ``variants.json``: merge diagnostics such as the SLERP fallback
    shares). Methods the run cannot build (checkpoint merges of a run with fewer than two
    checkpoints) are left out.

    ``user``: your own merges (``geomcheck.adapt.user_variants.UserVariant``: a merged model directory or
    a mergekit recipe, built once into the cache) beside them, each checked to be a merge of the base
    (else an ``IncompatibleModelsError`` naming what differs) and loaded; one that cannot be loaded or
    embed a text is left out and its error kept in ``Variants.broken`` (its tests fail with it).
    ``info["dirs"]`` holds every variant's directory, user variants' too; ``info["user"]`` what was given.
    ``progress(text)`` hears of recipe builds.
    """
    import tempfile

    from geomcheck.adapt.variants import Variants, build_variants, buildable

    methods = tuple(buildable(methods, len(run.checkpoint_dirs)))
    if not cache:
        out = Path(tempfile.mkdtemp(prefix="geomcheck-variants-"))
    else:
        out = Path(root) if root is not None else variants_cache_dir(base, run, methods, t=t)
    with lock_for(out):
        embedders = build_variants(base, run, methods=methods, t=t, out_dir=out, device=device)
    info = json.loads((out / "variants.json").read_text())
    broken: dict[str, str] = {}
    if user:
        from geomcheck.adapt.user_variants import recipe_bind, user_variant_dirs

        trust = bool(getattr(base, "trust_remote_code", False))
        with lock_for(out):  # checkpoint copies a recipe names are written beside the variants
            bind = recipe_bind(user, info["dirs"], run.checkpoint_dirs, out, trust_remote_code=trust)
        dirs = user_variant_dirs(user, info["dirs"]["base"], cache=cache, base_name=base.name, progress=progress,
                                 bind=bind)
        info["dirs"] = {**info["dirs"], **{n: str(d) for n, d in dirs.items()}}
        info["user"] = {v.name: str(v.path) for v in user}
        for name, d in dirs.items():
            loaded = _load_user_variant(d, device, trust)
            if isinstance(loaded, str):
                broken[name] = loaded
            else:
                embedders[name] = loaded
    for name, e in embedders.items():
        e.name = base.name if name == "base" else f"{base.name}+{name}"  # not the cache path, in messages
        e.cache = cache
    return Variants(embedders, info, len(run.checkpoint_dirs), broken=broken)


def _load_user_variant(path: Path, device: str, trust: bool) -> Any:
    """The ``Embedder`` of a user's merged directory, or the text of why it cannot load or embed one text (a
    pipeline that lost its pooling fails in sentence-transformers, deep inside: the check names the cause)."""
    from geomcheck.models import load_model

    try:
        emb = load_model(str(path), device=device, trust_remote_code=trust)
        emb.model.encode(["1, 2, 3"], show_progress_bar=False)  # a pipeline without pooling loads, then fails here
    except Exception as exc:  # noqa: BLE001 - any failure of the user's files becomes that variant's verdict
        return f"cannot be loaded and embed a text ({type(exc).__name__}: {exc})"
    return emb


def variants_cache_dir(base: Any, run: Any, methods: Sequence[str], *, t: float = 0.5) -> Path:
    """Where ``cached_variants`` keeps these variants (``variants.json`` once they are all built)."""
    from geomcheck.adapt.variants import buildable
    from geomcheck.cache import cache_dir
    from geomcheck.models.files import weights_digest_of_dir

    methods = tuple(buildable(methods, len(run.checkpoint_dirs)))
    key = _digest({"format": _FORMAT, "base": base.fingerprint, "adapter": weights_digest_of_dir(run.adapter_dir),
                   "checkpoints": [weights_digest_of_dir(c) for c in run.checkpoint_dirs], "methods": methods, "t": t})
    return cache_dir() / "variants" / key


def external_run(base_name: str, adapter: str | None, checkpoints: Sequence[str]) -> ExternalRun:
    """The run given by ``--adapter`` and/or ``--checkpoint`` (the adapter defaults to the last checkpoint)."""
    ckpts = tuple(Path(c).expanduser() for c in checkpoints)
    if adapter is None and not ckpts:
        raise InvalidInputError("external_run needs --adapter or at least one --checkpoint")
    adapter_dir = Path(adapter).expanduser() if adapter is not None else ckpts[-1]
    return ExternalRun(adapter_dir, ckpts or (adapter_dir,), base_name,
                       settings={"adapter": str(adapter_dir), "checkpoints": [str(c) for c in ckpts]})


def lora_steps(base: Any, **train_kw: Any) -> int:
    """How many steps ``cached_lora_run(base, **train_kw)`` trains (for progress lines)."""
    from geomcheck.adapt.recipes import recipe_for

    return int(train_kw.get("max_steps") or recipe_for(base, train_kw.get("recipe", "auto")).max_steps)
