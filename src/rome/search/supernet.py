"""Supernets that execute exactly the ops a ``CellPath`` lists, and nothing else.

A path is a list of (edge, op index) pairs with one weight each. A ROME sample of a DARTS cell lists
8 pairs (2 edges per node, 1 op each), a GDAS sample 14 (one op on every edge), the DARTS mixed op
all 14 x n_ops: the memory and time of a forward follow from the path alone, and the op modules
that are not listed are never called (tests count calls with forward hooks).

The DARTS-space supernet has two stems (``stem``): DARTS's CIFAR stem (conv3x3 to 3C, the cells at the
input's side) and, for 224 px ImageNet, the stride-2 three-convolution stem of PC-DARTS's direct ImageNet
search (``model_search_imagenet.py``; ``rome.spaces.ops.imagenet_stem``), the cells at side / 8.

A supernet built with ``partial`` = K > 1 (PC-DARTS) has ops of C/K channels: each edge runs its listed
ops on the first C/K channels of its input, concatenates the untouched rest (2x2 max-pooled on stride-2
edges) and shuffles the channels with K groups, as PC-DARTS's ``MixedOp``; a path's ``edge_weights``
then scale each edge's whole output (PC-DARTS's edge normalisation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from rome.errors import RomeError
from rome.spaces import SearchSpace
from rome.spaces.ops import (NB201_OPS, STEMS, FactorizedReduce, ReLUConvBN, ResNetBasicBlock, imagenet_sized,
                             imagenet_stem, make_search_op)


@dataclass
class CellPath:
    """What one cell type executes in one forward: (edge, op index) pairs in edge order and their weights.

    ``weights`` holds one (possibly differentiable) scalar per pair; ``None`` means all 1 (no multiply),
    used for the discrete argmax network.
    """

    pairs: list[tuple[int, int]]
    weights: torch.Tensor | None = None
    edge_weights: torch.Tensor | None = None  # one scalar per edge of the space (PC-DARTS's normalised beta)
    offsets: torch.Tensor | None = None  # one scalar per pair added to its output (GDAS's NB201 unchosen weights)

    def __post_init__(self) -> None:
        if self.weights is not None and self.weights.shape != (len(self.pairs),):
            raise ValueError(f"{len(self.pairs)} pairs but weights of shape {tuple(self.weights.shape)}")
        if self.offsets is not None and self.offsets.shape != (len(self.pairs),):
            raise ValueError(f"{len(self.pairs)} pairs but offsets of shape {tuple(self.offsets.shape)}")


Paths = Mapping[str, CellPath]


def _run_edges(space: SearchSpace, edge_ops: nn.ModuleList, states: list[torch.Tensor], path: CellPath) -> list[torch.Tensor]:
    """Append one state per destination node: the (weighted) sum of the listed ops of its incoming edges.

    ``states`` starts with the cell inputs, so a source index (DARTS input index / NB201 node) indexes it
    directly. Destinations are visited in increasing order: an edge only reads earlier states.
    """
    by_dst: dict[int, list[int]] = {}
    for i, (edge, _) in enumerate(path.pairs):
        by_dst.setdefault(space.edges[edge][1], []).append(i)
    for dst in space.dst_nodes:
        if dst not in by_dst:
            raise ValueError(f"path leaves node {dst} without any input")
        total: torch.Tensor | None = None
        for i in by_dst[dst]:
            edge, op = path.pairs[i]
            src = space.edges[edge][0]
            out = edge_ops[edge][op](states[src])
            if path.weights is not None:
                out = out * path.weights[i].to(out.dtype)
            if path.offsets is not None:
                out = out + path.offsets[i].to(out.dtype)
            total = out if total is None else total + out
        assert total is not None
        states.append(total)
    return states


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """PC-DARTS's ``channel_shuffle``: view channels as (groups, C/groups), transpose, flatten."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def _run_partial_edges(space: SearchSpace, edge_ops: nn.ModuleList, states: list[torch.Tensor], path: CellPath,
                       partial: int) -> list[torch.Tensor]:
    """``_run_edges`` edge by edge, each edge as PC-DARTS's ``MixedOp`` on 1/``partial`` of the channels.

    Per edge: ``sum_i w_i op_i(x[:, :C/K])``, concatenated with ``x[:, C/K:]`` (max-pooled 2x2 when the ops
    halve the resolution), channel-shuffled with K groups, then times the edge's weight, as the reference's
    ``weights2[j] * MixedOp(h)``. With K = 1 nothing bypasses and the shuffle is the identity.
    """
    by_edge: dict[int, list[int]] = {}
    for i, (edge, _) in enumerate(path.pairs):
        by_edge.setdefault(edge, []).append(i)
    for dst in space.dst_nodes:
        edges = [e for e in space.incoming(dst) if e in by_edge]
        if not edges:
            raise ValueError(f"path leaves node {dst} without any input")
        total: torch.Tensor | None = None
        for edge in edges:
            x = states[space.edges[edge][0]]
            cp = x.shape[1] // partial
            part, rest = x[:, :cp], x[:, cp:]
            mixed: torch.Tensor | None = None
            for i in by_edge[edge]:
                out = edge_ops[edge][path.pairs[i][1]](part)
                if path.weights is not None:
                    out = out * path.weights[i].to(out.dtype)
                mixed = out if mixed is None else mixed + out
            assert mixed is not None
            if partial > 1:
                if mixed.shape[2] != x.shape[2]:
                    rest = F.max_pool2d(rest, 2, 2)
                mixed = channel_shuffle(torch.cat([mixed, rest], dim=1), partial)
            if path.edge_weights is not None:
                mixed = mixed * path.edge_weights[edge].to(mixed.dtype)
            total = mixed if total is None else total + mixed
        assert total is not None
        states.append(total)
    return states


