"""``SearchSpace``: one cell search space, fully described by data (edge convention: ``rome.spaces``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rome.errors import RomeError


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
