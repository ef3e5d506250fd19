"""One iteration of Algorithm 1, shared by the search loop, the profiler and the memory benchmark.

``search_step(parts, data_train, data_val, tau)`` is the NASLib-style ``step(data_train, data_val)``:
an architecture step first (K samples on the same ``search_val`` batch, gradients averaged, Adam),
then a weight step (K fresh samples on the same ``search_train`` batch, gradients summed, clipped,
SGD). Writing it once is what makes the profiled and benchmarked iteration the searched one.
Reference mode (``rome.search.modes``) changes only four things here, each a field of ``StepParts``:
the order of the two steps (``weights_first``, GDAS), the architecture gradient (``unrolled``, DARTS's
second order: ``rome.search.unrolled``), whether this epoch takes architecture steps at all
(``arch_active``, PC-DARTS's warm-up) and what the weight step's clip norm covers (``clip_with_alpha``,
GDAS: the weights plus alpha's gradient as AutoDL's loop leaves it, see ``weight_step``).

The optimiser settings are built in one place (``OptimizerSettings`` -> ``build_optimizers``); its
defaults are the DARTS/ROME paper values the profiler and the benchmark use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from rome.distributed import SINGLE, ProcessGroup
from rome.errors import RomeError
from rome.precision import bf16_autocast
from rome.search.algorithms import ArchSample, SearchAlgorithm
from rome.search.unrolled import unrolled_arch_gradients
from rome.sections import SearchConfig

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class OptimizerSettings:
    """SGD on the weights, Adam on alpha/beta, gradient clipping: the ``search.*`` optimiser keys."""

    w_lr: float = 0.05
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    a_lr: float = 3e-4
    a_beta1: float = 0.5
    a_beta2: float = 0.999
    a_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    w_nesterov: bool = False  # not a key: GDAS's reference mode (rome.search.modes)

    @classmethod
    def from_search(cls, search: SearchConfig, nesterov: bool = False) -> OptimizerSettings:
        """From the typed ``search`` section (its fields are named like these) and the mode's Nesterov flag."""
        keys = {name: getattr(search, name) for name in cls.__dataclass_fields__ if hasattr(search, name)}
        return cls(**keys, w_nesterov=nesterov)


@dataclass
class StepParts:
    """What one step reads and updates: the supernet, the algorithm, both optimisers and the sample stream."""

    model: nn.Module
    algorithm: SearchAlgorithm
    w_opt: torch.optim.SGD
    a_opt: torch.optim.Adam | None
    sample_gen: torch.Generator
    grad_clip: float
    weights_first: bool = False  # GDAS reference: the weight step before the architecture step
    unrolled: bool = False  # DARTS's second-order architecture gradient (mixed-op algorithms)
    arch_active: bool = True  # False during PC-DARTS's warm-up epochs: weight steps only
    clip_with_alpha: bool = False  # GDAS reference: the clip norm covers alpha's stale + weight-batch gradient

    def draw(self) -> list[ArchSample | None]:
        """K sub-network draws from the run's own sample generator."""
        return [self.algorithm.draw(self.sample_gen) for _ in range(self.algorithm.k_samples)]


def build_optimizers(model: nn.Module, algorithm: SearchAlgorithm,
                     settings: OptimizerSettings) -> tuple[torch.optim.SGD, torch.optim.Adam | None]:
    """(SGD on the weights, Adam on alpha/beta or ``None`` when the algorithm learns no architecture)."""
    w_opt = torch.optim.SGD(model.parameters(), lr=settings.w_lr, momentum=settings.w_momentum,
                            weight_decay=settings.w_weight_decay,
                            nesterov=settings.w_nesterov and settings.w_momentum > 0)
    a_opt = (torch.optim.Adam(algorithm.arch.parameters(), lr=settings.a_lr, betas=(settings.a_beta1, settings.a_beta2),
                              weight_decay=settings.a_weight_decay) if algorithm.learns_arch else None)
    return w_opt, a_opt


