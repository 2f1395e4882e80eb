"""TIES merging: trim, elect sign, disjoint merge of task vectors.

For task vectors ``τ_i = θ_i - base`` and weights ``w_i`` (Yadav et al. 2023, "TIES-Merging:
resolving interference when merging models", NeurIPS, arXiv:2306.01708, Algorithm 1):

1. *Trim*: keep the ``k = ⌊density·n⌋`` (at least 1) entries of largest ``|τ_i|`` in each
   tensor, zero the rest (``density`` = the paper's k%, default 0.2; per model allowed).
2. *Elect*: ``γ = sgn(Σ_i w_i·τ̂_i)`` per entry — the sign with the larger total mass
   (``γ = +1`` where the sum is 0, as mergekit).
3. *Disjoint merge*: average only the entries that agree with ``γ``::

       τ_m = Σ_i [sgn(w_i τ̂_i) = γ]·w_i·τ̂_i / Σ_i [sgn(w_i τ̂_i) = γ]·w_i     (normalize=True)

   (divisor 1 where no entry agrees); ``normalize=False`` keeps the plain sum.
4. ``θ = base + λ·τ_m`` with ``λ = scale``.

With unit weights this is the paper's disjoint mean; weights enter as in mergekit
(``ties``): on the trimmed vectors before the election. Trimming is per tensor, not over
the whole model, so it can stream tensor by tensor (as mergekit does).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch

from geomcheck.merge._base import SCALE, MergeMethod, Param, check_fraction, normalize_param
from geomcheck.merge._tensor import weighted_sum

__all__ = ["trim_magnitude", "combine_ties", "ties", "METHOD"]


def keep_count(density: float, n: int) -> int:
    """k = ⌊density·n⌋, at least 1 (the 1e-9 guards 0.57·100 = 56.99999…)."""
    return max(1, min(n, int(density * n + 1e-9)))


def trim_magnitude(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ⌊density·n⌋ largest-magnitude entries of ``delta`` (at least one), zero the rest."""
    n = delta.numel()
    if density >= 1.0 or n == 0:
        return delta
    k = keep_count(density, n)
    flat = delta.reshape(-1)
    idx = torch.topk(flat.abs(), k, sorted=False).indices
    out = torch.zeros_like(flat)
    out[idx] = flat[idx]
    return out.reshape(delta.shape)


def combine_ties(deltas: Sequence[torch.Tensor], weights: Sequence[float], *, normalize: bool = True) -> torch.Tensor:
    """Sign election by summed mass, then the (weighted) mean of the entries that agree (module doc, steps 2-3)."""
    total = weighted_sum(deltas, weights)
    elected = torch.where(total >= 0, 1.0, -1.0).to(total.dtype)
    num = total.zero_()
    den = torch.zeros_like(num) if normalize else None
    for d, w in zip(deltas, weights):
        wd = d * w
        agree = torch.sign(wd) == elected
        num.add_(torch.where(agree, wd, 0.0))
        if den is not None:
            den.add_(agree.to(den.dtype), alpha=w)
    if den is not None:
        den[den == 0] = 1.0
        num.div_(den)
    return num


def ties(tensors: Sequence[torch.Tensor], base: torch.Tensor, weights: Sequence[float], *,
         density: float | Sequence[float] = 0.2, scale: float = 1.0, normalize: bool = True) -> torch.Tensor:
    """base + scale·TIES(θ_i - base) (module doc)."""
    dens = [density] * len(tensors) if isinstance(density, (int, float)) else list(density)
    deltas = [trim_magnitude(x - base, p) for x, p in zip(tensors, dens)]
    return combine_ties(deltas, weights, normalize=normalize).mul_(scale).add_(base)


METHOD = MergeMethod(
    "ties", ties, min_models=1, base="required",
    summary="TIES: trim task vectors to their top-density magnitudes, elect signs, average agreeing entries",
    reference="Yadav et al. 2023, TIES-Merging, NeurIPS, arXiv:2306.01708",
    parameters=(
        Param("density", 0.2, partial(check_fraction, lo_open=True), per_model=True,
              help="share of each task vector's entries kept by magnitude (one, or one per model)"),
        SCALE,
        normalize_param(True),
    ),
)
