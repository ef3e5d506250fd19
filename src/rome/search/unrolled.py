"""DARTS's second-order (unrolled) architecture gradient (Liu et al. 2019, eq. 7-8; quark0/darts ``architect.py``).

  w' = w - eta (momentum * buf + dL_train/dw (w, alpha) + wd w)       one virtual step of the weight SGD
  g  = dL_val/dalpha (w', alpha) - eta * HVP
  HVP = (dL_train/dalpha (w+, alpha) - dL_train/dalpha (w-, alpha)) / (2 R),   w+- = w +- R v,
  v = dL_val/dw' (w', alpha),  R = 0.01 / ||v||

eta, momentum and weight decay are the weight optimiser's current values; buf is its momentum buffer
(zero before the first step). The virtual step is not clipped. The perturbed and unrolled weights are
passed to the same module with ``torch.func.functional_call`` (the module's weights are never written),
so, as in DARTS where the unrolled network is a copy, the forward at w' leaves the module's BatchNorm
statistics alone while the forwards at w and w+- update them as DARTS's do.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from rome.precision import bf16_autocast
from rome.search.algorithms import ArchSample, SearchAlgorithm

Batch = tuple[torch.Tensor, torch.Tensor]


def _loss(model: nn.Module, tensors: dict[str, torch.Tensor], algorithm: SearchAlgorithm, sample: ArchSample | None,
          tau: float, batch: Batch, amp: str, arch_graph: bool = True) -> torch.Tensor:
    x, y = batch
    if arch_graph:
        paths = algorithm.paths(sample, tau)
    else:
        with torch.no_grad():
            paths = algorithm.paths(sample, tau)
    with bf16_autocast(x.device, amp):
        return F.cross_entropy(functional_call(model, tensors, (x, paths)), y)


def unrolled_arch_gradients(model: nn.Module, algorithm: SearchAlgorithm, train: Batch, val: Batch,
                            w_opt: torch.optim.SGD, sample: ArchSample | None, tau: float, amp: str = "none",
                            r: float = 1e-2) -> float:
    """Set ``.grad`` of alpha/beta to the unrolled gradient on (``train``, ``val``); returns L_val(w', alpha)."""
    names = [n for n, _ in model.named_parameters()]
    weights = [p for _, p in model.named_parameters()]
    arch = list(algorithm.arch.parameters())
    group = w_opt.param_groups[0]
    eta, momentum, wd = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])

    # one virtual SGD step on the training batch (alpha fixed)
    loss_t = _loss(model, {}, algorithm, sample, tau, train, amp, arch_graph=False)
    grads = torch.autograd.grad(loss_t, weights, allow_unused=True)
    unrolled: list[torch.Tensor] = []
    with torch.no_grad():
        for p, g in zip(weights, grads):
            step = (torch.zeros_like(p) if g is None else g) + wd * p
            buf = w_opt.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                step = step + momentum * buf
            unrolled.append((p - eta * step).requires_grad_())

    # the validation loss at w' (on copied BatchNorm buffers: DARTS runs it on a copy of the network)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    loss_v = _loss(model, {**dict(zip(names, unrolled)), **buffers}, algorithm, sample, tau, val, amp)
    g_all = torch.autograd.grad(loss_v, arch + unrolled, allow_unused=True)
    d_alpha = [torch.zeros_like(a) if g is None else g for a, g in zip(arch, g_all[:len(arch)])]
    vector = [torch.zeros_like(w) if g is None else g for w, g in zip(unrolled, g_all[len(arch):])]

    # finite-difference Hessian-vector product at w (not w'), on the training batch
    R = r / torch.cat([v.reshape(-1) for v in vector]).norm()

    def arch_grad_at(sign: float) -> list[torch.Tensor]:
        with torch.no_grad():
            moved = {n: p + sign * R * v for n, p, v in zip(names, weights, vector)}
        loss = _loss(model, moved, algorithm, sample, tau, train, amp)
        return [torch.zeros_like(a) if g is None else g
                for a, g in zip(arch, torch.autograd.grad(loss, arch, allow_unused=True))]

    g_plus, g_minus = arch_grad_at(1.0), arch_grad_at(-1.0)
    for a, d, gp, gm in zip(arch, d_alpha, g_plus, g_minus):
        a.grad = (d - eta * (gp - gm) / (2 * R)).detach()
    return float(loss_v.detach())
