"""Evaluation cells built from a genotype (DARTS and NAS-Bench-201) and the DARTS auxiliary head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import drop_path

from rome.genotype.types import DARTS_INPUTS, ENTRIES_PER_NODE, NB201Genotype
from rome.spaces.ops import NB201_OPS, FactorizedReduce, Identity, ReLUConvBN, make_op


def drop_op_path(h: torch.Tensor, drop_prob: float | torch.Tensor) -> torch.Tensor:
    """Drop-path of one op's output, per sample. A float is timm's ``drop_path`` (skipped at 0, as
    DARTS does); a 0-dim tensor is the compiled network's graph input (rome.models.base.EvalNetwork):
    the same mask distribution and scaling, drawn without branching on the value, so one graph serves
    every probability of the ramp (at 0 the mask is all ones and ``h`` passes unchanged)."""
    if not isinstance(drop_prob, torch.Tensor):
        return drop_path(h, drop_prob, training=True) if drop_prob > 0.0 else h
    keep = (1.0 - drop_prob).to(h.dtype)
    mask = torch.bernoulli(keep.expand(h.shape[0], *([1] * (h.dim() - 1))))
    return h * (mask / keep)


class DartsCell(nn.Module):
    """A DARTS evaluation cell: two ops per node, summed; output = concat of ``concat`` states.

    Drop-path applies to every op output except the identity (stride-1 skip_connect), as in DARTS.
    """

    def __init__(self, entries: Sequence[tuple[str, int]], concat: Sequence[int], C_prev_prev: int, C_prev: int,
                 C: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(C_prev_prev, C) if reduction_prev else ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)
        self.steps = len(entries) // ENTRIES_PER_NODE
        self.indices = [int(i) for _, i in entries]
        self.concat = [int(c) for c in concat]
        self.multiplier = len(self.concat)
        self.ops = nn.ModuleList(
            make_op(name, C, 2 if reduction and index < DARTS_INPUTS else 1, affine=True) for name, index in entries)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float | torch.Tensor = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for step in range(self.steps):
            total = None
            for k in range(ENTRIES_PER_NODE):
                e = ENTRIES_PER_NODE * step + k
                op = self.ops[e]
                h = op(states[self.indices[e]])
                if self.training and not isinstance(op, Identity):
                    h = drop_op_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


def build_cell_stack(genotype, layers: int, reductions: Sequence[int], aux_index: int, C_prev_prev: int, C_prev: int,
                     C: int, reduction_prev: bool) -> tuple[nn.ModuleList, int, int]:
    """The DARTS cell sequence shared by the CIFAR and ImageNet networks: channels double at each
    reduction cell. Returns (cells, channels of the last cell, channels at the auxiliary-head cell)."""
    cells = nn.ModuleList()
    C_aux = C_prev
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            C *= 2
        entries, concat = genotype.cell("reduce" if reduction else "normal")
        cell = DartsCell(entries, concat, C_prev_prev, C_prev, C, reduction, reduction_prev)
        cells.append(cell)
        reduction_prev = reduction
        C_prev_prev, C_prev = C_prev, cell.multiplier * C
        if i == aux_index:
            C_aux = C_prev
    return cells, C_prev, C_aux


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary classifier: ReLU, avgpool 5, conv1x1 -> 128, BN, ReLU, conv2x2 -> 768, [BN], ReLU, linear.

    The pool is DARTS's (kernel 5, ``stride`` 3 for CIFAR / 2 for ImageNet) where it yields the 2x2
    map DARTS assumes (8x8 CIFAR maps, 7x7 ImageNet maps); at other resolutions (MNIST 16 px, smoke
    8 px) it becomes an adaptive average pool to 2x2 (choice: the head must work at any input size).
    ``second_bn=False`` reproduces DARTS's ImageNet head, whose second BatchNorm is commented out.
    """

    def __init__(self, C: int, num_classes: int, stride: int, second_bn: bool = True) -> None:
        super().__init__()
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        layers: list[nn.Module] = [nn.Conv2d(C, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
                                   nn.Conv2d(128, 768, 2, bias=False)]
        if second_bn:
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        h, w = x.shape[-2:]
        if h >= 5 and w >= 5 and (h - 5) // self.stride + 1 == 2 and (w - 5) // self.stride + 1 == 2:
            x = F.avg_pool2d(x, 5, stride=self.stride, padding=0, count_include_pad=False)
        else:
            x = F.adaptive_avg_pool2d(x, 2)
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


class NB201Cell(nn.Module):
    """NAS-Bench-201 inference cell: node i = sum over j < i of op_{i<-j}(node j); output = last node.

    Edges out of node 0 map C_in -> C_out; the others C_out -> C_out (AutoDL-Projects' InferCell).
    Drop-path (off in the NB201 protocol) applies to non-identity edges when the trainer sets it.
    """

    def __init__(self, genotype: NB201Genotype, C_in: int, C_out: int, stride: int = 1) -> None:
        super().__init__()
        self.edges = genotype.edges()
        self.ops = nn.ModuleList(
            NB201_OPS[op](C_in if src == 0 else C_out, C_out, stride if src == 0 else 1, True)
            for src, _, op in self.edges)
        self.n_nodes = len(genotype.nodes) + 1

    def forward(self, x: torch.Tensor, drop_prob: float | torch.Tensor = 0.0) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x] + [None] * (self.n_nodes - 1)
        for (src, dst, _), op in zip(self.edges, self.ops):
            h = op(nodes[src])
            if self.training and not isinstance(op, Identity):
                h = drop_op_path(h, drop_prob)
            nodes[dst] = h if nodes[dst] is None else nodes[dst] + h
        return nodes[-1]
