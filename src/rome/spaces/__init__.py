"""Search spaces as data: which edges a cell has, which ops each edge offers, how many inputs a node keeps.

The supernet, the samplers and the search loop read a ``SearchSpace`` and never branch on its name.
Each space is a registry entry (``rome.spaces.registry``) made by the module that defines it
(``darts``: S0 and R-DARTS S1-S4; ``nb201``). Edge convention: an edge is (src, dst) *state
indices* (as ``rome.genotype`` reads them):
  * kind "darts": ``nodes`` intermediate nodes; state 0 = older cell, 1 = previous cell, 2 + m =
    intermediate node m (the genotype's input index); edges in DARTS order (node 0 <- 0, 1; node 1 <-
    0, 1, 2; ...); every node keeps ``in_degree`` = 2 inputs in the derived cell.
  * kind "nb201": ``nodes`` states in all (state 0 is the cell input); edges j -> i, j < i, in
    arch-string order; every edge is kept (in-degree = number of predecessors).
"""

from __future__ import annotations

# each module registers its spaces; this order is the order of space_names() and of the schema enum
from rome.spaces import darts  # noqa: F401  isort: skip
from rome.spaces import nb201  # noqa: F401  isort: skip
from rome.spaces.registry import SpaceSpec, find_space, get_space_spec, register_space, space_names
from rome.spaces.space import SearchSpace

SPACES = space_names()


def get_space(name: str, nodes: int = 4) -> SearchSpace:
    """The space named by ``search.space``, sized by ``search.nodes``.

    ``nodes`` counts intermediate nodes for DARTS-style spaces (4 in the papers) and all nodes for
    NAS-Bench-201 (4 in the benchmark), so the default 4 is the published cell in both cases.
    """
    return get_space_spec(name).build(nodes)


__all__ = ["SPACES", "SearchSpace", "SpaceSpec", "find_space", "get_space", "get_space_spec", "register_space",
           "space_names"]
