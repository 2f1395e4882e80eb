"""Whether a peft adapter belongs to the base model it is applied to, and peft's failures as ``ModelLoadError``.

peft applies an adapter to any model whose module names match its ``target_modules``: one trained on
another base of the same architecture merges without a word (a model nobody trained), and one of
another architecture dies with ``NoMatchingPeftModuleError`` deep inside peft. The adapter records
its base (``adapter_config.json``: ``base_model_name_or_path``); ``check_adapter_base`` compares it
with the base in hand, ``apply_adapter`` turns peft's errors into messages that say what to do.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geomcheck.errors import IncompatibleModelsError, ModelLoadError

__all__ = ["check_adapter_base", "apply_adapter"]

_PROBES = 6  # tensors compared between the recorded base and the base in hand (first and last ones, embeddings)


def _config(adapter_dir: Path) -> dict:
    try:
        return json.loads((adapter_dir / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {adapter_dir / 'adapter_config.json'}: {exc}") from None


def _recorded_dir(recorded: str) -> tuple[Path | None, str | None]:
    """(a local directory holding the recorded base, the Hugging Face id it names), each None if unknown."""
    from geomcheck.models.loading import _hf_id_of, _registry, hf_cached_path

    p = Path(recorded).expanduser()
    if p.is_dir():
        return p, _hf_id_of(p)
    spec = _registry().get(recorded)
    hf_id = spec.hf_id if spec is not None else (recorded if recorded.count("/") == 1 else None)
    return (hf_cached_path(hf_id) if hf_id else None), hf_id


def _file_tensors(d: Path) -> dict[str, tuple[Path, str]]:
    out = {}
    for f in sorted(d.rglob("*.safetensors")):
        if f.name.startswith("adapter_"):
            continue
        from safetensors import safe_open

        with safe_open(str(f), "pt") as sf:
            for k in sf.keys():
                out[k] = (f, k)
    return out


def _differs(model: Any, recorded_dir: Path) -> str | None:
    """How the recorded base's weights differ from ``model``'s (a few tensors compared), or None if they agree."""
    import torch
    from safetensors import safe_open

    files = _file_tensors(recorded_dir)
    if not files:
        return None  # nothing to compare (.bin only): names decide
    state = model.state_dict()
    names = sorted(state)
    emb = [n for n in names if "embed" in n and n.endswith("weight")][:1]
    picked = list(dict.fromkeys(emb + names[:_PROBES // 2] + names[-(_PROBES // 2):]))
    compared = 0
    for name in picked:
        hit = next((v for k, v in files.items() if k == name or k.endswith("." + name)), None)
        if hit is None:
            continue
        with safe_open(str(hit[0]), "pt") as sf:
            theirs = sf.get_tensor(hit[1])
        ours = state[name].detach().cpu()
        if tuple(theirs.shape) != tuple(ours.shape):
            return f"{name} has shape {tuple(theirs.shape)} there and {tuple(ours.shape)} here"
        if not torch.equal(theirs.to(ours.dtype), ours):
            return f"{name} holds other values"
        compared += 1
    if compared == 0:
        return f"none of its tensors has a name of this model's ({', '.join(picked[:3])}, …)"
    return None


def check_adapter_base(model: Any, base_name: str, base_dir: Path | None, spec: Any, adapter_dir: Path) -> None:
    """A ``ModelLoadError`` naming both bases when the adapter at ``adapter_dir`` was trained on another model
    than ``model`` (the transformer, loaded from ``base_dir``). Same path, same Hugging Face id, or a
    recorded base whose weights equal this one's (a re-saved copy) all count as the same model."""
    from geomcheck.models.loading import _hf_id_of

    recorded = str(_config(adapter_dir).get("base_model_name_or_path") or "")
    if not recorded:
        return
    rec_dir, rec_id = _recorded_dir(recorded)
    if base_dir is not None and rec_dir is not None and rec_dir.resolve() == Path(base_dir).resolve():
        return
    base_id = (spec.hf_id if spec is not None else None) or (_hf_id_of(Path(base_dir)) if base_dir else None)
    if rec_dir is None:
        if rec_id and base_id and rec_id != base_id:
            why = f"it names {rec_id}, this base is {base_id}"
        else:
            if not (rec_id and rec_id == base_id):
                warnings.warn(f"geomcheck: the adapter {adapter_dir} was trained on {recorded!r}, which is not on this "
                              f"machine: cannot check that it is {base_name!r}", stacklevel=3)
            return
    else:
        why = _differs(model, rec_dir)
        if why is None:
            return
    raise ModelLoadError(
        f"the adapter {adapter_dir} was trained on another base: its adapter_config.json names {recorded!r}, but it is "
        f"being applied to {base_name!r} ({base_dir}); {why}. Applied anyway it would give a model nobody trained. "
        f"Apply it to the model it was trained on, or set base_model_name_or_path in adapter_config.json if "
        f"{base_name!r} is that model under another name."
    )


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """peft (0.18) asks transformers 5 by a deprecated name whether checkpointing is on, on every
    ``PeftModel``: a FutureWarning no user can act on, shown once per LoRA in every run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def apply_adapter(model: Any, adapter_dir: Path, base_name: str) -> Any:
    """``PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()``, with peft's errors (no module the
    adapter targets, tensors of other shapes) as a ``ModelLoadError`` naming the targets and the architecture."""
    from peft import PeftModel
    from peft.utils import NoMatchingPeftModuleError

    cfg = _config(adapter_dir)
    targets = cfg.get("target_modules")
    arch = type(model).__name__
    try:
        with quiet_peft():
            return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    except NoMatchingPeftModuleError:
        kinds = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise ModelLoadError(
            f"the adapter {adapter_dir} targets modules {targets!r}, which {base_name!r} ({arch}) does not have "
            f"(its linear layers are named {', '.join(kinds[:8]) or 'nothing'}): it was trained on another "
            f"architecture ({cfg.get('base_model_name_or_path')!r}). Apply it to that model instead."
        ) from None
    except RuntimeError as exc:  # size mismatch: same names, other shapes; torch lists every one, name the first
        found = re.findall(r"size mismatch for (\S+): copying a param with shape torch\.Size\(\[([^\]]*)\]\) "
                           r"from checkpoint, the shape in current model is torch\.Size\(\[([^\]]*)\]\)", str(exc))
        if found:
            name, got, want = found[0]
            raise IncompatibleModelsError(
                f"the LoRA adapter {str(adapter_dir)!r} does not fit the base model {base_name!r} ({arch}): tensor "
                f"{name!r} has shape ({got}) in the adapter but ({want}) on this base ({len(found)} tensors differ); "
                f"it was trained on another model (another width: {cfg.get('base_model_name_or_path')!r}); merge "
                f"it into the model it was trained on.") from None
        first = str(exc).strip().splitlines()
        raise ModelLoadError(
            f"the adapter {adapter_dir} does not fit {base_name!r} ({arch}): {' '.join(first[:2])[:300]}. It was "
            f"trained on {cfg.get('base_model_name_or_path')!r}; apply it to that model."
        ) from None
