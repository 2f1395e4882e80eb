"""Model variants of one LoRA run as ``Embedder``s: base, lora, soup, slerp, … each a full model directory.

Every variant is a complete sentence-transformers directory (tokenizer, pooling,
normalisation, prompts kept — mergekit keeps only the transformer weights,
arcee-ai/mergekit#286), written under ``out_dir/<name>`` and loaded with
``load_model``, so its fingerprint comes from its own weight files and the embedding cache
tells variants apart.

- ``base``: the model itself; ``lora``: the final adapter merged into the base;
- ``soup``: uniform average of the checkpoints, each merged into the base (nemotron-style);
- ``slerp``: SLERP(base, lora, t); ``slerp_ckpt``: SLERP(first checkpoint, last checkpoint, t);
- named variants (``NAMED``), a method with fixed parameters: ``slerp_row`` = SLERP(base, lora, t,
  granularity="row"); ``slerp_gradient`` = SLERP(base, lora) with the depth anchors t = [0, 1]
  (layer i of L at t = i / (L - 1): the bottom layer stays the base, the top one is the LoRA's;
  tensors outside the numbered layers — embeddings, final norm, pooler — take the first anchor,
  t = 0, i.e. the base's; the variants' ``t`` does not apply); ``nuslerp_row`` = NuSLERP(first,
  last checkpoint, flatten=False, row_wise=True), mergekit's ``nuslerp_row_wise`` (one great
  circle per vector along the first axis — per column of a torch ``[out, in]`` weight), beside
  ``nuslerp`` (flattened: the whole tensor is one vector);
- any other method of ``geomcheck.merge.METHODS``: task-vector methods (``task_arithmetic``,
  ``ties``, ``dare_*``, ``model_stock``) combine the checkpoints against the base; the
  spherical ones (``multislerp``, ``karcher``) and ``linear`` average the checkpoints;
  two-model methods (``nuslerp``) take the first and last checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geomcheck.errors import InvalidInputError

__all__ = ["build_variants", "save_with_adapter", "variant_methods", "merges_checkpoints", "buildable", "Variants",
           "DEFAULT_METHODS", "NAMED", "NamedVariant", "INTERPOLATING", "interpolating", "sweep_methods", "build_sweep",
           "SWEEP_TS"]

DEFAULT_METHODS: tuple[str, ...] = ("soup", "slerp", "slerp_ckpt")


@dataclass(frozen=True)
class NamedVariant:
    """A variant that is a merge ``method`` with fixed ``params``, of base → lora (``ends="base_lora"``,
    with the variants' ``t`` unless ``params`` fix it) or of the first → last checkpoint (``"checkpoints"``)."""

    method: str
    ends: str
    params: dict[str, Any] = field(default_factory=dict)
    uses_t: bool = True


# The anchors of slerp_gradient: mergekit's gradient syntax (geomcheck.merge._base), bottom layer 0, top layer 1.
GRADIENT_T: tuple[float, ...] = (0.0, 1.0)

NAMED: dict[str, NamedVariant] = {
    "slerp_row": NamedVariant("slerp", "base_lora", {"granularity": "row"}),
    "slerp_gradient": NamedVariant("slerp", "base_lora", {"t": list(GRADIENT_T)}, uses_t=False),
    "nuslerp_row": NamedVariant("nuslerp", "checkpoints", {"flatten": False, "row_wise": True}, uses_t=False),
}


def variant_methods() -> tuple[str, ...]:
    """Every name ``build_variants`` takes: ``DEFAULT_METHODS``, ``NAMED`` and each method of ``geomcheck.merge.METHODS``."""
    from geomcheck.merge import METHODS

    named = DEFAULT_METHODS + tuple(NAMED)
    return named + tuple(m for m in METHODS if m not in named)


def merges_checkpoints(method: str) -> bool:
    """Whether the variant ``method`` merges the LoRA run's checkpoints (all but the SLERPs of base and lora)."""
    return method != "slerp" and not (method in NAMED and NAMED[method].ends == "base_lora")


def buildable(methods: Sequence[str], n_checkpoints: int) -> list[str]:
    """The ``methods`` a LoRA run with ``n_checkpoints`` checkpoints can build (checkpoint merges need two)."""
    return [m for m in dict.fromkeys(methods) if not merges_checkpoints(m) or n_checkpoints >= 2]


class Variants(dict):
    """``{"base", "lora", <method>…, <your own>…}`` → ``Embedder``, with the merge diagnostics (``info``, the
    contents of ``variants.json``; ``info["dirs"]`` every variant's directory), the number of checkpoints of the
    LoRA run they came from, and ``broken``: your own variants that could not be loaded → why."""

    def __init__(self, embedders: dict[str, Any], info: dict[str, Any], n_checkpoints: int,
                 broken: dict[str, str] | None = None):
        super().__init__(embedders)
        self.info = info
        self.n_checkpoints = n_checkpoints
        self.broken = dict(broken or {})


def save_with_adapter(base: Any, adapter_dir: str | os.PathLike, out: str | os.PathLike, *,
                      trust_remote_code: bool = False) -> Path:
    """Write the base model with a LoRA adapter merged in as a sentence-transformers directory.

    ``adapter_dir`` may also be a full fine-tuned model directory (no ``adapter_config.json``):
    it is re-saved as it is, in the same layout as the other variants.
    """
    from geomcheck.adapt import load_adapter
    from geomcheck.models import load_model

    from geomcheck.merge.validate import check_finite_files

    out = Path(out)
    if not (out / "modules.json").is_file():
        is_adapter = (Path(adapter_dir) / "adapter_config.json").is_file()
        # on the user's files: merged in or re-saved, a NaN would be reported in our copy, a cache path
        check_finite_files(adapter_dir, "the LoRA adapter" if is_adapter else "the model")
        if is_adapter:
            emb = load_adapter(base, adapter_dir, trust_remote_code=trust_remote_code)
        else:
            emb = load_model(str(adapter_dir), dtype="float32", cache=False, trust_remote_code=trust_remote_code)
        _save_whole(emb, out)
    return out


def _save_whole(emb: Any, out: Path) -> None:
    """Save the model into a temporary sibling and rename it into place: a process killed while
    saving leaves no directory that looks complete (``modules.json`` present) to a later run."""
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


def _resave(base: Any, out: Path, trust_remote_code: bool = False) -> Path:
    """The base in the same on-disk layout as the merged variants (same weight key names)."""
    from geomcheck.models import load_model
    from geomcheck.models.embedder import Embedder

    if not (out / "modules.json").is_file():
        if not isinstance(base, Embedder) and Path(str(base)).exists():
            from geomcheck.merge.validate import check_finite_files

            check_finite_files(base, "the base model")
        emb = base if isinstance(base, Embedder) else load_model(str(base), dtype="float32", cache=False,
                                                                  trust_remote_code=trust_remote_code)
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
    load: bool = True,
    trust_remote_code: bool | None = None,
) -> dict[str, Any]:
    """``{"base", "lora", <method>…}`` → ``Embedder`` for ``lora_run`` (a ``LoraRun``) on ``base``.

    ``methods``: "soup", "slerp", "slerp_ckpt", a ``NAMED`` variant or any name in
    ``geomcheck.merge.METHODS``; ``t``: the interpolation weight of the SLERP variants;
    ``merge_params``: extra parameters per method (e.g. ``{"ties": {"density": 0.5}}``). Writes
    ``variants.json`` with the SLERP diagnostics (share of tensors where SLERP equals LERP; for
    ``slerp_row`` of changed rows, and of tensors where every changed row does) in ``out_dir``.
    ``load=False`` returns the directories instead of ``Embedder``s (load them one at a time to
    bound memory). ``trust_remote_code``: whether the base's own code may run (default: as ``base``, an
    ``Embedder``, was loaded); the variants are saved from it and carry the same code.
    """
    from geomcheck.merge import METHODS, merge_diagnostics, merge_files
    from geomcheck.models import load_model

    if not 0 <= t <= 1:
        raise InvalidInputError(f"t must lie in [0, 1], got {t!r}")
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
    from geomcheck._disk import remove_stale

    remove_stale(root, ".*.tmp-*")  # model copies a killed build left (saves and merges rename theirs away)
    params = merge_params or {}
    trust = bool(getattr(base, "trust_remote_code", False) if trust_remote_code is None else trust_remote_code)

    dirs: dict[str, Path] = {"base": _resave(base, root / "base", trust)}

    def fitting(made: Path, what: str) -> Path:
        """``made`` (our copy of the user's ``what``) when its shapes are the base's, else an error naming ``what``."""
        from geomcheck.errors import IncompatibleModelsError
        from geomcheck.merge.validate import check_fits_base

        try:
            check_fits_base(made, dirs["base"], what)
        except IncompatibleModelsError:
            shutil.rmtree(made, ignore_errors=True)  # a copy no merge here can use: not kept for the next build
            raise
        return made

    lora_dir = save_with_adapter(dirs["base"], lora_run.adapter_dir, root / "lora", trust_remote_code=trust)
    dirs["lora"] = fitting(lora_dir, f"the LoRA model {str(lora_run.adapter_dir)!r}")
    ck_dirs = [fitting(save_with_adapter(dirs["base"], c, root / f"ckpt-{i}", trust_remote_code=trust),
                       f"checkpoint {i} ({str(c)!r})") for i, c in enumerate(ckpts)] if needs_ckpts else []
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

    pair_diag: dict[tuple[str, str], Any] = {}

    def diagnosed(name: str, a: Path, b: Path) -> None:  # tensor-wise fallback; one read per pair of endpoints
        if old.get(name):
            info[name] = old[name]
            return
        if (str(a), str(b)) not in pair_diag:
            pair_diag[(str(a), str(b))] = _fallback_summary(merge_diagnostics(str(a), str(b)))
        info[name] = pair_diag[(str(a), str(b))]

    for m in methods:
        if m == "soup":
            merged("soup", "linear", ck_dirs)
        elif m == "slerp":
            merged("slerp", "slerp", [dirs["base"], dirs["lora"]], t=t)
            diagnosed("slerp", dirs["base"], dirs["lora"])
        elif m in NAMED:
            spec = NAMED[m]
            ends = [dirs["base"], dirs["lora"]] if spec.ends == "base_lora" else [ck_dirs[0], ck_dirs[-1]]
            merged(m, spec.method, ends, **({"t": t} if spec.uses_t else {}), **spec.params)
            if m == "slerp_gradient":
                diagnosed(m, *ends)
            elif m == "slerp_row":
                info[m] = old.get(m) or _row_summary(*ends)
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
    wanted = {name: path for name, path in dirs.items() if name in ("base", "lora") or name in methods}
    return ({name: load_model(str(path), device=device, trust_remote_code=trust) for name, path in wanted.items()}
            if load else wanted)


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


