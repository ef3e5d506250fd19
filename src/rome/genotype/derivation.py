"""Derivation: from the searched alpha (and beta) of one cell type to the kept ``(op, input)`` entries per node.

Rules (``derive_cell``), chosen by what the search stored (``derivation_rule``):
  * ``rome``: per node the k incoming edges with the largest beta (v2), or the pair of inputs with
    the largest beta (v1); on each kept edge the op with the largest alpha, never ``none``.
  * ``darts``: DARTS's rule: edge strength = largest non-``none`` softmax(alpha) weight; the k
    strongest edges per node; on each the non-``none`` argmax.
  * ``gdas``: GDAS's released rule: the k best (op, input) pairs of a node over all non-``none``
    ops of all its edges, so two entries may share an input (the behaviour ROME's rule excludes).
  * ``nb201``: per-edge argmax over *all* ops. ``none`` stays allowed there (choice): in
    NAS-Bench-201 ``none`` is a real op of the benchmark (it removes an edge; 15,625 cells
    include it) and the NB201 reference searches (DARTS, GDAS in AutoDL-Projects) keep it.
Ties (paper silent; choice): the lowest index wins, for edges (edge order of the search) and ops
(op order of the edge). Entries of a node are listed strongest first, as DARTS's ``parse`` does.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rome.errors import RomeError
from rome.genotype.types import DARTS_INPUTS, ENTRIES_PER_NODE, NONE_OP, Entry, Genotype, NB201Genotype


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def _ranked(values: Sequence[float]) -> list[int]:
    """Indices by value, largest first; ties keep the lower index first (stable sort)."""
    return [int(i) for i in np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")]


def best_op(weights: Sequence[float], ops: Sequence[str], allow_none: bool, where: str = "edge") -> int:
    """Index of the largest weight (lowest index on ties), skipping ``none`` unless allowed."""
    for i in _ranked(weights):
        if allow_none or ops[i] != NONE_OP:
            return i
    raise RomeError(f"{where}: ops = {list(ops)}: no candidate other than 'none' to derive")


@dataclass(frozen=True)
class CellSearchSpace:
    """One cell type as the search describes it: per-edge op lists and (src, dst) state indices."""

    ops: tuple[tuple[str, ...], ...]
    edges: tuple[tuple[int, int], ...]

    def nodes(self) -> list[int]:
        """Destination state indices in order of first appearance."""
        return list(dict.fromkeys(dst for _, dst in self.edges))

    def incoming(self, dst: int) -> list[int]:
        return [e for e, (_, d) in enumerate(self.edges) if d == dst]

    def pairs(self, k: Sequence[int] | None = None) -> list[tuple[int, ...]]:
        """ROME-v1 beta order (unless search.json lists ``pairs``): node by node, the k-subsets ("pairs"
        for k = 2) of its incoming edges in ``itertools.combinations`` order, as (src_a, src_b, ..., dst)."""
        k = [ENTRIES_PER_NODE] * len(self.nodes()) if k is None else list(k)
        return [(*(self.edges[e][0] for e in sub), dst)
                for dst, kn in zip(self.nodes(), k) for sub in itertools.combinations(self.incoming(dst), kn)]


def _alpha_row(alpha: np.ndarray, e: int, ops: Sequence[str], where: str) -> np.ndarray:
    """Alpha of edge e over its own op list; extra columns (padding of ragged op lists) are ignored."""
    if alpha.shape[1] < len(ops):
        raise RomeError(f"{where}: alpha has {alpha.shape[1]} columns but edge {e} has {len(ops)} ops {list(ops)}")
    return alpha[e, :len(ops)]


def derive_cell(space: CellSearchSpace, alpha: np.ndarray, rule: str, k: Sequence[int] | None = None,
                beta: np.ndarray | None = None, pairs: Sequence[tuple[int, ...]] | None = None,
                where: str = "cell") -> list[list[Entry]]:
    """Per intermediate node, the kept ``(op, src)`` entries, strongest first.

    ``rule`` is ``rome`` (with ``beta`` per edge, or per input subset ``(src_a, src_b, ..., dst)`` when
    ``pairs`` is given: ROME-v1), ``darts``,
    ``gdas`` or ``nb201`` (module docstring). ``k[n]`` = inputs kept by node n (ignored by nb201).
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim != 2 or alpha.shape[0] != len(space.edges):
        raise RomeError(f"{where}: alpha has shape {list(alpha.shape)}: expected [{len(space.edges)} edges, n_ops]")
    probs = [softmax(_alpha_row(alpha, e, ops, where)) for e, ops in enumerate(space.ops)]
    nodes = space.nodes()
    if rule != "nb201":
        if k is None or len(k) != len(nodes):
            raise RomeError(f"{where}: in_degree = {None if k is None else list(k)}: expected one entry per node "
                            f"({len(nodes)} nodes)")
        for n, dst in enumerate(nodes):
            if not 1 <= k[n] <= len(space.incoming(dst)):
                raise RomeError(f"{where}: in_degree[{n}] = {k[n]}: expected 1..{len(space.incoming(dst))} "
                                f"(the node's incoming edges)")
    if rule in ("rome",) and beta is None:
        raise RomeError(f"{where}: rule 'rome' needs beta")
    cells: list[list[Entry]] = []
    for n, dst in enumerate(nodes):
        inc = space.incoming(dst)
        if rule == "nb201":
            kept = inc
        elif rule == "rome" and pairs is not None:
            node_pairs = [p for p, sub in enumerate(pairs) if sub[-1] == dst]
            if not node_pairs:
                raise RomeError(f"{where}: pairs list no input subset for node {dst}")
            *srcs, _ = pairs[node_pairs[_ranked([beta[p] for p in node_pairs])[0]]]
            by_src = {space.edges[e][0]: e for e in inc}
            if any(src not in by_src for src in srcs):
                raise RomeError(f"{where}: pair {list(pairs[node_pairs[0]])} names an input without an edge to {dst}")
            kept = [by_src[src] for src in srcs]
        elif rule == "rome":
            kept = [inc[i] for i in _ranked([beta[e] for e in inc])[:k[n]]]
        elif rule == "darts":
            strength = [max((p for p, op in zip(probs[e], space.ops[e]) if op != NONE_OP), default=-1.0) for e in inc]
            kept = [inc[i] for i in _ranked(strength)[:k[n]]]
        elif rule == "gdas":
            cands = [(float(p), e, o) for e in inc for o, (p, op) in enumerate(zip(probs[e], space.ops[e]))
                     if op != NONE_OP]
            top = [cands[i] for i in _ranked([c[0] for c in cands])[:k[n]]]
            cells.append([(space.ops[e][o], space.edges[e][0]) for _, e, o in top])
            continue
        else:
            raise ValueError(f"unknown derivation rule {rule!r}")
        allow_none = rule == "nb201"
        cells.append([(space.ops[e][best_op(probs[e], space.ops[e], allow_none, f"{where} edge {e}")], space.edges[e][0])
                      for e in kept])
    return cells


