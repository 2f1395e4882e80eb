"""Model variants of one LoRA run as ``Embedder``s: base, lora, soup, slerp, … each a full model directory.

Every variant is a complete sentence-transformers directory (tokenizer, pooling,
normalisation, prompts kept — mergekit keeps only the transformer weights,
arcee-ai/mergekit#286), written under ``out_dir/<name>`` and loaded with
``load_model``, so its fingerprint comes from its own weight files and the embedding cache
tells variants apart.

- ``base``: the model itself; ``lora``: the final adapter merged into the base;
- ``soup``: uniform average of the checkpoints, each merged into the base (nemotron-style);
- ``slerp``: SLERP(base, lora, t); ``slerp_ckpt``: SLERP(first checkpoint, last checkpoint, t);
- any other method of ``geomcheck.merge.METHODS``: task-vector methods (``task_arithmetic``,
  ``ties``, ``dare_*``, ``model_stock``) combine the checkpoints against the base; the
  spherical ones (``multislerp``, ``karcher``) and ``linear`` average the checkpoints;
  two-model methods (``nuslerp``) take the first and last checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geomcheck.errors import InvalidInputError

__all__ = ["build_variants", "save_with_adapter", "variant_methods", "merges_checkpoints", "buildable", "Variants",
           "DEFAULT_METHODS"]

DEFAULT_METHODS: tuple[str, ...] = ("soup", "slerp", "slerp_ckpt")


def variant_methods() -> tuple[str, ...]:
    """Every name ``build_variants`` takes: ``DEFAULT_METHODS`` and each method of ``geomcheck.merge.METHODS``."""
    from geomcheck.merge import METHODS

    return DEFAULT_METHODS + tuple(m for m in METHODS if m not in DEFAULT_METHODS)


def merges_checkpoints(method: str) -> bool:
    """Whether the variant ``method`` merges the LoRA run's checkpoints (all but "slerp", which takes base and lora)."""
    return method != "slerp"


def buildable(methods: Sequence[str], n_checkpoints: int) -> list[str]:
    """The ``methods`` a LoRA run with ``n_checkpoints`` checkpoints can build (checkpoint merges need two)."""
    return [m for m in dict.fromkeys(methods) if not merges_checkpoints(m) or n_checkpoints >= 2]


class Variants(dict):
    """``{"base", "lora", <method>…}`` → ``Embedder``, with the merge diagnostics (``info``, the contents
    of ``variants.json``) and the number of checkpoints of the LoRA run they came from."""

    def __init__(self, embedders: dict[str, Any], info: dict[str, Any], n_checkpoints: int):
        super().__init__(embedders)
        self.info = info
        self.n_checkpoints = n_checkpoints