def run_cell_edges(space: SearchSpace, edge_ops: nn.ModuleList, states: list[torch.Tensor], path: CellPath,
                   partial: int = 1) -> list[torch.Tensor]:
    """The per-pair runner for full-channel paths without edge weights, else the per-edge (PC-DARTS) one."""
    if partial == 1 and path.edge_weights is None:
        return _run_edges(space, edge_ops, states, path)
    if path.offsets is not None:
        raise ValueError("per-pair offsets need full-channel paths without edge weights")
    return _run_partial_edges(space, edge_ops, states, path, partial)


def _check_partial(C: int, partial: int) -> None:
    if partial < 1 or C % partial:
        raise RomeError(f"search.partial_channels = {partial}: must divide every cell's channel count ({C}); "
                        "choose a divisor of search.init_channels")


def _edge_op_modules(space: SearchSpace, cell_type: str, build) -> nn.ModuleList:
    return nn.ModuleList(nn.ModuleList(build(edge, name) for name in space.ops(cell_type, edge))
                         for edge in range(space.n_edges))


class DartsSearchCell(nn.Module):
    """A DARTS cell whose candidate ops are indexed per edge (R-DARTS S1 differs per edge)."""

    def __init__(self, space: SearchSpace, cell_type: str, C_pp: int, C_p: int, C: int, reduction_prev: bool,
                 partial: int = 1, pool_bn: bool = True) -> None:
        super().__init__()
        _check_partial(C, partial)
        self.space, self.cell_type, self.partial = space, cell_type, partial
        self.reduction = cell_type == "reduce"
        self.preprocess0 = FactorizedReduce(C_pp, C, affine=False) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)

        def build(edge: int, name: str) -> nn.Module:
            stride = 2 if self.reduction and space.edges[edge][0] < 2 else 1
            return make_search_op(name, C // partial, stride, pool_bn)

        self.edge_ops = _edge_op_modules(space, cell_type, build)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, path: CellPath) -> torch.Tensor:
        states = run_cell_edges(self.space, self.edge_ops, [self.preprocess0(s0), self.preprocess1(s1)], path, self.partial)
        return torch.cat(states[2:], dim=1)


def reduction_cells(layers: int) -> tuple[int, ...]:
    """Indices of the reduction cells: 1/3 and 2/3 of the depth (DARTS); one index when they coincide."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))


def resolve_stem(choice: str, resolution: int, space: SearchSpace) -> str:
    """``search.stem`` -> ``cifar`` / ``imagenet``; ``auto`` = the ImageNet stem for DARTS-space images of
    ``IMAGENET_MIN_SIDE`` px and more (``rome.spaces.ops``), else the CIFAR stem (NB201 has only its own)."""
    if choice not in STEMS:
        raise RomeError(f"search.stem = {choice!r}: expected one of {list(STEMS)}")
    if choice == "auto":
        return "imagenet" if space.kind != "nb201" and imagenet_sized(resolution) else "cifar"
    if choice == "imagenet" and space.kind == "nb201":
        raise RomeError(f"search.stem = 'imagenet': the NAS-Bench-201 network has its own stem; expected cifar or auto "
                        f"for search.space = {space.name!r}")
    return choice


def check_imagenet_stem(resolution: int, layers: int, choice: str) -> None:
    """The ImageNet stem halves the side 3 times and each reduction cell once more: refuse images so small
    that the last cells would run on less than 1 px (the convs' padding would silently keep 1 px maps)."""
    need = 2 ** (3 + len(reduction_cells(layers)))
    if resolution < need:
        raise RomeError(f"search.stem = {choice!r}: the search images are {resolution} px, too small for the ImageNet "
                        f"stem; expected at least {need} px (3 stride-2 stem convs and {len(reduction_cells(layers))} "
                        "reduction cells; 224 px gives cells at 28/14/7), or search.stem = cifar, "
                        "or a larger data.resize")


class DartsSupernet(nn.Module):
    """DARTS search network: stem, ``layers`` cells (reductions at 1/3 and 2/3 depth), pool, linear.

    ``stem``: ``cifar`` = conv3x3 to ``stem_multiplier`` x C + BN, both inputs of the first cell the stem's
    output (DARTS's ``model_search.py``); ``imagenet`` = PC-DARTS's ``model_search_imagenet.py``: stem0 and
    stem1 (``imagenet_stem``) to ``stem_multiplier`` x C channels (its 48 at C = 16), the first cell reading
    stem0's and stem1's outputs with a factorized reduce on stem0's, as after a reduction cell. The
    references' in-place stem ReLU is out of place here (same values, nothing of autograd's overwritten).
    ``lastact``: BatchNorm + ReLU before the pooling (GDAS's ``NASNetworkGDAS``; DARTS's network has none).
    ``pool_bn``: BatchNorm(affine=False) after search pools (DARTS's MixedOp; GDAS's ops have none).
    """

    def __init__(self, space: SearchSpace, C: int, num_classes: int, layers: int, in_channels: int = 3,
                 stem_multiplier: int = 3, partial: int = 1, lastact: bool = False, pool_bn: bool = True,
                 stem: str = "cifar") -> None:
        super().__init__()
        self.space = space
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be a resolved search.stem (cifar or imagenet), got {stem!r}")
        C_curr = stem_multiplier * C
        if stem == "imagenet":
            self.stem0, self.stem1 = imagenet_stem(in_channels, C_curr, inplace=False)
        else:  # the attribute name keeps the CIFAR supernet's state-dict keys (and checkpoints) unchanged
            self.stem = nn.Sequential(nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        self.stem_kind = stem
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = stem == "imagenet"
        for i in range(layers):
            reduction = i in reduction_cells(layers)
            if reduction:
                C_curr *= 2
            cell = DartsSearchCell(space, "reduce" if reduction else "normal", C_pp, C_p, C_curr, reduction_prev, partial,
                                   pool_bn)
            self.cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, space.nodes * C_curr
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_p), nn.ReLU(inplace=False)) if lastact else None
        self.classifier = nn.Linear(C_p, num_classes)

    def forward(self, x: torch.Tensor, paths: Paths) -> torch.Tensor:
        if self.stem_kind == "imagenet":
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, paths[cell.cell_type])
        if self.lastact is not None:
            s1 = self.lastact(s1)
        return self.classifier(s1.mean(dim=(2, 3)))  # global average pool (deterministic backward on CUDA)


