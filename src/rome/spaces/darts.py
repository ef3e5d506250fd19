"""DARTS-style cell spaces as data: S0 (the DARTS space as ROME searches it) and R-DARTS S1-S4.

A table maps each (cell type, edge) to its candidate op names; nothing else differs between
these spaces, so the supernet never branches on the space name. Each is registered here.
"""

from __future__ import annotations

import functools

from rome.errors import RomeError
from rome.spaces.registry import SpaceSpec, register_space
from rome.spaces.space import SearchSpace

CELL_TYPES = ("normal", "reduce")

DARTS_OPS: tuple[str, ...] = (
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
"""S0: the 7 DARTS ops without 'none', as ROME uses them (rome-method.md section 6)."""

S1_NORMAL: tuple[tuple[str, str], ...] = (
    ("skip_connect", "dil_conv_3x3"), ("skip_connect", "dil_conv_5x5"), ("skip_connect", "dil_conv_5x5"),
    ("skip_connect", "sep_conv_3x3"), ("skip_connect", "dil_conv_3x3"), ("max_pool_3x3", "skip_connect"),
    ("skip_connect", "sep_conv_3x3"), ("skip_connect", "sep_conv_3x3"), ("skip_connect", "dil_conv_3x3"),
    ("skip_connect", "sep_conv_3x3"), ("max_pool_3x3", "skip_connect"), ("skip_connect", "dil_conv_3x3"),
    ("dil_conv_3x3", "dil_conv_5x5"), ("dil_conv_3x3", "dil_conv_5x5"),
)
S1_REDUCE: tuple[tuple[str, str], ...] = (
    ("max_pool_3x3", "avg_pool_3x3"), ("max_pool_3x3", "dil_conv_3x3"), ("max_pool_3x3", "avg_pool_3x3"),
    ("max_pool_3x3", "avg_pool_3x3"), ("skip_connect", "dil_conv_5x5"), ("max_pool_3x3", "avg_pool_3x3"),
    ("max_pool_3x3", "sep_conv_3x3"), ("skip_connect", "dil_conv_3x3"), ("skip_connect", "dil_conv_5x5"),
    ("max_pool_3x3", "avg_pool_3x3"), ("max_pool_3x3", "avg_pool_3x3"), ("skip_connect", "dil_conv_5x5"),
    ("skip_connect", "dil_conv_5x5"), ("skip_connect", "dil_conv_5x5"),
)
"""R-DARTS S1 (Zela et al. 2020): a different 2-op set per edge, found by them from DARTS runs."""

UNIFORM_OPS: dict[str, tuple[str, ...]] = {
    "darts": DARTS_OPS,
    "s2": ("skip_connect", "sep_conv_3x3"),
    "s3": ("none", "skip_connect", "sep_conv_3x3"),
    "s4": ("noise", "sep_conv_3x3"),
}


def darts_edges(nodes: int) -> tuple[tuple[int, int], ...]:
    """(src, dst) state indices in DARTS order: intermediate node m is state 2 + m and reads states 0 .. 1 + m."""
    return tuple((src, m + 2) for m in range(nodes) for src in range(m + 2))


def op_table(name: str, nodes: int) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Per cell type, the candidate ops of every edge."""
    n_edges = len(darts_edges(nodes))
    if name == "s1":
        if nodes != 4:
            raise RomeError(f"search.nodes = {nodes}: space 's1' is defined for 4 intermediate nodes (14 edges) only")
        return {"normal": S1_NORMAL, "reduce": S1_REDUCE}
    if name in UNIFORM_OPS:
        ops = UNIFORM_OPS[name]
        return {ct: tuple(ops for _ in range(n_edges)) for ct in CELL_TYPES}
    raise RomeError(f"search.space = {name!r}: not a DARTS-style space; expected one of {['s1', *UNIFORM_OPS]}")


def build_darts_space(name: str, nodes: int) -> SearchSpace:
    """A DARTS-style space of ``nodes`` intermediate nodes; every node keeps 2 inputs in the derived cell."""
    if nodes < 1:
        raise RomeError(f"search.nodes = {nodes}: expected >= 1")
    edges = darts_edges(nodes)
    return SearchSpace(name, "darts", nodes, CELL_TYPES, edges, op_table(name, nodes),
                       tuple(range(2, 2 + nodes)), tuple(2 for _ in range(nodes)))


def _register(name: str) -> SpaceSpec:
    return register_space(SpaceSpec(name, "darts", CELL_TYPES, functools.partial(build_darts_space, name)))


_register("darts")  # S0
_register("s1")
_register("s2")
_register("s3")
_register("s4")
