"""One SupCon step over a batch too big for memory: micro-batches by a token budget, the loss still over the batch.

SupCon is contrastive over the whole batch: every window's loss term has every other window of
the batch in its denominator (the in-batch negatives). Plain gradient accumulation — a loss per
micro-batch, gradients summed — would compute a different loss: each micro-batch's windows
would see only the negatives of their own micro-batch. So a batch larger than the budget is
trained in two passes (GradCache, Gao et al. 2021, arXiv:2101.06983):

1. embed every micro-batch without autograd, keeping each micro-batch's RNG state (dropout);
2. compute the loss on all embeddings at once and its gradient with respect to the embeddings,
   dL/dZ (an n×d matrix: nothing of the model is kept for it);
3. run each micro-batch again with autograd, from its saved RNG state (the same dropout masks), and
   backpropagate dL/dZ of its rows: the parameter gradients sum to exactly those of the full batch.

Memory is then one micro-batch's activations, whatever the batch; compute is one extra forward
pass. A batch that fits the budget takes the one-pass path unchanged (the loss, then backward):
MiniLM's and SmolLM2's recipes fit one micro-batch, so their training is what it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["TRAIN_TOKEN_BUDGETS", "micro_batches", "supcon_step"]

# Padded tokens one training micro-batch may hold, per device type. MiniLM's encoder batch (48 windows
# x 128 tokens = 6,144) and SmolLM2's decoder batch (24 x 64 = 1,536) fit in one on a CPU.
TRAIN_TOKEN_BUDGETS: dict[str, int] = {"cpu": 8_192, "mps": 8_192, "cuda": 32_768}


def micro_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices of each micro-batch: the longest texts first, at most ``budget`` padded tokens each (a text
    longer than the budget goes alone); one micro-batch of every index, in order, when all fit at once."""
    n = len(lengths)
    if n == 0:
        return []
    if n * max(lengths) <= budget:
        return [list(range(n))]
    order = sorted(range(n), key=lambda i: -lengths[i])
    out, start = [], 0
    while start < n:
        size = max(1, min(n - start, budget // max(1, lengths[order[start]])))
        out.append(order[start:start + size])
        start += size
    return out


def _rng_state(device: Any) -> tuple[Any, Any]:
    import torch

    cuda = torch.cuda.get_rng_state(device) if getattr(device, "type", str(device)).startswith("cuda") else None
    return torch.get_rng_state(), cuda


def _set_rng_state(device: Any, state: tuple[Any, Any]) -> None:
    import torch

    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def supcon_step(embed: Callable[[list[int]], Any], lengths: Sequence[int], labels: Any, budget: int,
                loss_fn: Callable[[Any, Any], Any], device: Any) -> tuple[Any, int]:
    """Backpropagate ``loss_fn(Z, labels)`` of the whole batch into the parameters; return (loss, micro-batches).

    ``embed(indices)`` returns the embeddings (rows in the order of ``indices``) of those texts of the batch,
    with autograd when it is enabled. ``lengths``: each text's token count (padding is per micro-batch)."""
    import torch

    groups = micro_batches(lengths, budget)
    if len(groups) == 1 and groups[0] == list(range(len(lengths))):
        loss = loss_fn(embed(groups[0]), labels)
        loss.backward()
        return loss.detach(), 1
    states, parts = [], []
    with torch.no_grad():
        for g in groups:
            states.append(_rng_state(device))
            parts.append(embed(g).float())
    after = _rng_state(device)
    order = [i for g in groups for i in g]
    index = torch.tensor(order, device=labels.device)
    z = torch.cat(parts).detach().requires_grad_(True)
    loss = loss_fn(z, labels[index])
    loss.backward()
    grads = z.grad.split([len(g) for g in groups])
    for g, state, grad in zip(groups, states, grads):
        _set_rng_state(device, state)
        out = embed(g)
        out.backward(grad.to(out.dtype))
    _set_rng_state(device, after)
    return loss.detach(), len(groups)