class NB201SearchCell(nn.Module):
    """NAS-Bench-201 cell: node i sums the listed ops of edges j -> i; output is the last node."""

    def __init__(self, space: SearchSpace, C: int, partial: int = 1) -> None:
        super().__init__()
        _check_partial(C, partial)
        self.space, self.cell_type, self.partial = space, "normal", partial
        Cp = C // partial
        self.edge_ops = _edge_op_modules(space, "normal", lambda edge, name: NB201_OPS[name](Cp, Cp, 1, False))

    def forward(self, x: torch.Tensor, path: CellPath) -> torch.Tensor:
        return run_cell_edges(self.space, self.edge_ops, [x], path, self.partial)[-1]


class NB201Supernet(nn.Module):
    """NB201 macro network: stem, 3 stages of ``cells_per_stage`` cells (C, 2C, 4C) joined by ResNet blocks.

    Stem and ResNet blocks keep affine BatchNorm, cell ops use affine=False (as GDAS's NB201 search).
    """

    def __init__(self, space: SearchSpace, C: int, num_classes: int, cells_per_stage: int, in_channels: int = 3,
                 partial: int = 1) -> None:
        super().__init__()
        self.space = space
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        blocks: list[nn.Module] = []
        C_prev = C
        for stage, mult in enumerate((1, 2, 4)):
            C_curr = C * mult
            if stage > 0:
                blocks.append(ResNetBasicBlock(C_prev, C_curr, 2, affine=True))
            blocks += [NB201SearchCell(space, C_curr, partial) for _ in range(cells_per_stage)]
            C_prev = C_curr
        self.cells = nn.ModuleList(blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x: torch.Tensor, paths: Paths) -> torch.Tensor:
        h = self.stem(x)
        for block in self.cells:
            h = block(h, paths["normal"]) if isinstance(block, NB201SearchCell) else block(h)
        return self.classifier(self.lastact(h).mean(dim=(2, 3)))


def build_supernet(space: SearchSpace, init_channels: int, num_classes: int, layers: int, in_channels: int,
                   partial: int = 1, lastact: bool = False, pool_bn: bool = True, stem: str = "cifar") -> nn.Module:
    """``layers`` = number of cells for DARTS spaces, cells per stage (NB201's N) for nb201; ``partial`` = the
    PC-DARTS K (cell ops of C/K channels), 1 for every other algorithm; ``lastact`` and ``pool_bn`` (DARTS
    spaces; the NB201 supernet always has its lastact) come from ``rome.search.modes``; ``stem`` (DARTS
    spaces) is a resolved ``search.stem`` (``resolve_stem``): ``cifar`` or ``imagenet``."""
    if space.kind == "nb201":
        if stem != "cifar":
            raise ValueError(f"the NB201 supernet has one stem, got {stem!r}")
        return NB201Supernet(space, init_channels, num_classes, layers, in_channels, partial=partial)
    return DartsSupernet(space, init_channels, num_classes, layers, in_channels, partial=partial, lastact=lastact,
                         pool_bn=pool_bn, stem=stem)