def _row_summary(a: Path, b: Path, dot_threshold: float = 0.9995) -> dict[str, float]:
    """How much of a row-wise SLERP is plain linear interpolation: per changed row, |cos| above the threshold
    (as ``slerp(granularity="row")`` decides); a changed tensor counts as LERP when all its changed rows are."""
    import torch

    from geomcheck.merge import lazy_state_dict

    sa, sb = lazy_state_dict(a), lazy_state_dict(b)
    rows = lerp_rows = tensors = lerp_tensors = 0
    for name in sa:
        x, y = sa[name], sb[name]
        if not x.is_floating_point():
            continue
        x = x.to(torch.float64).reshape(x.shape[0] if x.dim() > 1 else 1, -1)
        y = y.to(torch.float64).reshape(x.shape)
        changed = (x != y).any(dim=1)
        if not changed.any():
            continue
        nx, ny = torch.linalg.vector_norm(x, dim=1), torch.linalg.vector_norm(y, dim=1)
        one = torch.ones_like(nx)
        cos = (x * y).sum(dim=1) / (torch.where(nx > 1e-8, nx, one) * torch.where(ny > 1e-8, ny, one))
        lerp = (cos.abs() > dot_threshold)[changed]
        rows, lerp_rows = rows + int(changed.sum()), lerp_rows + int(lerp.sum())
        tensors, lerp_tensors = tensors + 1, lerp_tensors + bool(lerp.all())
    nan = float("nan")
    return {"granularity": "row", "changed_tensors": tensors, "changed_rows": rows,
            "share_changed_rows_slerp_is_lerp": lerp_rows / rows if rows else nan,
            "share_changed_tensors_slerp_is_lerp": lerp_tensors / tensors if tensors else nan}