def save_with_adapter(base: Any, adapter_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the base model with a LoRA adapter merged in as a sentence-transformers directory.

    ``adapter_dir`` may also be a full fine-tuned model directory (no ``adapter_config.json``):
    it is re-saved as it is, in the same layout as the other variants.
    """
    from geomcheck.adapt import load_adapter
    from geomcheck.models import load_model

    out = Path(out)
    if not (out / "modules.json").is_file():
        if (Path(adapter_dir) / "adapter_config.json").is_file():
            emb = load_adapter(base, adapter_dir)
        else:
            emb = load_model(str(adapter_dir), dtype="float32", cache=False)
        _save_whole(emb, out)
    return out


def _save_whole(emb: Any, out: Path) -> None:
    """Save the model into a temporary sibling and rename it into place: a process killed while
    saving leaves no directory that looks complete (``modules.json`` present) to a later run."""
    import shutil

    from geomcheck.models._pipeline import quiet_progress

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        with quiet_progress():
            emb.model.save(str(tmp), create_model_card=False)
        if out.exists():  # never an earlier save of ours (those are renamed into place whole): not ours to delete
            raise InvalidInputError(f"{out} exists and is not a complete model directory (no modules.json); "
                                    f"remove it, or build the variants into another out_dir")
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _resave(base: Any, out: Path) -> Path:
    """The base in the same on-disk layout as the merged variants (same weight key names)."""
    from geomcheck.models import load_model
    from geomcheck.models.embedder import Embedder

    if not (out / "modules.json").is_file():
        emb = base if isinstance(base, Embedder) else load_model(str(base), dtype="float32", cache=False)
        _save_whole(emb, out)
    return out


def build_variants(
    base: Any,
    lora_run: Any,
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    t: float = 0.5,
    out_dir: str | os.PathLike | None = None,
    device: str = "auto",
    merge_params: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``{"base", "lora", <method>…}`` → ``Embedder`` for ``lora_run`` (a ``LoraRun``) on ``base``.

    ``methods``: "soup", "slerp", "slerp_ckpt" or any name in ``geomcheck.merge.METHODS``;
    ``t``: the interpolation weight of the SLERP variants; ``merge_params``: extra
    parameters per method (e.g. ``{"ties": {"density": 0.5}}``). Writes ``variants.json``
    with the SLERP diagnostics (share of tensors where SLERP equals LERP) in ``out_dir``.
    """
    from geomcheck.merge import METHODS, merge_diagnostics, merge_files
    from geomcheck.models import load_model

    if not 0 <= t <= 1:
        raise InvalidInputError(f"t must lie in [0, 1], got {t}")
    known = variant_methods()
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise InvalidInputError(f"unknown variant method(s) {unknown}; known: {', '.join(sorted(known))}")
    ckpts = list(getattr(lora_run, "checkpoint_dirs", ()))
    needs_ckpts = [m for m in methods if merges_checkpoints(m)]
    if needs_ckpts and len(ckpts) < 2:
        raise InvalidInputError(
            f"{', '.join(needs_ckpts)} merge checkpoints, but the LoRA run has {len(ckpts)}; "
            f"train with checkpoints >= 2"
        )
    root = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="geomcheck-variants-"))
    root.mkdir(parents=True, exist_ok=True)
    from geomcheck.cache import remove_stale

    remove_stale(root, ".*.tmp-*")  # model copies a killed build left (saves and merges rename theirs away)
    params = merge_params or {}

    dirs: dict[str, Path] = {"base": _resave(base, root / "base")}
    dirs["lora"] = save_with_adapter(dirs["base"], lora_run.adapter_dir, root / "lora")
    ck_dirs = [save_with_adapter(dirs["base"], c, root / f"ckpt-{i}") for i, c in enumerate(ckpts)] if needs_ckpts else []
    info: dict[str, Any] = {"t": t, "checkpoints": [str(c) for c in ckpts]}
    try:  # diagnostics of an earlier build into the same directory (they read every weight twice)
        old = json.loads((root / "variants.json").read_text())
    except (OSError, ValueError):
        old = {}
    if old.get("t") != t or old.get("checkpoints") != info["checkpoints"]:
        old = {}

    def merged(name: str, method: str, paths: list[Path], base_dir: Path | None = None, **kw: Any) -> None:
        out = root / name
        if not (out / "modules.json").is_file():
            merge_files(method, [str(p) for p in paths], str(out), base=str(base_dir) if base_dir else None,
                        **{**kw, **params.get(name, {})})
        dirs[name] = out

    for m in methods:
        if m == "soup":
            merged("soup", "linear", ck_dirs)
        elif m == "slerp":
            merged("slerp", "slerp", [dirs["base"], dirs["lora"]], t=t)
            info["slerp"] = old.get("slerp") or _fallback_summary(merge_diagnostics(str(dirs["base"]), str(dirs["lora"])))
        elif m == "slerp_ckpt":
            merged("slerp_ckpt", "slerp", [ck_dirs[0], ck_dirs[-1]], t=t)
            info["slerp_ckpt"] = (old.get("slerp_ckpt")
                                  or _fallback_summary(merge_diagnostics(str(ck_dirs[0]), str(ck_dirs[-1]))))
        elif METHODS[m].uses_task_vectors:
            merged(m, m, ck_dirs, dirs["base"])
        elif not METHODS[m].accepts(len(ck_dirs)):
            merged(m, m, [ck_dirs[0], ck_dirs[-1]])  # two-model methods (nuslerp): first and last checkpoint
        else:
            merged(m, m, ck_dirs)
    (root / "variants.json").write_text(json.dumps({**info, "dirs": {k: str(v) for k, v in dirs.items()}}, indent=1))
    return {name: load_model(str(path), device=device) for name, path in dirs.items()
            if name in ("base", "lora") or name in methods}


def _fallback_summary(diag: Any) -> dict[str, float]:
    """How much of the SLERP is plain linear interpolation (|cos| above the threshold)."""
    changed = [r for r in diag.tensors if r.rel_change > 0]
    return {
        "tensors": len(diag.tensors),
        "share_tensors_slerp_is_lerp": diag.lerp_share_tensors,
        "share_params_slerp_is_lerp": diag.lerp_share_parameters,
        "share_changed_tensors_slerp_is_lerp": (sum(r.slerp_is_lerp for r in changed) / len(changed)
                                                if changed else float("nan")),
        "mean_angle_deg": diag.mean_angle_deg,
    }
