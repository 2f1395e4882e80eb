"""The merge measurements, one code path for ``geomcheck merges``, ``geomcheck sweep`` and the merge suite.

Everything here works on ``EmbeddedDataset``s (anything with ``.X`` and ``.labels``) of the
same texts, one per variant, and on the merge diagnostics of ``Variants.info``; building
and embedding the variants is the caller's job. Per variant *v* (base *b*, LoRA model *l*):

- task gain ``g(v) = silhouette_true(v, task) - silhouette_true(b, task)`` (the suite's gain);
- share of the LoRA's gain kept ``g(v) / g(l)`` (undefined, NaN, when ``g(l) <= 0``);
- ``linear_cka`` to the base and to the LoRA model, on one set (the suites use their first
  measured set, the paper's dataset);
- adapter position ``r = d(v, b) / (d(v, b) + d(v, l))`` with ``d = 1 - CKA``
  (``assert_no_adapter_dominance``): 0 at the base, 1 at the LoRA;
- the share of changed tensors where SLERP = LERP, for the SLERP variants that record it (of
  changed rows for a row-wise SLERP, whose unit is the row);
- the paper's three claims (``geomcheck.checks.claims``), where their variants exist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from geomcheck.errors import InvalidInputError, unknown_name_message

__all__ = ["task_gain", "task_gains", "share_kept", "cka_to_base", "adapter_position", "variant_rows",
           "ClaimRow", "measure_claims", "sweep_rows", "SLERP_INFO_KEY"]

# The diagnostics entry of ``Variants.info`` that holds the SLERP → LERP fallback share.
SLERP_INFO_KEY = "share_changed_tensors_slerp_is_lerp"
SLERP_ROW_KEY = "share_changed_rows_slerp_is_lerp"  # the same for a row-wise SLERP, per changed row


def _silhouette(emb: Any) -> float:
    from geomcheck.metrics import silhouette

    return float(silhouette(emb.X, emb.labels))


def task_gain(variant: Any, base: Any) -> float:
    """Task-set silhouette (true labels) of ``variant`` minus the base's: how much of the task it learnt."""
    return _silhouette(variant) - _silhouette(base)


def task_gains(task: Mapping[str, Any]) -> dict[str, float]:
    """``task_gain`` of every variant of ``task`` (variant name → task-set embeddings, "base" among them)."""
    if "base" not in task:
        raise InvalidInputError("task_gains needs the base model's embeddings under the key 'base'")
    sil = {name: _silhouette(e) for name, e in task.items()}
    return {name: s - sil["base"] for name, s in sil.items()}


def share_kept(gain: float, lora_gain: float) -> float:
    """``gain / lora_gain``, the share of the LoRA's task gain a merge keeps; NaN when the LoRA gained nothing."""
    return gain / lora_gain if lora_gain > 0 else math.nan


def cka_to_base(variant: Any, base: Any) -> float:
    """Linear CKA of two embeddings of the same texts (1: the same geometry up to rotation and scale)."""
    from geomcheck.metrics import linear_cka

    return float(linear_cka(variant.X, base.X))


def adapter_position(variant: Any, base: Any, lora: Any) -> float:
    """r = d(v, base) / (d(v, base) + d(v, lora)), d = 1 - CKA: 0 at the base, 1 at the LoRA model."""
    from geomcheck.checks.assertions import assert_no_adapter_dominance

    # weight 1, margin 0: r never exceeds 1, so this only measures (1.0 when all three coincide)
    return float(assert_no_adapter_dominance(variant, base, lora, weight=1.0, margin=0.0))


def _same_texts(sets: Mapping[str, Mapping[str, Any]]) -> None:
    for set_name, embs in sets.items():
        n = {len(e.X) for e in embs.values()}
        if len(n) > 1:
            raise InvalidInputError(f"the variants' embeddings of set {set_name!r} hold different numbers of texts "
                                    f"({sorted(n)}); embed the same dataset with every variant")


