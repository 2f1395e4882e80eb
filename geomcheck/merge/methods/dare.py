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
from dataclasses import replace
from functools import partial
from typing import Any

import torch

from geomcheck.merge._base import SCALE, MergeMethod, Param, check_choice, check_fraction, check_seed, normalize_param
from geomcheck.merge._tensor import seed_for, weighted_sum
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


def check_rescale(value: Any, *, what: str) -> str:
    """One of RESCALES; true and false stand for "density" and "none"."""
    if isinstance(value, bool):
        value = "density" if value else "none"
    return check_choice(value, RESCALES, what=what)


_COMMON = (
    Param("density", 0.5, partial(check_fraction, lo_open=True), per_model=True,
          help="keep probability of each task-vector entry, 1 - drop rate (one, or one per model)"),
    Param("seed", 0, check_seed, help="seed of the drop masks (with the tensor name and model index)"),
    Param("rescale", "density", check_rescale, help="rescale kept entries: 'density' (÷ density), 'l1', 'none'"),
    SCALE,
)
LINEAR = MergeMethod(
    "dare_linear", dare_linear, min_models=1, base="required",
    summary="DARE: drop task-vector entries with probability 1-density, rescale by 1/density, add linearly",
    reference="Yu et al. 2024, Language Models are Super Mario, ICML, arXiv:2311.03099",
    parameters=(*_COMMON, normalize_param(False)),
)
TIES = replace(
    LINEAR, name="dare_ties", fn=dare_ties, parameters=(*_COMMON, normalize_param(True)),
    summary="DARE drop-and-rescale of task vectors, then TIES sign election and disjoint mean",
    reference="Yu et al. 2024, arXiv:2311.03099; Yadav et al. 2023, arXiv:2306.01708",
)
