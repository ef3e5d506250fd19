"""The heaviest sub-network each sampling method can draw, found by measurement (benchmark 1's bound).

``op_costs`` runs one forward per op index with that op on every edge (trainable weights, as a weight
pass) and attributes the bytes autograd saves inside each op module to its (cell type, edge, op),
summed over the cells of that type (they share one draw). ``heaviest_choice`` then takes, per edge, the
op that saved the most, and per node the edges whose heaviest op saves the most: every edge for GDAS
(all edges run), the node's ``in_degree`` edges for ROME (the kept edges). ``forced_sample`` builds an
``ArchSample`` whose Gumbel noise makes exactly that choice, so the bound runs through the same step,
relaxation and graph as an ordinary draw. The mixed-op methods (DARTS, PC-DARTS) have one case only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from rome.search.algorithms import AllEdges, ArchSample, EdgeTopK, SearchAlgorithm
from rome.search.sampling import gumbel_noise
from rome.search.supernet import CellPath

# added to the Gumbel noise of the forced entries: more than any Gumbel(0, 1) draw can span in float32 (~17)
FORCE = 100.0

Choice = dict[str, list[tuple[int, int]]]  # cell type -> sorted (edge, op index) pairs


def _cells(model: nn.Module) -> list[nn.Module]:
    return [c for c in model.cells if hasattr(c, "edge_ops")]


def op_costs(model: nn.Module, algorithm: SearchAlgorithm, x: torch.Tensor) -> dict[str, list[list[int]]]:
    """Per cell type, [edge][op] = bytes the op's module saves for backward in one forward, summed over cells.

    A storage saved twice inside one op counts once; one shared with another op (a pooled input state)
    counts for each: the cost of the op as if it ran alone on its edge.
    """
    space = algorithm.space
    costs = {ct: [[0] * space.n_ops(ct) for _ in range(space.n_edges)] for ct in space.cell_types}
    key: list[Any] = [None]
    seen: set[tuple[Any, int]] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        if key[0] is not None:
            storage = t.untyped_storage()
            if (key[0], storage.data_ptr()) not in seen:
                seen.add((key[0], storage.data_ptr()))
                ct, e, o = key[0][1:]
                costs[ct][e][o] += storage.nbytes()
        return t.detach()

    handles = []
    for index, cell in enumerate(_cells(model)):
        for e, ops in enumerate(cell.edge_ops):
            for o, op in enumerate(ops):
                def enter(*_: Any, k=(index, cell.cell_type, e, o)) -> None:
                    key[0] = k

                def leave(*_: Any) -> None:
                    key[0] = None
                handles += [op.register_forward_pre_hook(enter), op.register_forward_hook(leave)]
    try:
        for o in range(max(space.n_ops(ct) for ct in space.cell_types)):
            paths = {ct: CellPath([(e, min(o, space.n_ops(ct) - 1)) for e in range(space.n_edges)], None)
                     for ct in space.cell_types}
            seen.clear()
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                model(x, paths)
    finally:
        for h in handles:
            h.remove()
    return costs


def heaviest_choice(algorithm: SearchAlgorithm, costs: dict[str, list[list[int]]]) -> Choice:
    """Per edge its heaviest op; every edge (AllEdges) or per node the ``in_degree`` heaviest edges (EdgeTopK).

    Ties go to the lower op / edge index (sep_conv_3x3 and _5x5 save the same bytes).
    """
    space, topology = algorithm.space, algorithm.topology
    if type(topology) not in (AllEdges, EdgeTopK):  # not EdgeNormalization (PC-DARTS), not SubsetMax (v1)
        raise ValueError(f"worst case: topology {topology.name!r} is not sampled edge by edge (use rome v2 or gdas)")
    choice: Choice = {}
    for ct in space.cell_types:
        best = [max(range(len(row)), key=lambda o, row=row: (row[o], -o)) for row in costs[ct]]
        if isinstance(topology, EdgeTopK):
            edges = []
            for group, k in zip(topology.groups, topology.k):
                ranked = sorted(group, key=lambda e: (-costs[ct][e][best[e]], e))
                edges += ranked[:k]
        else:
            edges = list(range(space.n_edges))
        choice[ct] = sorted((e, best[e]) for e in edges)
    return choice


def forced_sample(algorithm: SearchAlgorithm, choice: Choice, generator: torch.Generator, tau: float) -> ArchSample:
    """An ordinary draw plus ``FORCE`` on the chosen ops and edges; checked to give exactly ``choice``."""
    op_noise, topo_noise = {}, {}
    for ct in algorithm.space.cell_types:
        noise = gumbel_noise(tuple(algorithm.arch.alpha[ct].shape), generator)
        for e, o in choice[ct]:
            noise[e, o] += FORCE
        op_noise[ct] = noise
        n = algorithm.topology.n_params
        topo = gumbel_noise((n,), generator) if n else None
        if topo is not None:
            for e, _ in choice[ct]:
                topo[e] += FORCE
        topo_noise[ct] = topo
    sample = ArchSample(op_noise, topo_noise)
    with torch.no_grad():
        got = {ct: sorted(p.pairs) for ct, p in algorithm.paths(sample, tau).items()}
    if got != choice:
        raise AssertionError(f"forced sample drew {got}, expected {choice}")
    return sample


def describe(algorithm: SearchAlgorithm, choice: Choice, costs: dict[str, list[list[int]]]) -> dict[str, Any]:
    """The chosen ops by name, and every op's measured cost (MB, summed over edges), per cell type."""
    space = algorithm.space
    out: dict[str, Any] = {}
    for ct in space.cell_types:
        names = space.ops(ct, 0)
        out[ct] = {"edges": [[e, space.ops(ct, e)[o]] for e, o in choice[ct]],
                   "op_mb_all_edges": {names[o]: round(sum(row[o] for row in costs[ct]) / 2**20, 1)
                                       for o in range(len(names))}}
    return out
