"""DARE: drop and rescale task-vector entries, then combine linearly (``dare_linear``) or by TIES (``dare_ties``).

For each task vector ``τ_i = θ_i - base`` (Yu et al. 2024, "Language models are Super
Mario: absorbing abilities from homologous models as a free lunch", ICML,
arXiv:2311.03099, Eq. 1-2), with keep probability ``p = density`` (= 1 - drop rate)::

    m ~ Bernoulli(p) elementwise,   τ̃_i = m ⊙ τ_i / p

so ``E[τ̃_i] = τ_i``. Then ``dare_linear``: ``θ = base + λ·Σ w_i τ̃_i`` (task arithmetic);
``dare_ties``: TIES' sign election and disjoint mean on the ``τ̃_i`` (no magnitude trim),
``θ = base + λ·τ_m``. ``rescale="l1"`` instead rescales ``m ⊙ τ_i`` to the L1 norm of
``τ_i`` (what mergekit does); ``"none"`` keeps ``m ⊙ τ_i``. mergekit's ``dare_ties``
defaults to ``normalize=False`` (plain sum of agreeing entries); here it defaults to the
TIES paper's disjoint mean — pass ``normalize=False`` to match mergekit.

The mask of model ``i`` for tensor ``name`` comes from a ``torch.Generator`` seeded with
(``seed``, ``name``, ``i``), so a merge is reproducible and independent of tensor order
(in memory or streamed from files).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from geomcheck.merge._base import MergeMethod, check_choice, check_per_model, check_seed
from geomcheck.merge._tensor import seed_for, weighted_sum
from geomcheck.merge.methods.task_arithmetic import check_scale_normalize
from geomcheck.merge.methods.ties import combine_ties

__all__ = ["drop_and_rescale", "dare_linear", "dare_ties", "LINEAR", "TIES"]

RESCALES = ("density", "l1", "none")


def drop_and_rescale(delta: torch.Tensor, density: float, generator: torch.Generator, *,
                     rescale: str = "density") -> torch.Tensor:
    """m ⊙ delta / density with m ~ Bernoulli(density) drawn from ``generator`` (module doc)."""
    if density >= 1.0:
        return delta
    keep = torch.rand(delta.shape, generator=generator, dtype=torch.float32) < density
    out = torch.where(keep, delta, 0.0)
    if rescale == "density":
        out.div_(density)
    elif rescale == "l1":
        before, after = float(delta.abs().sum()), float(out.abs().sum())
        if before > 0 and after > 0:
            out.mul_(before / after)
    return out


def _dropped(tensors: Sequence[torch.Tensor], base: torch.Tensor, density: Sequence[float], seed: int,
             name: str, rescale: str) -> list[torch.Tensor]:
    out = []
    for i, (x, p) in enumerate(zip(tensors, density)):
        g = torch.Generator().manual_seed(seed_for(seed, name, i))
        out.append(drop_and_rescale(x - base, p, g, rescale=rescale))
    return out


def dare_linear(tensors: Sequence[torch.Tensor], base: torch.Tensor, weights: Sequence[float], *,
                density: Sequence[float], seed: int = 0, name: str = "", rescale: str = "density",
                scale: float = 1.0, normalize: bool = False) -> torch.Tensor:
    """base + scale·Σ w_i·DARE(θ_i - base)."""
    deltas = _dropped(tensors, base, density, seed, name, rescale)
    return weighted_sum(deltas, weights, normalize=normalize).mul_(scale).add_(base)


def dare_ties(tensors: Sequence[torch.Tensor], base: torch.Tensor, weights: Sequence[float], *,
              density: Sequence[float], seed: int = 0, name: str = "", rescale: str = "density",
              scale: float = 1.0, normalize: bool = True) -> torch.Tensor:
    """base + scale·TIES-combine(DARE(θ_i - base)) (sign election + disjoint mean, no trim)."""
    deltas = _dropped(tensors, base, density, seed, name, rescale)
    return combine_ties(deltas, weights, normalize=normalize).mul_(scale).add_(base)


def _merge_linear(tensors: Sequence[torch.Tensor], base: torch.Tensor, weights: Sequence[float], *,
                  name: str = "", **params: Any) -> torch.Tensor:
    return dare_linear(tensors, base, weights, name=name, **params)


def _merge_ties(tensors: Sequence[torch.Tensor], base: torch.Tensor, weights: Sequence[float], *,
                name: str = "", **params: Any) -> torch.Tensor:
    return dare_ties(tensors, base, weights, name=name, **params)


def _prepare(params: dict[str, Any], n_models: int, weights_given: bool) -> dict[str, Any]:
    params["density"] = check_per_model(params["density"], n_models, what="density", lo_open=True)
    params["seed"] = check_seed(params["seed"])
    rescale = params["rescale"]
    if isinstance(rescale, bool):
        rescale = "density" if rescale else "none"
    params["rescale"] = check_choice(rescale, RESCALES, what="rescale")
    return check_scale_normalize(params)


_COMMON = {"density": 0.5, "seed": 0, "rescale": "density", "scale": 1.0}
LINEAR = MergeMethod(
    name="dare_linear",
    fn=_merge_linear,
    summary="DARE: drop task-vector entries with probability 1-density, rescale by 1/density, add linearly",
    reference="Yu et al. 2024, Language Models are Super Mario, ICML, arXiv:2311.03099",
    min_models=1,
    base="required",
    params={**_COMMON, "normalize": False},
    prepare=_prepare,
)
TIES = MergeMethod(
    name="dare_ties",
    fn=_merge_ties,
    summary="DARE drop-and-rescale of task vectors, then TIES sign election and disjoint mean",
    reference="Yu et al. 2024, arXiv:2311.03099; Yadav et al. 2023, arXiv:2306.01708",
    min_models=1,
    base="required",
    params={**_COMMON, "normalize": True},
    prepare=_prepare,
)
