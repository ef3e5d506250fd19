"""NAS-Bench-201 cell space as data: every edge j -> i (j < i) of a DAG of ``nodes`` nodes is kept."""

from __future__ import annotations

NB201_OP_NAMES: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def nb201_edges(nodes: int) -> tuple[tuple[int, int], ...]:
    """(src node, dst node) in arch-string order: node1 <- 0; node2 <- 0, 1; node3 <- 0, 1, 2."""
    return tuple((j, i) for i in range(1, nodes) for j in range(i))