def derivation_rule(algorithm: str, space: str, has_beta: bool) -> str:
    """Which rule fits what the search learned (module docstring)."""
    if space == "nb201":
        return "nb201"
    if has_beta:
        return "rome"
    # Without beta: GDAS keeps its own rule; ROME without topology disentanglement samples like GDAS,
    # so it is derived like GDAS too (choice); DARTS and random search use the DARTS rule.
    return "gdas" if algorithm in ("gdas", "rome") else "darts"


def cells_to_genotype(normal: list[list[Entry]], reduce: list[list[Entry]], source: str = "derived") -> Genotype:
    """Flatten per-node entries into the DARTS format; the output concatenates every intermediate node."""
    for kind, cell in (("normal", normal), ("reduce", reduce)):
        for n, entries in enumerate(cell):
            if len(entries) != ENTRIES_PER_NODE:
                raise RomeError(f"{source}: {kind} node {n} keeps {len(entries)} inputs: the DARTS genotype format "
                                f"needs exactly {ENTRIES_PER_NODE} (in_degree)")
    return Genotype(normal=[e for node in normal for e in node],
                    normal_concat=range(DARTS_INPUTS, DARTS_INPUTS + len(normal)),
                    reduce=[e for node in reduce for e in node],
                    reduce_concat=range(DARTS_INPUTS, DARTS_INPUTS + len(reduce))).validate(source)


def cells_to_nb201(cell: list[list[Entry]], source: str = "derived") -> NB201Genotype:
    return NB201Genotype(tuple(tuple(node) for node in cell)).validate(source)