# The methods that interpolate two models by one t, and how t enters: as t, as the weights
# (1 - t, t), or as the scale of the one task vector lora - base (base + t·(lora - base)).
INTERPOLATING: dict[str, str] = {"slerp": "t", "nuslerp": "t", "linear": "weights", "multislerp": "weights",
                                 "karcher": "weights", "task_arithmetic": "scale"}


def interpolating(methods: Sequence[str]) -> list[str]:
    """``methods`` checked for a t-sweep: each must interpolate two models (``INTERPOLATING``), else an
    ``InvalidInputError`` naming those that can."""
    bad = [m for m in methods if m not in INTERPOLATING]
    if bad:
        raise InvalidInputError(f"{', '.join(bad)} cannot interpolate two models by one t (base → lora); "
                                f"methods that can: {', '.join(INTERPOLATING)}")
    if not methods:
        raise InvalidInputError(f"give at least one method to sweep ({', '.join(INTERPOLATING)})")
    return list(dict.fromkeys(methods))


SWEEP_TS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # the t of a default sweep


def sweep_methods(variants: Sequence[str]) -> list[str]:
    """The sweep that matches a list of variant names: the interpolating methods among them ("soup" is the
    linear average), in ``INTERPOLATING``'s order, else slerp and linear."""
    picked = {("linear" if v == "soup" else v) for v in variants if v == "soup" or v in INTERPOLATING}
    return [m for m in INTERPOLATING if m in picked] or ["slerp", "linear"]


