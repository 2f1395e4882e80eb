"""What ``load_model`` checks before it serves a model: code it would run, and a model that only looks loaded.

- remote code: a directory whose ``config.json`` / ``tokenizer_config.json`` has an ``auto_map``, or
  whose ``modules.json`` names modules outside sentence-transformers, runs Python files shipped
  with it. That happens only when the user opted in for this model (``trust_remote_code``), never
  because a registry entry or a path's name says so;
- the tokenizer: transformers builds a tokenizer of special tokens only when a directory lacks its
  tokenizer files, and then every text is ``[UNK]`` and every vector the same;
- the weights: transformers fills weights missing from the checkpoint with random numbers and
  drops the ones it does not know, so a directory holding another model's weights "loads".
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from geomcheck.errors import ModelLoadError

__all__ = ["remote_code_reasons", "is_trusted", "remote_code_error", "check_tokenizer", "check_weights", "PROBE"]

# Plain text every real tokenizer splits into known pieces (the digits at least).
PROBE = "The quick brown fox 123"
# Tensors a sentence-transformers pipeline never uses: task heads (MLM / LM / classification) a
# checkpoint may carry, and BERT's pooler a checkpoint may lack (the Pooling module pools instead).
_DROPPABLE = re.compile(r"^(?:[\w]+\.)?(?:cls|lm_head|pooler|classifier|score|qa_outputs|heads?|mlm|"
                        r"predictions|generator_lm_head|discriminator_predictions)\.")


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remote_code_reasons(path: Path) -> list[str]:
    """Why loading the directory ``path`` would run Python shipped with it (empty: it would not)."""
    reasons = []
    for name in ("config.json", "tokenizer_config.json"):
        auto = _json(path / name).get("auto_map")
        if auto:
            targets = sorted({str(v if isinstance(v, str) else next((x for x in v if x), "")) for v in auto.values()})
            reasons.append(f"{name} maps to {', '.join(t for t in targets if t) or 'custom classes'} (auto_map)")
    try:
        modules = json.loads((path / "modules.json").read_text()) if (path / "modules.json").is_file() else []
    except (OSError, ValueError):
        modules = []
    custom = [m.get("type") for m in modules if isinstance(m, dict) and m.get("type")
              and not str(m["type"]).startswith("sentence_transformers.")]
    if custom:
        reasons.append(f"modules.json names modules outside sentence-transformers ({', '.join(custom)})")
    return reasons


def is_trusted(trust: bool | Iterable[str] | None, name: str, path: Path) -> bool:
    """Whether the user opted in to remote code for this model: ``True``, or a list naming it (its alias,
    Hugging Face id or path as given, or a path to the same directory)."""
    if trust is None or trust is False:
        return False
    if trust is True:
        return True
    if isinstance(trust, (str, os.PathLike)):
        trust = [trust]
    wanted = {str(t) for t in trust}
    if name in wanted:
        return True
    here = path.resolve()
    return any(Path(str(t)).expanduser().exists() and Path(str(t)).expanduser().resolve() == here for t in wanted)


def remote_code_error(name: str, path: Path, reasons: list[str], from_registry: bool) -> ModelLoadError:
    why = "; ".join(reasons) if reasons else "its registry entry says it needs the model's own code"
    return ModelLoadError(
        f"{name!r} runs Python code shipped with the model ({why}; in {path}), and geomcheck runs such code only "
        f"when you opt in for this model. If you trust its source, pass "
        f"load_model({name!r}, trust_remote_code=True) in Python, --trust-remote-code to the geomcheck command, "
        f"or --geomcheck-trust-remote-code {name} to pytest (ini: geomcheck_trust_remote_code = {name})"
        + ("" if from_registry else "; otherwise use a model that needs no custom code")
    )


def _auto_model(model: Any) -> Any:
    first = model[0] if len(model) else None
    return getattr(first, "auto_model", None) or getattr(first, "model", None)


def check_tokenizer(model: Any, name: str, path: Path) -> None:
    """A ``ModelLoadError`` when the pipeline's tokenizer cannot be the model's: far fewer tokens than
    the model has embedding rows, or plain text (``PROBE``) read as unknown tokens only."""
    tok = getattr(model, "tokenizer", None)
    auto = _auto_model(model)
    if tok is None or auto is None or not hasattr(auto, "get_input_embeddings"):
        return
    emb = auto.get_input_embeddings()
    rows = getattr(emb, "num_embeddings", None)
    size = len(tok)
    ids = tok(PROBE, add_special_tokens=False)["input_ids"]
    unk = getattr(tok, "unk_token_id", None)
    all_unknown = bool(ids) and unk is not None and all(i == unk for i in ids)
    # Models pad their embedding matrix (to multiples of 64/128, reserved tokens), never by 4x.
    too_small = rows is not None and size * 4 < rows
    if not (too_small or all_unknown or not ids):
        return
    present = sorted(p.name for p in path.iterdir() if "tok" in p.name or p.suffix in (".txt", ".model"))
    what = (f"its tokenizer knows {size} tokens but the model has {rows} embedding rows" if too_small
            else f"its tokenizer reads the plain text {PROBE!r} as unknown tokens only")
    raise ModelLoadError(
        f"{name!r} ({path}): {what}, so every text would embed alike. The directory's tokenizer files are "
        f"missing or belong to another model (tokenizer files found: {', '.join(present) or 'none'}). Copy the "
        f"model's tokenizer files (tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.txt "
        f"or merges.txt / *.model) into {path}, e.g. from the model it was fine-tuned from."
    )


def check_weights(model: Any, name: str, path: Path, trust: bool) -> tuple[str, ...]:
    """The tensors the checkpoint of ``model``'s transformer lacks or has beyond the architecture, from
    transformers' own loading report (``from_pretrained(..., output_loading_info=True)``, on the meta device:
    no weights are read). Heads a sentence-transformers pipeline never uses (``_DROPPABLE``) are returned;
    anything else is a ``ModelLoadError`` naming the tensors and their counts. Call it under
    ``_pipeline.quiet_progress`` (``load_model`` does): transformers would log the report this turns into
    an error or into ``dropped_weights``, and list every tensor as not sharded on the meta device."""
    auto = _auto_model(model)
    weights_dir = Path(getattr(getattr(auto, "config", None), "_name_or_path", "") or "")
    if auto is None or not hasattr(type(auto), "from_pretrained") or not weights_dir.is_dir():
        return ()
    try:
        _, info = type(auto).from_pretrained(str(weights_dir), config=auto.config, output_loading_info=True,
                                             device_map="meta", trust_remote_code=trust)
    except Exception:  # noqa: BLE001 - the real load succeeded; a model that cannot go on the meta device is not checked
        return ()
    missing, unexpected = sorted(info.get("missing_keys") or ()), sorted(info.get("unexpected_keys") or ())
    bad_missing = [k for k in missing if not _DROPPABLE.match(k)]
    bad_unexpected = [k for k in unexpected if not _DROPPABLE.match(k)]
    if bad_missing or bad_unexpected:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:4]) + (f", … ({len(keys) - 4} more)" if len(keys) > 4 else "")

        parts = []
        if bad_missing:
            parts.append(f"{len(bad_missing)} of the model's tensors are missing from the checkpoint ({few(bad_missing)})")
        if bad_unexpected:
            parts.append(f"{len(bad_unexpected)} tensors in the checkpoint are not in the model ({few(bad_unexpected)})")
        arch = type(auto).__name__
        raise ModelLoadError(
            f"{name!r} ({weights_dir}): the weights do not fit its config ({arch}): {'; '.join(parts)}. transformers "
            f"would fill the missing ones with random numbers, so geomcheck would measure a random model. Check that "
            f"config.json and the weight files come from the same model (e.g. re-download or re-save it)."
        )
    return tuple(f"{k} (missing)" for k in missing) + tuple(f"{k} (unused)" for k in unexpected)


def check_finite_weights(model: Any, name: str, path: Path) -> None:
    """A ``ModelLoadError`` naming the first tensor with NaN or inf values: a diverged checkpoint embeds the
    texts whose tokens avoid the bad rows finely and the others as NaN, so a run on a few texts can pass.

    One pass over the parameters on their device (about a tenth of a second for a 135M model on a CPU)."""
    import torch

    bad = []
    for pname, p in model.named_parameters():
        finite = torch.isfinite(p)
        if not bool(finite.all()):
            bad.append((pname, tuple(p.shape), int((~finite).sum())))
    if bad:
        first, shape, count = bad[0]
        raise ModelLoadError(
            f"{name!r} ({path}) has non-finite weights: tensor {first!r} {shape} holds {count:,} NaN or inf "
            f"value(s){f', and {len(bad) - 1} more tensor(s) do too' if len(bad) > 1 else ''}; the model would "
            f"embed some texts as NaN. Use an earlier checkpoint of it (training diverged?) or re-export it.")
