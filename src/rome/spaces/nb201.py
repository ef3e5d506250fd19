"""NAS-Bench-201 cell space as data: every edge j -> i (j < i) of a DAG of ``nodes`` nodes is kept."""

from __future__ import annotations

from rome.errors import RomeError
from rome.spaces.registry import SpaceSpec, register_space
from rome.spaces.space import SearchSpace

NB201_OP_NAMES: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def nb201_edges(nodes: int) -> tuple[tuple[int, int], ...]:
    """(src node, dst node) in arch-string order: node1 <- 0; node2 <- 0, 1; node3 <- 0, 1, 2."""
    return tuple((j, i) for i in range(1, nodes) for j in range(i))


def build_nb201_space(nodes: int) -> SearchSpace:
    """``nodes`` states in all; state i keeps all its i inputs (NB201 derives every edge)."""
    if nodes < 2:
        raise RomeError(f"search.nodes = {nodes}: nb201 needs at least 2 nodes")
    edges = nb201_edges(nodes)
    dst = tuple(range(1, nodes))
    return SearchSpace("nb201", "nb201", nodes, ("normal",), edges,
                       {"normal": tuple(NB201_OP_NAMES for _ in edges)}, dst, tuple(dst))


register_space(SpaceSpec("nb201", "nb201", ("normal",), build_nb201_space, rule="nb201"))
