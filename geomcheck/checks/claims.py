"""The paper's three merge claims, one function each, measured on plain embeddings and merge diagnostics.

The paper (Evaluating Embedding Generalization: How LLMs, LoRA, and SLERP Shape
Representational Geometry) implies that

1. ``slerp_is_not_lerp``: SLERP of a LoRA model with its base differs from plain averaging
   (LERP) for most of the tensors the LoRA changed — else "SLERP" is a soup by another name;
2. ``soup_not_adapter_dominated``: a uniform soup of the LoRA's checkpoints sits nearer the
   base than the adapter (adapter position r, ``assert_no_adapter_dominance``, below 0.6);
3. ``slerp_beats_soup``: the SLERP merge separates the classes better than the soup, paired
   text by text (mean per-text silhouette difference, family-stratified bootstrap interval
   above 0).

Each ``claim_*`` function returns a ``ClaimResult``: what was measured and whether the claim
holds. ``CLAIMS`` maps the names to the claims; ``measure_claim`` runs one by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from geomcheck.errors import InvalidInputError, unknown_name_message

__all__ = ["ClaimResult", "PaperClaim", "CLAIMS", "measure_claim", "claim_slerp_is_not_lerp",
           "claim_soup_not_adapter_dominated", "claim_slerp_beats_soup"]

SOUP_WEIGHT = 0.5  # the soup's expected adapter position, halfway from base (0) to LoRA (1)
SOUP_MARGIN = 0.1  # r above weight + margin: adapter-dominated


@dataclass(frozen=True)
class ClaimResult:
    """One claim as measured: ``name``, ``text``, ``measured`` (label → number) and whether it ``holds``."""

    name: str
    text: str
    measured: dict[str, float] = field(default_factory=dict)
    holds: bool = False


def claim_slerp_is_not_lerp(slerp_diagnostics: Mapping[str, Any]) -> ClaimResult:
    """Holds when fewer than half of the changed tensors fall back to LERP (|cos| above SLERP's threshold).

    ``slerp_diagnostics``: the SLERP variant's entry of ``Variants.info`` (``variants.json``).
    """
    share = float(slerp_diagnostics["share_changed_tensors_slerp_is_lerp"])
    return ClaimResult("slerp_is_not_lerp", CLAIMS["slerp_is_not_lerp"].text,
                       {"share of changed tensors where SLERP = LERP": share}, share < 0.5)


def claim_soup_not_adapter_dominated(soup: Any, base: Any, lora: Any) -> ClaimResult:
    """Holds when the soup's adapter position r = d(soup, base) / (d(soup, base) + d(soup, lora)) (CKA
    distances) is at most ``SOUP_WEIGHT + SOUP_MARGIN``. Arguments: ``EmbeddedDataset``s of the same texts."""
    from geomcheck.checks.assertions import assert_no_adapter_dominance
    from geomcheck.errors import GeometryAssertionError

    try:
        r = assert_no_adapter_dominance(soup, base, lora, weight=SOUP_WEIGHT, margin=SOUP_MARGIN)
        holds = True
    except GeometryAssertionError as exc:
        r, holds = exc.value, False
    return ClaimResult("soup_not_adapter_dominated", CLAIMS["soup_not_adapter_dominated"].text,
                       {"adapter position r (0 base, 1 lora)": float(r)}, holds)


def claim_slerp_beats_soup(slerp: Any, soup: Any, *, seed: int = 0) -> ClaimResult:
    """Holds when the paired per-text silhouette difference slerp − soup has a 95% interval above 0.

    Arguments: ``EmbeddedDataset``s (or anything with ``.X`` and ``.labels``) of the same texts.
    """
    import numpy as np

    from geomcheck.checks.comparison import paired_interval
    from geomcheck.metrics import silhouette_samples

    if len(slerp.X) != len(soup.X) or not np.array_equal(slerp.labels, soup.labels):
        raise InvalidInputError("claim_slerp_beats_soup: slerp and soup must embed the same labelled texts")
    s_slerp = silhouette_samples(slerp.X, slerp.labels)
    s_soup = silhouette_samples(soup.X, soup.labels)
    d = s_slerp - s_soup
    lo, hi = paired_interval(d, slerp.labels, seed=seed)
    measured = {"silhouette slerp": float(s_slerp.mean()), "silhouette soup": float(s_soup.mean()),
                "paired difference": float(d.mean()), "95% interval low": lo, "95% interval high": hi}
    return ClaimResult("slerp_beats_soup", CLAIMS["slerp_beats_soup"].text, measured, lo > 0)


@dataclass(frozen=True)
class PaperClaim:
    """A claim: its ``text``, the variants it ``needs``, and how it is measured from them."""

    name: str
    text: str
    needs: tuple[str, ...]
    measure: Callable[[Mapping[str, Any], Mapping[str, Any]], ClaimResult]  # (embeddings by variant, info)


CLAIMS: dict[str, PaperClaim] = {c.name: c for c in (
    PaperClaim("slerp_is_not_lerp",
               "SLERP with the base differs from plain averaging (LERP) for most changed tensors",
               ("slerp",), lambda e, info: claim_slerp_is_not_lerp(info["slerp"])),
    PaperClaim("soup_not_adapter_dominated", "a soup of checkpoints is not adapter-dominated",
               ("soup",), lambda e, info: claim_soup_not_adapter_dominated(e["soup"], e["base"], e["lora"])),
    PaperClaim("slerp_beats_soup",
               "the SLERP merge separates the classes better (paired silhouette) than the soup",
               ("slerp", "soup"), lambda e, info: claim_slerp_beats_soup(e["slerp"], e["soup"])),
)}


def measure_claim(name: str, embeddings: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> ClaimResult:
    """Claim ``name`` measured on ``embeddings`` (variant name → ``EmbeddedDataset`` of the same texts;
    "base" and "lora" besides the claim's ``needs``) and the merge diagnostics ``info``."""
    if name not in CLAIMS:
        raise InvalidInputError(unknown_name_message("paper claim", name, CLAIMS))
    return CLAIMS[name].measure(embeddings, info or {})
