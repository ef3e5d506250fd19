"""Gumbel-max op sampling and Gumbel-Top-k edge sampling with straight-through relaxed weights.

A sample is split in two so it can be replayed: the *noise* (all the randomness, drawn once from
a ``torch.Generator``) and the *relaxation* (a differentiable function of the logits, the noise
and tau). Replaying the same noise against the same logits gives the same sub-network and the
same gradients, which is what the accumulation test and exact resume rely on.

Straight-through weights (rome-method.md, inferred): the forward value is the hard 0/1 choice,
the gradient is that of ``softmax((log_softmax(logits) + g) / tau)``:
``w = hard - soft.detach() + soft``. Consequences (tested):
  * every logit of a group (all ops of a sampled edge, all incoming edges of a node) gets a
    gradient through the softmax, though only the chosen entries are executed;
  * the logits of an edge that is not executed get no gradient at all (its output is unknown).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gumbel_noise(shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard Gumbel(0, 1) noise on the CPU, guaranteed finite.

    The uniform is clamped into [tiny, 1 - eps] so neither log can produce inf; the result is
    checked anyway and redrawn if it ever is not finite. Drawn on the CPU from ``generator`` so a
    sample does not depend on the device the network runs on.
    """
    info = torch.finfo(dtype)
    for _ in range(8):
        u = torch.rand(shape, generator=generator, dtype=dtype).clamp_(info.tiny, 1.0 - info.eps)
        g = -torch.log(-torch.log(u))
        if bool(torch.isfinite(g).all()):
            return g
    raise FloatingPointError("Gumbel noise stayed non-finite after 8 draws")  # pragma: no cover


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Forward value ``hard``, gradient of ``soft``."""
    return hard - soft.detach() + soft


def gumbel_max(logits: torch.Tensor, noise: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gumbel-max over the last dimension: (chosen index ``[...]``, straight-through weight of it ``[...]``).

    ``logits`` are unnormalised (alpha); ``log_softmax`` makes the choice a draw from ``softmax(logits)``.
    Masks are built by comparison rather than scatter/gather, which keeps CUDA deterministic mode happy.
    """
    perturbed = F.log_softmax(logits, dim=-1) + noise.to(logits.device, logits.dtype)
    index = perturbed.argmax(dim=-1)
    soft = F.softmax(perturbed / tau, dim=-1)
    hard = (torch.arange(logits.shape[-1], device=logits.device) == index.unsqueeze(-1)).to(soft.dtype)
    weight = (straight_through(hard, soft) * hard).sum(-1)
    return index, weight


def unselected_weight_sum(logits: torch.Tensor, noise: torch.Tensor, tau: float) -> torch.Tensor:
    """Per row, the sum of the straight-through weights of the entries Gumbel-max did NOT choose.

    Its value is exactly 0 (``0 - s + s``), its gradient is 1 on each unchosen entry's tempered softmax:
    GDAS's NAS-Bench-201 cell (``forward_gdas``) adds these zero-valued weights to the node as scalars,
    which gives every unchosen logit the gradient sum(dL/dnode), a chosen ``none`` included.
    """
    perturbed = F.log_softmax(logits, dim=-1) + noise.to(logits.device, logits.dtype)
    index = perturbed.argmax(dim=-1)
    soft = F.softmax(perturbed / tau, dim=-1)
    hard = (torch.arange(logits.shape[-1], device=logits.device) == index.unsqueeze(-1)).to(soft.dtype)
    return (straight_through(hard, soft) * (1.0 - hard)).sum(-1)


def gumbel_topk(logits: torch.Tensor, noise: torch.Tensor, k: int, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gumbel-Top-k over the last dimension: k distinct entries drawn without replacement (Plackett-Luce).

    Returns (hard k-hot mask ``[..., n]`` as bool, straight-through weights ``[..., n]``: 1 on the k
    chosen entries and 0 elsewhere in value, gradient of the tempered softmax). ``k >= n`` keeps all.
    """
    n = logits.shape[-1]
    perturbed = F.log_softmax(logits, dim=-1) + noise.to(logits.device, logits.dtype)
    soft = F.softmax(perturbed / tau, dim=-1)
    if k >= n:
        hard = torch.ones_like(soft)
    else:
        kth = perturbed.topk(k, dim=-1).values[..., -1:]
        hard = (perturbed >= kth).to(soft.dtype)  # continuous noise: ties have probability 0
    return hard.bool(), straight_through(hard, soft)


def topk_inclusion_probability(p: torch.Tensor) -> torch.Tensor:
    """P(i among the 2 drawn without replacement) = p_i + sum_{k != i} p_k p_i / (1 - p_k) (k = 2 only)."""
    ratio = p.unsqueeze(0) * p.unsqueeze(1) / (1.0 - p).unsqueeze(1)  # [k, i] = p_k p_i / (1 - p_k)
    ratio = ratio - torch.diag(torch.diagonal(ratio))
    return p + ratio.sum(dim=0)


def linear_tau(epoch: int, epochs: int, tau_max: float, tau_min: float) -> float:
    """GDAS's schedule (rome-method.md: no values in the ROME paper): tau_max at epoch 0, tau_min at the last."""
    if epochs <= 1:
        return float(tau_max)
    f = epoch / (epochs - 1)
    return float(tau_max * (1.0 - f) + tau_min * f)  # exact at both ends
