"""What a geometry suite run is configured with, and its costly shared artefacts, without pytest.

``SuiteSettings`` holds the plugin's options after validation (a bad value is a
``GeomcheckError`` with a message, raised before any test runs). ``cached_lora_run`` trains
the LoRA adapter once per base model and settings and keeps it on disk, and
``cached_variants`` builds the merged variants once per LoRA run; both are safe to call
from several processes at once (pytest-xdist workers): the first takes a file lock and
builds, the others wait and read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from geomcheck.errors import InvalidInputError

__all__ = ["SuiteSettings", "ExternalRun", "cached_lora_run", "cached_variants", "external_run", "lora_cache_dir",
           "model_id", "settings_dict", "LORA_DEFAULTS", "DEFAULT_MERGES"]

DEFAULT_MERGES: tuple[str, ...] = ("soup", "slerp")
# The LoRA the suites train when no adapter is given: adapt's defaults (r=16, 17 steps of
# SupCon, 3 checkpoints), i.e. ~35 s for MiniLM on a 2-core CPU.
LORA_DEFAULTS: dict[str, Any] = {"r": 16, "alpha": 16, "max_steps": 17, "checkpoints": 3, "seed": 0}
_FORMAT = 1  # bump when the cached artefacts' layout changes


def model_id(name: str) -> str:
    """The test id of a model: its alias, or the last part of a path or HF id (``/x/ckpt-3/`` → ``ckpt-3``).

    Also the name of its default baseline file, ``<geomcheck_baselines>/<id>.json``.
    """
    text = str(name).rstrip("/\\")
    return Path(text).name if (os.sep in text or text.startswith((".", "~")) or Path(text).exists()) else text


@dataclass(frozen=True)
class SuiteSettings:
    """Validated plugin options (see ``pytest --help``, group geomcheck)."""

    models: tuple[str, ...] = ("minilm",)
    base_model: str | None = None
    adapter: str | None = None
    checkpoints: tuple[str, ...] = ()
    merges: tuple[str, ...] = DEFAULT_MERGES
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | None = None
    families: tuple[str, ...] | None = None
    per_family: int = 4
    seq_length: int = 50
    report_dir: str | None = None
    baseline: str | None = None
    update_baseline: bool = False
    cache: bool = True
    paper_claims: bool = False
    tolerances: dict[str, float] = field(default_factory=dict)

    def validate(self) -> SuiteSettings:
        """Check every value without loading a model (paths, names, ranges); returns self."""
        from geomcheck.merge import METHODS
        from geomcheck.models import resolve
        from geomcheck._device import check_device
        from geomcheck.models.loading import dtype_name_ok
        from geomcheck.sequences import get_family
        from geomcheck.variants import DEFAULT_METHODS

        if not self.models:
            raise InvalidInputError("--model: give at least one model")
        from geomcheck.errors import GeomcheckError

        for option, name in [("--model", m) for m in self.models] + [("--base-model", self.base_model)]:
            if name is None:
                continue
            try:
                resolve(name)
            except GeomcheckError as exc:
                raise type(exc)(f"{option}: {exc}") from None
        if self.adapter is not None:
            _adapter_dir(self.adapter, "--adapter")
        for c in self.checkpoints:
            p = Path(c).expanduser()
            if not p.is_dir():
                raise InvalidInputError(f"--checkpoint: no directory at {c!r}")
            if not ((p / "adapter_config.json").is_file() or (p / "config.json").is_file()
                    or (p / "modules.json").is_file()):
                raise InvalidInputError(f"--checkpoint: {c!r} is neither a peft adapter (adapter_config.json) "
                                        f"nor a model directory (config.json / modules.json)")
        known = set(DEFAULT_METHODS) | set(METHODS)
        bad = [m for m in self.merges if m not in known]
        if bad:
            raise InvalidInputError(f"--merge: unknown method(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        if not dtype_name_ok(self.dtype):
            raise InvalidInputError(f"--dtype must be one of auto, float32, bfloat16, float16, got {self.dtype!r}")
        check_device(self.device, what="--device")
        if self.batch_size is not None and self.batch_size < 1:
            raise InvalidInputError(f"--batch-size must be >= 1, got {self.batch_size}")
        for f in self.families or ():
            get_family(f)
        if self.families is not None and len(set(self.families)) < 2:
            raise InvalidInputError(f"--families: the cluster metrics need at least 2 families, got {self.families}")
        if self.per_family < 2:
            raise InvalidInputError(f"--per-family must be >= 2 (silhouette needs 2 texts per family), got {self.per_family}")
        if self.seq_length < 1:
            raise InvalidInputError(f"--seq-length must be >= 1, got {self.seq_length}")
        if self.baseline is not None and not self.update_baseline and not Path(self.baseline).is_file():
            raise InvalidInputError(f"--geomcheck-baseline: no file at {self.baseline!r} "
                                    f"(write one with --geomcheck-update-baseline)")
        if self.report_dir is not None and Path(self.report_dir).exists() and not Path(self.report_dir).is_dir():
            raise InvalidInputError(f"--geomcheck-report: {self.report_dir!r} exists and is not a directory")
        return self

    def dataset(self) -> Any:
        """The suites' main dataset: the paper's protocol, or ``--families/--per-family/--seq-length``."""
        from geomcheck.sequences import PAPER_FAMILIES, make_dataset

        return make_dataset(self.families or PAPER_FAMILIES, self.per_family, self.seq_length)

    @property
    def is_paper_protocol(self) -> bool:
        from geomcheck.sequences import PAPER_FAMILIES

        return (self.families in (None, PAPER_FAMILIES)) and self.per_family == 4 and self.seq_length == 50

    def load_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"device": self.device, "dtype": self.dtype, "cache": self.cache}
        if self.batch_size is not None:
            kw["batch_size"] = self.batch_size
        return kw


def _adapter_dir(path: str, what: str) -> Path:
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


def _lock(path: Path):
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")


def cached_lora_run(base: Any, *, root: str | os.PathLike | None = None, cache: bool = True,
                    progress: bool = False, **train_kw: Any) -> Any:
    """``train_lora(base, **LORA_DEFAULTS | train_kw)``, kept under ``root/lora/<key>``.

    The key is the base model's fingerprint plus the training settings, so a warm run
    reads the adapter and its before/after numbers back instead of training again.
    ``cache=False`` trains into a fresh temporary directory.
    """
    import tempfile

    from geomcheck.adapt import LoraRun, train_lora

    kw = {**LORA_DEFAULTS, **train_kw}
    if not cache:
        return train_lora(base, out_dir=tempfile.mkdtemp(prefix="geomcheck-lora-"), progress=progress, **kw)
    out = Path(root) if root is not None else lora_cache_dir(base, **train_kw)
    with _lock(out):
        record = out / "lora_run.json"
        if record.is_file():
            try:
                return LoraRun.from_dict(json.loads(record.read_text()))
            except (ValueError, KeyError, TypeError):
                shutil.rmtree(out, ignore_errors=True)  # a half-written or old record: train again
        return train_lora(base, out_dir=out, progress=progress, **kw)


def lora_cache_dir(base: Any, **train_kw: Any) -> Path:
    """Where ``cached_lora_run`` keeps the run of ``base`` with these settings (``lora_run.json`` once done)."""
    from geomcheck.cache import cache_dir

    key = _digest({"format": _FORMAT, "base": base.fingerprint, "settings": {**LORA_DEFAULTS, **train_kw}})
    return cache_dir() / "lora" / key


def cached_variants(base: Any, run: Any, methods: Sequence[str], *, device: str = "auto", cache: bool = True,
                    root: str | os.PathLike | None = None, t: float = 0.5) -> tuple[dict[str, Any], dict[str, Any]]:
    """``build_variants`` under ``root/variants/<key>`` (key: base, adapter, checkpoints, methods, t).

    Returns ``(embedders, info)``: the ``Embedder`` per variant name and the contents of
    ``variants.json`` (merge diagnostics such as the SLERP fallback shares).
    """
    import tempfile

    from geomcheck.cache import cache_dir
    from geomcheck.embedding import weights_digest_of_dir
    from geomcheck.variants import build_variants

    methods = tuple(dict.fromkeys(methods))
    if not cache:
        out = Path(tempfile.mkdtemp(prefix="geomcheck-variants-"))
    else:
        key = _digest({"format": _FORMAT, "base": base.fingerprint, "adapter": weights_digest_of_dir(run.adapter_dir),
                       "checkpoints": [weights_digest_of_dir(c) for c in run.checkpoint_dirs],
                       "methods": methods, "t": t})
        out = Path(root) if root is not None else cache_dir() / "variants" / key
    with _lock(out):
        embedders = build_variants(base, run, methods=methods, t=t, out_dir=out, device=device)
    info = json.loads((out / "variants.json").read_text())
    for name, e in embedders.items():
        e.name = base.name if name == "base" else f"{base.name}+{name}"  # not the cache path, in messages
        e.cache = cache
    return embedders, info


def external_run(base_name: str, adapter: str | None, checkpoints: Sequence[str]) -> ExternalRun:
    """The run given by ``--adapter`` and/or ``--checkpoint`` (the adapter defaults to the last checkpoint)."""
    ckpts = tuple(Path(c).expanduser() for c in checkpoints)
    if adapter is None and not ckpts:
        raise InvalidInputError("external_run needs --adapter or at least one --checkpoint")
    adapter_dir = Path(adapter).expanduser() if adapter is not None else ckpts[-1]
    return ExternalRun(adapter_dir, ckpts or (adapter_dir,), base_name,
                       settings={"adapter": str(adapter_dir), "checkpoints": [str(c) for c in ckpts]})


def settings_dict(s: SuiteSettings) -> dict[str, Any]:
    """The settings as a JSON-able dict (for report.json)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(s).items()}
