"""Collapse indicators computed once per search epoch, so a researcher sees collapse coming.

Cheap ones, from the architecture parameters alone:
  * ``param_free_<cell>``: the share of parameter-free ops (skip, pools, none) in the cell the
    epoch derives (what ``rome derive`` would write now); R-DARTS's and ROME's Table 4 statistic;
  * ``op_entropy_{mean,min}_<cell>``: the entropy (nats) of each edge's op distribution
    softmax(alpha); a low minimum means some edge has made up its mind;
  * ``node_entropy_{mean,min}_<cell>``: for algorithms with topology parameters (ROME, PC-DARTS's
    edge normalisation) the entropy of each node's input distribution (softmax(beta) over its
    incoming edges, or over its input pairs for ROME-v1).

The costly one, every ``search.indicators.hessian_every`` epochs: ``hessian_eig``, the dominant
eigenvalue of the Hessian of the validation loss with respect to the architecture parameters
(R-DARTS, Zela et al. ICLR 2020, sec. 4; their ``src/search/analyze.py`` builds the dense Hessian and
takes ``max(eigvals)``). Here the same largest eigenvalue comes from power iteration on Hessian-vector
products (double backward through one retained graph; ``power_iteration`` says how a saddle's +l/-l
pair is handled); its cost is reported per epoch (``hessian_seconds``, in the run record).

Choices where the paper and R-DARTS are silent (tested in tests/test_indicators.py):
  * the loss is fixed: the first ``hessian_batches`` batches of search_val in order (R-DARTS uses one
    architecture batch), BatchNorm on batch statistics as in an architecture step, its running
    statistics restored afterwards, so the indicator never changes the search;
  * single-path algorithms (rome, gdas) have a stochastic loss: it is defined on ``hessian_draws``
    draws that are the SAME at every epoch (a generator re-seeded from the run's seed), each at the
    epoch's tau. Their hard (straight-through) choice makes the loss piecewise constant in alpha, so
    what is measured is the Jacobian of the gradient the architecture optimiser follows (the
    straight-through gradient), which is what sharpness means for these methods; the mixed-op
    algorithms (darts, pc_darts) need no draw;
  * R-DARTS adds the architecture weight decay's ``wd * I`` to its Hessian; this does not (it shifts
    every eigenvalue by the constant ``search.a_weight_decay``, 1e-3 by default);
  * ``random`` learns no architecture: no eigenvalue (None).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from rome.genotype.types import count_param_free

HESSIAN_SEED = 5  # offset of the Hessian's draws and start vector (beside rome.search.loop's seeds)


# ----------------------------------------------------------------------------- cheap indicators


def entropy(p: Sequence[float]) -> float:
    """Shannon entropy in nats of one probability vector (0 log 0 = 0)."""
    return float(-sum(x * math.log(x) for x in p if x > 0.0))


def _summary(kind: str, ct: str, values: list[float]) -> dict[str, float | None]:
    """``<kind>_mean_<ct>`` and ``<kind>_min_<ct>`` (None when there is nothing to summarise)."""
    if not values:
        return {f"{kind}_mean_{ct}": None, f"{kind}_min_{ct}": None}
    return {f"{kind}_mean_{ct}": sum(values) / len(values), f"{kind}_min_{ct}": min(values)}


def architecture_indicators(genotype: dict[str, list[Any]], probabilities: dict[str, dict[str, list]],
                            node_groups: dict[str, list[list[int]]]) -> dict[str, float | None]:
    """Parameter-free share and entropies per cell type, from what the epoch derived and the softmaxed parameters.

    ``node_groups[ct]`` lists, per node, the indices into ``probabilities["beta"][ct]`` that form one
    distribution (empty when the algorithm has no topology parameters).
    """
    out: dict[str, float | None] = {}
    for ct, entries in genotype.items():
        ops = [op for op, _ in entries]
        out[f"param_free_{ct}"] = count_param_free(ops) / len(ops) if ops else None
        out.update(_summary("op_entropy", ct, [entropy(row) for row in probabilities["alpha"].get(ct, [])]))
        beta = probabilities["beta"].get(ct)
        groups = node_groups.get(ct) or []
        node = [entropy([beta[i] for i in group]) for group in groups] if beta else []
        out.update(_summary("node_entropy", ct, node))
    return out


def indicator_columns(cell_types: Iterable[str]) -> tuple[str, ...]:
    """The history columns ``architecture_indicators`` and ``hessian_eig`` fill, in a stable order."""
    cols: list[str] = []
    for ct in cell_types:
        cols += [f"param_free_{ct}", f"op_entropy_mean_{ct}", f"op_entropy_min_{ct}",
                 f"node_entropy_mean_{ct}", f"node_entropy_min_{ct}"]
    return (*cols, "hessian_eig", "hessian_iters")


# ----------------------------------------------------------------------------- the Hessian eigenvalue


@dataclass(frozen=True)
class Eigenvalue:
    """The dominant eigenvalue, the power iterations it took, and whether they met the tolerance."""

    value: float
    iterations: int
    converged: bool


def _iterate(op: Callable[[torch.Tensor], torch.Tensor], v: torch.Tensor, iterations: int, tol: float,
             estimate: Callable[[torch.Tensor, torch.Tensor], float]) -> tuple[float, torch.Tensor, int, bool]:
    """Power iteration ``v <- op(v) / |op(v)|`` until ``estimate(v, op(v))`` changes by less than ``tol`` relative."""
    value, previous = 0.0, None
    for i in range(1, iterations + 1):
        w = op(v)
        value = estimate(v, w)
        norm = float(w.norm())
        if norm == 0.0 or not math.isfinite(norm):
            return value, v, i, norm == 0.0
        v = w / norm
        if previous is not None and abs(value - previous) <= tol * max(abs(value), 1e-12):
            return value, v, i, True
        previous = value
    return value, v, iterations, False


def power_iteration(hvp: Callable[[torch.Tensor], torch.Tensor], n: int, generator: torch.Generator,
                    iterations: int, tol: float, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> Eigenvalue:
    """The largest (algebraic) eigenvalue of the symmetric operator ``hvp`` on R^n, R-DARTS's ``max(eigvals)``.

    Plain power iteration finds the eigenvalue of largest magnitude and never settles when two of
    opposite sign share it (a saddle: +l and -l), so two passes, each at most ``iterations``: the first
    estimates the spectral radius r = lim |Hv| (which converges even then), the second runs on H + r I,
    whose spectrum is shifted to [0, 2r] with the largest eigenvalue on top, and returns its Rayleigh
    quotient minus r. Start vectors come from ``generator`` on the CPU (the result does not depend on
    the device's RNG).
    """
    def start() -> torch.Tensor:
        v = torch.randn(n, generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)
        return v / v.norm()

    radius, _, used, ok1 = _iterate(hvp, start(), iterations, tol, lambda v, w: float(w.norm()))
    if radius == 0.0 or not math.isfinite(radius):
        return Eigenvalue(radius if math.isfinite(radius) else float("nan"), used, ok1)
    shifted, _, more, ok2 = _iterate(lambda v: hvp(v) + radius * v, start(), iterations, tol,
                                     lambda v, w: float(torch.dot(v, w)))
    return Eigenvalue(shifted - radius, used + more, ok1 and ok2)


def flat_arch_parameters(arch: nn.Module) -> list[nn.Parameter]:
    """alpha then beta per cell type, in the module's order (the order of the flattened vector)."""
    return list(arch.parameters())


def validation_loss(model: nn.Module, algorithm: Any, batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
                    samples: Sequence[Any], tau: float,
                    arch: dict[str, dict[str, torch.Tensor]] | None = None) -> torch.Tensor:
    """Mean cross-entropy over the fixed batches and draws, as a differentiable function of the
    architecture parameters (``arch`` overrides them: the dense-Hessian test differentiates through it)."""
    total = None
    for x, y in batches:
        for sample in samples:
            loss = F.cross_entropy(model(x, algorithm.paths(sample, tau, arch=arch)).float(), y)
            total = loss if total is None else total + loss
    assert total is not None
    return total / (len(batches) * len(samples))


def _bn_buffers(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(b, b.detach().clone()) for b in model.buffers()]


def hessian_eigenvalue(model: nn.Module, algorithm: Any, batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
                       draws: int, tau: float, seed: int, iterations: int = 20, tol: float = 1e-3) -> Eigenvalue | None:
    """The dominant eigenvalue of d2 L_val / d arch2 (see the module docstring for the loss); None when
    the algorithm learns no architecture. Leaves the weights, their gradients, the BatchNorm buffers and
    the architecture parameters' ``.grad`` as it found them."""
    if not algorithm.learns_arch:
        return None
    params = flat_arch_parameters(algorithm.arch)
    generator = torch.Generator().manual_seed(seed * 10 + HESSIAN_SEED)
    samples = [algorithm.draw(generator) for _ in range(draws)] if algorithm.op_mode != "mixed" else [None]
    saved_buffers = _bn_buffers(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    try:
        for p in trainable:
            p.requires_grad_(False)  # only the architecture is differentiated: no weight graph is kept
        model.train()
        with torch.enable_grad():
            loss = validation_loss(model, algorithm, batches, samples, tau)
            grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
            flat_grad = torch.cat([g.reshape(-1) for g in grads])
            if not flat_grad.requires_grad:  # the loss does not depend on the architecture (none selected)
                return Eigenvalue(0.0, 0, True)

            def hvp(v: torch.Tensor) -> torch.Tensor:
                hv = torch.autograd.grad(flat_grad, params, grad_outputs=v, retain_graph=True, allow_unused=True)
                return torch.cat([(torch.zeros_like(p) if h is None else h).reshape(-1) for h, p in zip(hv, params)])

            n = flat_grad.numel()
            result = power_iteration(hvp, n, generator, iterations, tol, flat_grad.device, flat_grad.dtype)
    finally:
        for p in trainable:
            p.requires_grad_(True)
        with torch.no_grad():
            for buf, saved in saved_buffers:
                buf.copy_(saved)
        model.train(was_training)
    return result


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the seconds it took (the eigenvalue's cost goes to the run record)."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0