def _sweep_t(t: Any) -> float:
    try:
        v = float(t)
    except (TypeError, ValueError):
        raise InvalidInputError(f"t must be a number in [0, 1], got {t!r}") from None
    if not 0 <= v <= 1:
        raise InvalidInputError(f"t must lie in [0, 1], got {t!r}")  # as given: :g rounds 1.0000001 to 1
    return v


def build_sweep(variants_dir: str | os.PathLike, methods: Sequence[str], ts: Sequence[float], *,
                progress: Any = None) -> dict[tuple[str, float], Path]:
    """``{(method, t): model directory}``: the interpolation base → lora at each t of ``ts`` by each method, merged
    from ``variants_dir/base`` and ``variants_dir/lora`` (a ``build_variants`` directory) into
    ``variants_dir/sweep/<method>-t<t>`` (kept: a later sweep reads it back). t = 0 is the base, t = 1 the
    LoRA model for every method. ``progress(text)`` is told of each merge. Load the directories with
    ``load_model`` one at a time (a sweep holds many models)."""
    from geomcheck.cache import lock_for
    from geomcheck.merge import merge_files

    root = Path(variants_dir)
    base, lora = root / "base", root / "lora"
    if not (base / "modules.json").is_file() or not (lora / "modules.json").is_file():
        raise InvalidInputError(f"{root} holds no base and lora variants; build them first (build_variants)")
    methods, ts = interpolating(methods), [_sweep_t(t) for t in ts]
    out: dict[tuple[str, float], Path] = {}
    with lock_for(root / "sweep"):
        for m in methods:
            for t in dict.fromkeys(ts):
                d = root / "sweep" / f"{m}-t{t:.6g}"
                if not (d / "modules.json").is_file():
                    if progress is not None:
                        progress(f"merging {m} at t = {t:g}")
                    how = INTERPOLATING[m]
                    if how == "scale":
                        merge_files(m, [str(lora)], str(d), base=str(base), scale=t)
                    elif how == "weights":
                        merge_files(m, [str(base), str(lora)], str(d), weights=[1.0 - t, t])
                    else:
                        merge_files(m, [str(base), str(lora)], str(d), t=t)
                out[(m, t)] = d
    return out
