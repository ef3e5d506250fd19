"""Search spaces as data: which edges a cell has, which ops each edge offers, how many inputs a node keeps.

The supernet, the samplers and the search loop read a ``SearchSpace`` and never branch on its name.
Edge convention: an edge is (src, dst) *state indices* (as ``rome.genotype`` reads them):
  * kind "darts": ``nodes`` intermediate nodes; state 0 = older cell, 1 = previous cell, 2 + m =
    intermediate node m (the genotype's input index); edges in DARTS order (node 0 <- 0, 1; node 1 <-
    0, 1, 2; ...); every node keeps ``in_degree`` = 2 inputs in the derived cell.
  * kind "nb201": ``nodes`` states in all (state 0 is the cell input); edges j -> i, j < i, in
    arch-string order; every edge is kept (in-degree = number of predecessors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rome.errors import RomeError
from rome.spaces.darts import CELL_TYPES, darts_edges, op_table
from rome.spaces.nb201 import NB201_OP_NAMES, nb201_edges

SPACES = ("darts", "s1", "s2", "s3", "s4", "nb201")


@dataclass(frozen=True)
class SearchSpace:
    """One cell search space, fully described by data (see the module docstring for the edge convention)."""

    name: str
    kind: str
    nodes: int
    cell_types: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    op_table: dict[str, tuple[tuple[str, ...], ...]] = field(repr=False)
    dst_nodes: tuple[int, ...]  # state indices of the computed nodes, in order
    in_degree: tuple[int, ...]  # inputs each of them keeps in a derived cell

    def __post_init__(self) -> None:
        for ct in self.cell_types:
            table = self.op_table[ct]
            if len(table) != len(self.edges):
                raise ValueError(f"{self.name}: {len(table)} op lists for {len(self.edges)} edges ({ct})")
            if len({len(ops) for ops in table}) != 1:
                # alpha is an (edges x ops) tensor per cell type; ops are still indexed per edge
                raise ValueError(f"{self.name}: every edge of a {ct} cell needs the same number of ops")

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def n_inputs(self) -> int:
        """Cell inputs that are not computed inside the cell (2 for DARTS cells, 1 for NB201)."""
        return 2 if self.kind == "darts" else 1

    @property
    def selects_topology(self) -> bool:
        """Whether derived cells keep fewer inputs than the supernet offers (ROME's topology sampling applies)."""
        return any(len(self.incoming(d)) > k for d, k in zip(self.dst_nodes, self.in_degree))

    def n_ops(self, cell_type: str) -> int:
        return len(self.op_table[cell_type][0])

    def ops(self, cell_type: str, edge: int) -> list[str]:
        """Candidate op names of one edge (S1 differs per edge: never index through a global list)."""
        if cell_type not in self.cell_types:
            raise RomeError(f"cell type {cell_type!r}: space {self.name!r} has {list(self.cell_types)}")
        return list(self.op_table[cell_type][edge])

    def incoming(self, dst: int) -> tuple[int, ...]:
        """Edge indices that end in node ``dst``, in edge order."""
        return tuple(e for e, (_, d) in enumerate(self.edges) if d == dst)

    def to_json(self) -> dict[str, Any]:
        """The description written into search.json (what derive and evaluate need to read alpha/beta)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "nodes": self.nodes,
            "cell_types": list(self.cell_types),
            "edges": [list(e) for e in self.edges],
            "ops": {ct: [list(ops) for ops in self.op_table[ct]] for ct in self.cell_types},
            "dst_nodes": list(self.dst_nodes),
            "in_degree": list(self.in_degree),
        }


def get_space(name: str, nodes: int = 4) -> SearchSpace:
    """The space named by ``search.space``, sized by ``search.nodes``.

    ``nodes`` counts intermediate nodes for DARTS-style spaces (4 in the papers) and all nodes for
    NAS-Bench-201 (4 in the benchmark), so the default 4 is the published cell in both cases.
    """
    if name not in SPACES:
        raise RomeError(f"search.space = {name!r}: unknown search space; expected one of {list(SPACES)}")
    if name == "nb201":
        if nodes < 2:
            raise RomeError(f"search.nodes = {nodes}: nb201 needs at least 2 nodes")
        edges = nb201_edges(nodes)
        dst = tuple(range(1, nodes))
        return SearchSpace(name, "nb201", nodes, ("normal",), edges,
                           {"normal": tuple(NB201_OP_NAMES for _ in edges)}, dst, tuple(dst))  # state i has i inputs
    if nodes < 1:
        raise RomeError(f"search.nodes = {nodes}: expected >= 1")
    edges = darts_edges(nodes)
    return SearchSpace(name, "darts", nodes, CELL_TYPES, edges, op_table(name, nodes),
                       tuple(range(2, 2 + nodes)), tuple(2 for _ in range(nodes)))


__all__ = ["SPACES", "SearchSpace", "get_space"]