def variant_rows(sets: Mapping[str, Mapping[str, Any]], info: Mapping[str, Any] | None = None, *,
                 task_set: str = "task", cka_set: str = "paper", names: Sequence[str] | None = None
                 ) -> list[dict[str, Any]]:
    """One row per variant of the measurements in the module doc.

    ``sets``: set name → {variant name → ``EmbeddedDataset``}, each set embedded by every variant
    ("base" and "lora" among them); ``info``: ``Variants.info`` (SLERP diagnostics by variant name);
    ``task_set``: the set of the task gain; ``cka_set``: the set of the CKAs and r. Row keys:
    ``variant``, ``<set>.silhouette`` and ``<set>.davies_bouldin`` per set, ``cka_to_base``,
    ``cka_to_lora``, ``adapter_position``, ``slerp_is_lerp`` (None where not recorded),
    ``task_gain``, ``share_of_lora_gain``.
    """
    from geomcheck.metrics import davies_bouldin

    for need in (task_set, cka_set):
        if need not in sets:
            raise InvalidInputError(f"variant_rows: no embeddings of the set {need!r} (have {', '.join(sets)})")
    for need in ("base", "lora"):
        if any(need not in embs for embs in sets.values()):
            raise InvalidInputError(f"variant_rows: every set needs the {need!r} variant's embeddings")
    _same_texts(sets)
    info = info or {}
    gains = task_gains(sets[task_set])
    ref = sets[cka_set]
    rows = []
    for name in names if names is not None else list(sets[task_set]):
        row: dict[str, Any] = {"variant": name}
        for set_name, embs in sets.items():
            row[f"{set_name}.silhouette"] = _silhouette(embs[name])
            row[f"{set_name}.davies_bouldin"] = float(davies_bouldin(embs[name].X, embs[name].labels))
        row["cka_to_base"] = cka_to_base(ref[name], ref["base"])
        row["cka_to_lora"] = cka_to_base(ref[name], ref["lora"])
        row["adapter_position"] = adapter_position(ref[name], ref["base"], ref["lora"])
        row["slerp_is_lerp"] = _lerp_share(info.get(name))
        row["task_gain"] = gains[name]
        row["share_of_lora_gain"] = share_kept(gains[name], gains["lora"])
        rows.append(row)
    return rows


def _lerp_share(diag: Any) -> float | None:
    """The recorded SLERP → LERP share: of changed tensors, or of changed rows for a row-wise SLERP (its unit)."""
    if not isinstance(diag, Mapping):
        return None
    key = SLERP_ROW_KEY if diag.get("granularity") == "row" and SLERP_ROW_KEY in diag else SLERP_INFO_KEY
    return float(diag[key]) if key in diag else None


@dataclass(frozen=True)
class ClaimRow:
    """A paper claim as measured (``holds`` True/False), or not measured (``holds`` None, ``missing`` the
    variants it needs that were not built)."""

    name: str
    text: str
    measured: dict[str, float] = field(default_factory=dict)
    holds: bool | None = None
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "text": self.text, "measured": dict(self.measured), "holds": self.holds,
                "missing": list(self.missing)}


def measure_claims(embeddings: Mapping[str, Any], info: Mapping[str, Any] | None = None, *,
                   only: Sequence[str] | None = None) -> list[ClaimRow]:
    """The paper's claims (``CLAIMS``, or those named in ``only``) on ``embeddings`` (variant name →
    ``EmbeddedDataset`` of one set, "base" and "lora" among them) and the merge diagnostics ``info``,
    each through ``measure_claim``; a claim whose variants are missing comes back unmeasured."""
    from geomcheck.checks.claims import CLAIMS, measure_claim

    out = []
    for name in only if only is not None else list(CLAIMS):
        if name not in CLAIMS:
            raise InvalidInputError(unknown_name_message("paper claim", name, CLAIMS))
        claim = CLAIMS[name]
        missing = tuple(n for n in ("base", "lora", *claim.needs) if n not in embeddings)
        if missing:
            out.append(ClaimRow(name, claim.text, missing=missing))
            continue
        r = measure_claim(name, embeddings, info)
        out.append(ClaimRow(r.name, r.text, dict(r.measured), bool(r.holds)))
    return out


def sweep_rows(points: Mapping[tuple[str, float], Mapping[str, Any]], ends: Mapping[str, Mapping[str, Any]], *,
               task_set: str = "task", cka_set: str = "paper") -> list[dict[str, Any]]:
    """One row per (method, t) of a base → lora sweep, measured as ``variant_rows`` measures variants.

    ``points``: (method, t) → {set name → ``EmbeddedDataset``}; ``ends``: "base" and "lora" →
    {set name → ``EmbeddedDataset``}. Rows: ``method``, ``t``, ``task_gain``, ``cka_to_base``,
    ``cka_to_lora``, ``adapter_position``, ``<cka_set>.silhouette`` and the rest of ``variant_rows``.
    """
    if set(ends) != {"base", "lora"}:
        raise InvalidInputError(f"sweep_rows: ends must be 'base' and 'lora', got {sorted(ends)}")
    keys = {k: f"{k[0]}@t={k[1]:g}" for k in points}
    sets: dict[str, dict[str, Any]] = {}
    for s in ends["base"]:
        sets[s] = {"base": ends["base"][s], "lora": ends["lora"][s], **{keys[k]: p[s] for k, p in points.items()}}
    rows = variant_rows(sets, task_set=task_set, cka_set=cka_set, names=list(keys.values()))
    for (method, t), row in zip(keys, rows):
        del row["variant"], row["slerp_is_lerp"]
        row.update({"method": method, "t": float(t)})
    return [{"method": r.pop("method"), "t": r.pop("t"), **r} for r in rows]
