"""Derivation: from the searched alpha (and beta) of one cell type to the kept ``(op, input)`` entries per node.

Rules are registered per name (``register_rule``); ``derivation_rule`` picks one from what the search
stored and from the space and algorithm registries:
  * ``rome``: per node the k incoming edges with the largest beta (v2), or the pair of inputs with
    the largest beta (v1); on each kept edge the op with the largest alpha, never ``none``.
  * ``darts``: DARTS's rule: edge strength = largest non-``none`` softmax(alpha) weight; the k
    strongest edges per node; on each the non-``none`` argmax.
  * ``pc_darts``: PC-DARTS's released rule (``genotype()`` of its ``model_search.py``): each edge's
    softmax(alpha) is multiplied by its beta normalised by a softmax over the node's incoming edges;
    edge strength = the largest non-``none`` product, the k strongest edges per node, on each the
    non-``none`` argmax (the same op as without beta: the factor is positive).
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rome.algorithms import find_algorithm
from rome.errors import RomeError
from rome.genotype.types import DARTS_INPUTS, ENTRIES_PER_NODE, NONE_OP, Entry, Genotype, NB201Genotype
from rome.spaces import find_space

BETA_RULE = "rome"  # what a stored beta is derived with, whichever algorithm learned (or drew) it


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


@dataclass(frozen=True)
class CellEvidence:
    """What a derivation rule reads of one cell: its space, softmax(alpha) per edge, k, beta, v1 pairs."""

    space: CellSearchSpace
    probs: list[np.ndarray]
    k: Sequence[int] | None
    beta: np.ndarray | None
    pairs: Sequence[tuple[int, ...]] | None
    where: str

    def best_ops(self, kept: Sequence[int], allow_none: bool = False) -> list[Entry]:
        """On each kept edge, the op with the largest alpha (``none`` only when allowed)."""
        return [(self.space.ops[e][best_op(self.probs[e], self.space.ops[e], allow_none, f"{self.where} edge {e}")],
                 self.space.edges[e][0]) for e in kept]


NodeRule = Callable[[CellEvidence, int, int], list[Entry]]


@dataclass(frozen=True)
class DerivationRule:
    """A rule: per node (index n, state dst) its kept entries; whether it keeps k inputs and reads beta."""

    name: str
    node: NodeRule
    uses_in_degree: bool = True
    needs_beta: bool = False


RULES: dict[str, DerivationRule] = {}


def register_rule(name: str, *, uses_in_degree: bool = True, needs_beta: bool = False) -> Callable[[NodeRule], NodeRule]:
    """Register a per-node rule under ``name`` (the value ``derivation_rule`` returns)."""
    def register(fn: NodeRule) -> NodeRule:
        RULES[name] = DerivationRule(name, fn, uses_in_degree, needs_beta)
        return fn
    return register


@register_rule("nb201", uses_in_degree=False)
def _every_edge(ev: CellEvidence, n: int, dst: int) -> list[Entry]:
    return ev.best_ops(ev.space.incoming(dst), allow_none=True)


@register_rule(BETA_RULE, needs_beta=True)
def _largest_beta(ev: CellEvidence, n: int, dst: int) -> list[Entry]:
    assert ev.beta is not None and ev.k is not None
    inc = ev.space.incoming(dst)
    if ev.pairs is None:  # v2: one beta per edge, the k largest
        return ev.best_ops([inc[i] for i in _ranked([ev.beta[e] for e in inc])[:ev.k[n]]])
    node_pairs = [p for p, sub in enumerate(ev.pairs) if sub[-1] == dst]  # v1: the best input subset
    if not node_pairs:
        raise RomeError(f"{ev.where}: pairs list no input subset for node {dst}")
    *srcs, _ = ev.pairs[node_pairs[_ranked([ev.beta[p] for p in node_pairs])[0]]]
    by_src = {ev.space.edges[e][0]: e for e in inc}
    if any(src not in by_src for src in srcs):
        raise RomeError(f"{ev.where}: pair {list(ev.pairs[node_pairs[0]])} names an input without an edge to {dst}")
    return ev.best_ops([by_src[src] for src in srcs])


@register_rule("darts")
def _strongest_edges(ev: CellEvidence, n: int, dst: int) -> list[Entry]:
    assert ev.k is not None
    inc = ev.space.incoming(dst)
    strength = [max((p for p, op in zip(ev.probs[e], ev.space.ops[e]) if op != NONE_OP), default=-1.0) for e in inc]
    return ev.best_ops([inc[i] for i in _ranked(strength)[:ev.k[n]]])


@register_rule("pc_darts", needs_beta=True)
def _strongest_normalised_edges(ev: CellEvidence, n: int, dst: int) -> list[Entry]:
    assert ev.k is not None and ev.beta is not None
    inc = ev.space.incoming(dst)
    edge_w = softmax(np.asarray([ev.beta[e] for e in inc]))
    strength = [max((p * w for p, op in zip(ev.probs[e], ev.space.ops[e]) if op != NONE_OP), default=-1.0)
                for e, w in zip(inc, edge_w)]
    return ev.best_ops([inc[i] for i in _ranked(strength)[:ev.k[n]]])


@register_rule("gdas")
def _best_op_input_pairs(ev: CellEvidence, n: int, dst: int) -> list[Entry]:
    assert ev.k is not None
    cands = [(float(p), e, o) for e in ev.space.incoming(dst) for o, (p, op) in enumerate(zip(ev.probs[e], ev.space.ops[e]))
             if op != NONE_OP]
    top = [cands[i] for i in _ranked([c[0] for c in cands])[:ev.k[n]]]
    return [(ev.space.ops[e][o], ev.space.edges[e][0]) for _, e, o in top]


def derive_cell(space: CellSearchSpace, alpha: np.ndarray, rule: str, k: Sequence[int] | None = None,
                beta: np.ndarray | None = None, pairs: Sequence[tuple[int, ...]] | None = None,
                where: str = "cell") -> list[list[Entry]]:
    """Per intermediate node, the kept ``(op, src)`` entries, strongest first.

    ``rule`` names a registered rule (module docstring): ``rome`` (with ``beta`` per edge, or per
    input subset ``(src_a, src_b, ..., dst)`` when ``pairs`` is given: ROME-v1), ``darts``, ``gdas``
    or ``nb201``. ``k[n]`` = inputs kept by node n (ignored by nb201).
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim != 2 or alpha.shape[0] != len(space.edges):
        raise RomeError(f"{where}: alpha has shape {list(alpha.shape)}: expected [{len(space.edges)} edges, n_ops]")
    if rule not in RULES:
        raise ValueError(f"unknown derivation rule {rule!r}")
    spec = RULES[rule]
    probs = [softmax(_alpha_row(alpha, e, ops, where)) for e, ops in enumerate(space.ops)]
    nodes = space.nodes()
    if spec.uses_in_degree:
        if k is None or len(k) != len(nodes):
            raise RomeError(f"{where}: in_degree = {None if k is None else list(k)}: expected one entry per node "
                            f"({len(nodes)} nodes)")
        for n, dst in enumerate(nodes):
            if not 1 <= k[n] <= len(space.incoming(dst)):
                raise RomeError(f"{where}: in_degree[{n}] = {k[n]}: expected 1..{len(space.incoming(dst))} "
                                f"(the node's incoming edges)")
    if spec.needs_beta and beta is None:
        raise RomeError(f"{where}: rule {rule!r} needs beta")
    evidence = CellEvidence(space, probs, k, beta, pairs, where)
    return [spec.node(evidence, n, dst) for n, dst in enumerate(nodes)]


def derivation_rule(algorithm: str, space: str, has_beta: bool) -> str:
    """Which rule fits what the search learned: the space's own rule (NB201 keeps every edge), else the
    algorithm's registered rule when it reads beta and beta was stored (pc_darts), else top-beta when beta
    was stored, else the algorithm's registered rule (DARTS's for an unknown one, or for a beta rule
    without beta)."""
    space_spec = find_space(space)
    if space_spec is not None and space_spec.rule is not None:
        return space_spec.rule
    algorithm_spec = find_algorithm(algorithm)
    if has_beta:
        own = algorithm_spec.rule if algorithm_spec is not None else None
        return own if own is not None and RULES[own].needs_beta else BETA_RULE
    if algorithm_spec is None or RULES[algorithm_spec.rule].needs_beta:
        return "darts"  # a beta rule without beta: DARTS's, which it reduces to when every beta is equal
    return algorithm_spec.rule


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