def build_step_parts(model: nn.Module, algorithm: SearchAlgorithm, settings: OptimizerSettings,
                     sample_gen: torch.Generator) -> StepParts:
    w_opt, a_opt = build_optimizers(model, algorithm, settings)
    return StepParts(model, algorithm, w_opt, a_opt, sample_gen, settings.grad_clip)


@contextmanager
def _weights_frozen(model: nn.Module) -> Iterator[None]:
    """``requires_grad`` off on the weights for the architecture passes, back on after (even on error).

    What it saves: autograd records no graph for what depends on the weights alone (stem, the cells'
    preprocessing, the ops on the first cell's input edges), so their activations are never saved;
    with the weights trainable they were saved, never traversed by ``autograd.grad`` (no alpha behind
    them) and so kept alive with the loss until the next pass had run. The gradients are the same
    bits: the traversed nodes and their order do not change (tests/test_search_step_memory.py).
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


def arch_gradients(model: nn.Module, algorithm: SearchAlgorithm, x: torch.Tensor, y: torch.Tensor,
                   samples: Sequence[ArchSample | None], tau: float, amp: str = "none") -> float:
    """Set ``.grad`` of alpha/beta to the MEAN over the samples of their gradients on one batch.

    Only the architecture gradients are computed (``autograd.grad``): weight gradients of this pass
    are never needed, so the weights are frozen during it (``_weights_frozen``). Returns the mean loss.
    """
    params = list(algorithm.arch.parameters())
    total: list[torch.Tensor | None] = [None] * len(params)
    loss_sum = 0.0
    with _weights_frozen(model):
        for sample in samples:
            with bf16_autocast(x.device, amp):
                loss = F.cross_entropy(model(x, algorithm.paths(sample, tau)), y)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for i, g in enumerate(grads):
                if g is not None:
                    total[i] = g.clone() if total[i] is None else total[i] + g
            loss_sum += float(loss.detach())
    for p, g in zip(params, total):
        p.grad = None if g is None else g / len(samples)
    return loss_sum / len(samples)


def weight_gradients(model: nn.Module, algorithm: SearchAlgorithm, x: torch.Tensor, y: torch.Tensor,
                     samples: Sequence[ArchSample | None], tau: float, amp: str = "none",
                     arch_grad: bool = False) -> tuple[float, float]:
    """Accumulate into the weights' ``.grad`` the SUM over the samples of their gradients on one batch.

    The sampled paths are built without a graph to alpha/beta (same forward values), unless ``arch_grad``:
    then the backward also accumulates the weight batch's gradient into alpha/beta's ``.grad`` (on top of
    whatever it holds), as a loop that backpropagates through the whole network does (GDAS's). Returns the
    mean loss and the mean accuracy over the samples.
    """
    loss_sum, correct = 0.0, 0.0
    for sample in samples:
        with torch.set_grad_enabled(arch_grad):
            paths = algorithm.paths(sample, tau)
        with bf16_autocast(x.device, amp):
            logits = model(x, paths)
            loss = F.cross_entropy(logits, y)
        loss.backward()
        loss_sum += float(loss.detach())
        correct += float((logits.detach().argmax(1) == y).float().mean())
    return loss_sum / len(samples), correct / len(samples)


def search_step(parts: StepParts, data_train: Iterator[Batch], data_val: Iterator[Batch], tau: float,
                amp: str = "none", group: ProcessGroup = SINGLE) -> dict[str, float]:
    """One iteration: ``arch_loss`` (when the algorithm learns alpha/beta), ``train_loss``, ``train_acc``.

    The data come as iterators, not batches, because an algorithm that learns no architecture
    (random), or an epoch of PC-DARTS's warm-up, never takes an architecture batch: its ``search_val``
    stream stays where it was. The weight batch is taken first because the unrolled gradient needs it.
    Across processes (``group``, rome.distributed): every rank draws all K samples and takes the same
    batches, runs only its share of the draws (or, data parallel, all draws on its slice of the
    batch), and the gradients are reduced before each optimiser step, so every rank takes the same
    step (in ``draws`` mode the step one process takes).
    """
    out: dict[str, float] = {}
    train_batch = next(data_train)
    if parts.weights_first:
        out.update(weight_step(parts, train_batch, tau, amp, group))
    if parts.algorithm.learns_arch and parts.arch_active:
        out["arch_loss"] = arch_step(parts, next(data_val), train_batch, tau, amp, group)
    if not parts.weights_first:
        out.update(weight_step(parts, train_batch, tau, amp, group))
    return out


def arch_step(parts: StepParts, val_batch: Batch, train_batch: Batch, tau: float, amp: str = "none",
              group: ProcessGroup = SINGLE) -> float:
    """The architecture step (Adam on alpha/beta); returns the architecture loss (mean over the K draws)."""
    assert parts.a_opt is not None
    k = parts.algorithm.k_samples
    parts.a_opt.zero_grad(set_to_none=True)
    if parts.unrolled:
        if group.distributed:
            # its virtual weight step runs several forwards per draw; the BatchNorm replay across ranks assumes one
            raise RomeError("search.unrolled (second-order gradient) runs in one process; set search.nproc: 1")
        (sample,) = parts.draw()  # mixed-op algorithms: K = 1, no noise
        loss = unrolled_arch_gradients(parts.model, parts.algorithm, train_batch, val_batch, parts.w_opt, sample, tau, amp)
    else:
        xa, ya = group.shard(val_batch)
        mine = group.share(parts.draw())
        local = arch_gradients(parts.model, parts.algorithm, xa, ya, mine, tau, amp) if mine else 0.0
        loss = group.mean_over_draws(list(parts.algorithm.arch.parameters()), local, len(mine), k)
    parts.a_opt.step()
    return loss


def clipped_parameters(parts: StepParts) -> list[nn.Parameter]:
    """What the weight step's gradient-norm clip covers: the weights, plus alpha/beta with ``clip_with_alpha``."""
    params = list(parts.model.parameters())
    if parts.clip_with_alpha and parts.algorithm.learns_arch:
        params += list(parts.algorithm.arch.parameters())
    return params


def weight_step(parts: StepParts, train_batch: Batch, tau: float, amp: str = "none",
                group: ProcessGroup = SINGLE) -> dict[str, float]:
    """The weight step (K samples summed, clipped, SGD); returns ``train_loss`` and ``train_acc``.

    ``clip_with_alpha`` (GDAS's reference loop, AutoDL-Projects ``GDAS.py`` search_func)::

        w_optimizer.zero_grad()                                # the weights only (get_weights())
        base_loss.backward()                                   # into the weights AND arch_parameters
        torch.nn.utils.clip_grad_norm_(network.parameters(), 5)  # network.parameters() holds the arch params

    alpha's ``.grad`` is zeroed only by ``a_optimizer.zero_grad()`` in the architecture step, so here it still
    holds the last architecture step's gradient, and the weight batch's gradient is added to it: the clip
    factor is computed over the weights and that sum. Alpha's own update is unaffected (the architecture step
    sets its gradient afresh), only the weights' clip factor changes.
    """
    k = parts.algorithm.k_samples
    if parts.clip_with_alpha and group.distributed:
        raise RomeError("search.behaviour.clip_with_alpha (GDAS's reference clipping) runs in one process; "
                        "set search.nproc: 1 or search.behaviour.clip_with_alpha: false")
    xw, yw = group.shard(train_batch)
    parts.w_opt.zero_grad(set_to_none=True)
    mine = group.share(parts.draw())
    local = (weight_gradients(parts.model, parts.algorithm, xw, yw, mine, tau, amp,
                              arch_grad=parts.clip_with_alpha and parts.algorithm.learns_arch)
             if mine else (0.0, 0.0))
    loss, acc = group.sum_over_draws(list(parts.model.parameters()), local, len(mine), k)
    nn.utils.clip_grad_norm_(clipped_parameters(parts), parts.grad_clip)
    parts.w_opt.step()
    return {"train_loss": loss, "train_acc": acc}
