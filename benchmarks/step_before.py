"""The architecture step as it was before the memory savings, kept to measure them against (benchmark 1).

``arch_gradients_before`` is ``rome.search.step.arch_gradients`` as of commit 1031379 (weights trainable
during the architecture passes, so autograd saves the activations of the stem, the preprocessing and the
first cell's input edges, which ``autograd.grad`` never traverses and which stay alive with ``loss``
until the next pass has run). ``arch_gradients_freed`` is the same with the loss, and so that untraversed
graph, dropped right after ``autograd.grad``: the saving that freeing alone gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from rome.precision import bf16_autocast
from rome.search.algorithms import ArchSample, SearchAlgorithm


def _arch_gradients(model: nn.Module, algorithm: SearchAlgorithm, x: torch.Tensor, y: torch.Tensor,
                    samples: Sequence[ArchSample | None], tau: float, amp: str, free_loss: bool) -> float:
    params = list(algorithm.arch.parameters())
    total: list[torch.Tensor | None] = [None] * len(params)
    loss_sum = 0.0
    for sample in samples:
        with bf16_autocast(x.device, amp):
            loss = F.cross_entropy(model(x, algorithm.paths(sample, tau)), y)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for i, g in enumerate(grads):
            if g is not None:
                total[i] = g.clone() if total[i] is None else total[i] + g
        loss_sum += float(loss.detach())
        if free_loss:
            del loss
    for p, g in zip(params, total):
        p.grad = None if g is None else g / len(samples)
    return loss_sum / len(samples)


def arch_gradients_before(model: nn.Module, algorithm: SearchAlgorithm, x: torch.Tensor, y: torch.Tensor,
                          samples: Sequence[ArchSample | None], tau: float, amp: str = "none") -> float:
    """The architecture step of commit 1031379, unchanged."""
    return _arch_gradients(model, algorithm, x, y, samples, tau, amp, free_loss=False)


def arch_gradients_freed(model: nn.Module, algorithm: SearchAlgorithm, x: torch.Tensor, y: torch.Tensor,
                         samples: Sequence[ArchSample | None], tau: float, amp: str = "none") -> float:
    """Commit 1031379's step, with each pass's loss (and its untraversed graph) freed after ``autograd.grad``."""
    return _arch_gradients(model, algorithm, x, y, samples, tau, amp, free_loss=True)


STEPS: dict[str, Callable[..., float]] = {"before": arch_gradients_before, "freed": arch_gradients_freed}
