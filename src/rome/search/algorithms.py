"""How a search algorithm samples, and which architecture parameters it learns.

An algorithm (a registry entry of ``rome.algorithms``) is composed of two choices, so the supernet
and the loop never branch on its name:
  * the op choice on an edge: Gumbel-max over alpha (rome, gdas), uniform (random), or the
    weighted mixed op over all ops (darts);
  * the topology: Gumbel-Top-k over the incoming edges of each node with one beta per edge
    (rome v2), Gumbel-max over the k-subsets of incoming edges with one beta per subset (rome v1,
    the "pair" variant for k = 2), uniform k edges (random), or every edge (gdas, darts, rome with
    ``search.topology: false``, and NAS-Bench-201, whose cells keep all edges).

Hence on NAS-Bench-201 ``rome`` = GDAS op sampling + K-sample accumulation, and ``rome`` with
K = 1 and topology false *is* GDAS (same draws from the same generator: tested).

``random`` (baseline): the supernet is trained on uniformly sampled sub-networks of the final
space (k inputs per node, one op per edge) and no architecture parameter is ever learned; its
alpha/beta are standard-normal logits drawn from the seed, so deriving them (argmax) yields a
uniformly random architecture of the space.

``pc_darts`` (baseline): DARTS's mixed op on 1/K of each edge's channels (the rest bypass it,
channel shuffle), every edge scaled by softmax(beta) over its node's incoming edges (edge
normalisation, ``EdgeNormalization``); the supernet is built with ops of C/K channels
(``self.partial``).

``gdas``, ``darts`` and ``pc_darts`` always use K = 1 (their definition); ``random`` uses K for the weight step,
so it gets the same weight-training budget as ``rome``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from rome.algorithms import get_algorithm
from rome.errors import RomeError
from rome.genotype.derivation import CellSearchSpace, derivation_rule, derive_cell
from rome.search.modes import resolve_behaviour
from rome.search.sampling import gumbel_max, gumbel_noise, gumbel_topk, unselected_weight_sum
from rome.search.supernet import CellPath
from rome.sections import SearchConfig
from rome.spaces import SearchSpace

VARIANTS = ("v1", "v2")


# ----------------------------------------------------------------------------- topologies


class AllEdges:
    """Every edge is executed (no beta)."""

    name = "all"
    n_params = 0

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def relax(self, beta: torch.Tensor | None, noise: torch.Tensor | None, tau: float) -> tuple[list[int], torch.Tensor | None]:
        return list(range(self.space.n_edges)), None

    def labels(self) -> list[str]:
        return []

    def probabilities(self, beta: torch.Tensor | None) -> list[float]:
        return []


class EdgeTopK:
    """ROME-v2: one beta per edge; per node, Gumbel-Top-k (k = in-degree) over softmax(beta of its incoming edges)."""

    name = "edge_topk"

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.groups = [space.incoming(d) for d in space.dst_nodes]
        self.k = list(space.in_degree)
        self.n_params = space.n_edges

    def relax(self, beta: torch.Tensor, noise: torch.Tensor, tau: float) -> tuple[list[int], torch.Tensor]:
        masks, weights = [], []
        for group, k in zip(self.groups, self.k):
            # stacked selects, not fancy indexing: their backward stays deterministic on CUDA
            mask, w = gumbel_topk(torch.stack([beta[e] for e in group]), noise[list(group)], k, tau)
            masks.append(mask)
            weights.append(w)
        chosen = torch.cat(masks).tolist()  # one device sync per cell type
        flat_w = torch.cat(weights)
        order = [e for group in self.groups for e in group]
        picked = [i for i, c in enumerate(chosen) if c]
        return [order[i] for i in picked], torch.stack([flat_w[i] for i in picked])

    def labels(self) -> list[str]:
        return [str(e) for e in range(self.space.n_edges)]

    def probabilities(self, beta: torch.Tensor) -> list[float]:
        """softmax(beta) within each node's incoming edges, aligned with the edges."""
        p = torch.zeros(self.space.n_edges)
        for group in self.groups:
            p[list(group)] = F.softmax(beta.detach().float().cpu()[list(group)], dim=0)
        return p.tolist()


class SubsetMax:
    """ROME-v1: one beta per k-subset ("pair" for k = 2) of a node's incoming edges; Gumbel-max over subsets."""

    name = "subset_max"

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.subsets: list[list[tuple[int, ...]]] = []
        self.slices: list[slice] = []
        start = 0
        for dst, k in zip(space.dst_nodes, space.in_degree):
            group = space.incoming(dst)
            subs = list(itertools.combinations(group, k)) if len(group) > k else [tuple(group)]
            self.subsets.append(subs)
            self.slices.append(slice(start, start + len(subs)))
            start += len(subs)
        self.n_params = start

    def relax(self, beta: torch.Tensor, noise: torch.Tensor, tau: float) -> tuple[list[int], torch.Tensor]:
        active: list[int] = []
        weights: list[torch.Tensor] = []
        for subs, sl in zip(self.subsets, self.slices):
            index, w = gumbel_max(beta[sl], noise[sl], tau)
            for edge in subs[int(index)]:
                active.append(edge)
                weights.append(w)
        return active, torch.stack(weights)

    def labels(self) -> list[str]:
        return ["+".join(map(str, s)) for subs in self.subsets for s in subs]

    def pairs(self) -> list[tuple[int, ...]]:
        """Per beta entry (src_a, src_b, ..., dst) state indices: the ``pairs`` of search.json."""
        return [(*(self.space.edges[e][0] for e in sub), self.space.edges[sub[0]][1])
                for subs in self.subsets for sub in subs]

    def probabilities(self, beta: torch.Tensor) -> list[float]:
        b = beta.detach().float().cpu()
        return torch.cat([F.softmax(b[sl], dim=0) for sl in self.slices]).tolist()


class EdgeNormalization(EdgeTopK):
    """PC-DARTS: every edge runs, weighted by softmax(beta) over its node's incoming edges (one beta per edge).

    As PC-DARTS's ``model_search.py`` (``weights2``): the softmax is taken per node, and the weight
    multiplies the edge's whole mixed output, bypass channels included. No noise, no sampling.
    """

    name = "edge_normalization"

    def relax(self, beta: torch.Tensor, noise: torch.Tensor | None, tau: float) -> tuple[list[int], torch.Tensor]:
        per_edge: list[torch.Tensor] = [beta[0]] * self.space.n_edges
        for group in self.groups:
            # stacked selects, not fancy indexing: their backward stays deterministic on CUDA
            w = F.softmax(torch.stack([beta[e] for e in group]), dim=0)
            for i, e in enumerate(group):
                per_edge[e] = w[i]
        return list(range(self.space.n_edges)), torch.stack(per_edge)


Topology = AllEdges | EdgeTopK | SubsetMax | EdgeNormalization


# ----------------------------------------------------------------------------- parameters and samples


class ArchParameters(nn.Module):
    """alpha per cell type (edges x ops) and, when the topology has parameters, beta per cell type."""

    def __init__(self, space: SearchSpace, n_beta: int, std: float, generator: torch.Generator) -> None:
        super().__init__()
        self.alpha = nn.ParameterDict({
            ct: nn.Parameter(std * torch.randn(space.n_edges, space.n_ops(ct), generator=generator)) for ct in space.cell_types})
        self.beta = nn.ParameterDict({
            ct: nn.Parameter(std * torch.randn(n_beta, generator=generator)) for ct in space.cell_types} if n_beta else {})

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """``alpha_normal``, ``alpha_reduce``, ``beta_normal``, ... (the names in arch.safetensors)."""
        out = {f"alpha_{ct}": p.detach().cpu().contiguous() for ct, p in self.alpha.items()}
        out.update({f"beta_{ct}": p.detach().cpu().contiguous() for ct, p in self.beta.items()})
        return out


@dataclass
class ArchSample:
    """All the randomness of one sub-network draw, per cell type (replayable: see sampling.py)."""

    op_noise: dict[str, torch.Tensor]
    topology_noise: dict[str, torch.Tensor | None]


FlatGenotype = dict[str, list[tuple[str, int]]]


class SearchAlgorithm:
    """A registered algorithm (``rome.algorithms``) on one space: its architecture parameters and how it
    turns them into paths. Everything algorithm-specific comes from its ``AlgorithmSpec``."""

    def __init__(self, name: str, space: SearchSpace, *, variant: str = "v2", topology: bool = True,
                 k_samples: int = 1, init_std: float = 1e-3, generator: torch.Generator | None = None,
                 partial_channels: int = 4, unselected_weights: bool = False) -> None:
        spec = get_algorithm(name)
        if variant not in VARIANTS:
            raise RomeError(f"search.rome_variant = {variant!r}: expected one of {list(VARIANTS)}")
        if k_samples < 1:
            raise RomeError(f"search.k_samples = {k_samples}: expected >= 1")
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.name, self.space, self.spec = name, space, spec
        learned = spec.topology == "learned"
        samples_topology = space.selects_topology and (spec.topology == "uniform" or (learned and topology))
        if spec.topology == "normalized":  # every edge, on every space (a node with one input gets weight 1)
            self.topology: Topology = EdgeNormalization(space)
        elif not samples_topology:
            self.topology = AllEdges(space)
        elif learned and variant == "v1":
            self.topology = SubsetMax(space)
        else:
            self.topology = EdgeTopK(space)
        self.variant = variant if learned and samples_topology else None
        self.op_mode = spec.op_mode
        self.partial = partial_channels if spec.partial else 1  # the supernet's K (build_supernet's ``partial``)
        if self.partial < 1:
            raise RomeError(f"search.partial_channels = {partial_channels}: expected >= 1")
        self.learns_arch = spec.learns_arch
        # GDAS reference on NB201: each node also gets the unchosen ops' zero-valued weights (rome.search.modes)
        self.unselected_weights = unselected_weights and spec.op_mode == "gumbel"
        self.k_samples = spec.fixed_k if spec.fixed_k is not None else k_samples
        # random: standard-normal logits, so their argmax is a uniformly random architecture
        std = spec.init_std if spec.init_std is not None else init_std
        self.arch = ArchParameters(space, self.topology.n_params, std, generator)

    # -- sampling ---------------------------------------------------------------------------------

    def draw(self, generator: torch.Generator) -> ArchSample | None:
        """Draw the noise of one sub-network per cell type (``None`` for the deterministic mixed op)."""
        if self.op_mode == "mixed":
            return None
        op_noise, topo_noise = {}, {}
        for ct in self.space.cell_types:
            op_noise[ct] = gumbel_noise(tuple(self.arch.alpha[ct].shape), generator)
            topo_noise[ct] = gumbel_noise((self.topology.n_params,), generator) if self.topology.n_params else None
        return ArchSample(op_noise, topo_noise)

    def paths(self, sample: ArchSample | None, tau: float,
              arch: dict[str, dict[str, torch.Tensor]] | None = None) -> dict[str, CellPath]:
        """The sub-network of ``sample`` at temperature ``tau``, differentiable in alpha and beta.

        random replaces the logits by zeros (uniform choice) and so never produces a gradient.
        ``arch`` ({"alpha": {ct: ...}, "beta": {ct: ...}}) stands in for the parameters: a function of
        explicit tensors is what ``torch.autograd.functional.hessian`` differentiates (rome.search.indicators).
        """
        out = {}
        for ct in self.space.cell_types:
            alpha = self.arch.alpha[ct] if arch is None else arch["alpha"][ct]
            beta = (self.arch.beta[ct] if ct in self.arch.beta else None) if arch is None else arch["beta"].get(ct)
            if not self.learns_arch:
                alpha = torch.zeros_like(alpha).detach()
                beta = torch.zeros_like(beta).detach() if beta is not None else None
            if self.op_mode == "mixed":
                weights = F.softmax(alpha, dim=-1)
                pairs = [(e, o) for e in range(weights.shape[0]) for o in range(weights.shape[1])]
                # AllEdges: no edge weights; EdgeNormalization: softmax(beta) per node, scaling whole edges
                _, edge_w = self.topology.relax(beta, None, tau)
                out[ct] = CellPath(pairs, weights.flatten(), edge_w)
                continue
            assert sample is not None
            active, edge_w = self.topology.relax(beta, sample.topology_noise[ct], tau)
            index, op_w = gumbel_max(alpha, sample.op_noise[ct], tau)
            chosen = index.tolist()
            pairs = [(e, chosen[e]) for e in active]
            weights = torch.stack([op_w[e] for e in active])
            if edge_w is not None:
                weights = edge_w * weights
            offsets = None
            if self.unselected_weights:
                rest = unselected_weight_sum(alpha, sample.op_noise[ct], tau)
                offsets = torch.stack([rest[e] for e in active])
            out[ct] = CellPath(pairs, weights, offsets=offsets)
        return out

    # -- the architecture it currently prefers -----------------------------------------------------

    @property
    def derivation_rule(self) -> str:
        """The rule ``rome derive`` applies to what this algorithm stores (``rome.genotype.derivation_rule``)."""
        return derivation_rule(self.name, self.space.name, bool(len(self.arch.beta)))

    def derived_cells(self) -> dict[str, list[list[tuple[str, int]]]]:
        """Per cell type and node, the kept (op, source state) entries: exactly what ``rome derive`` will write.

        ``rome.genotype.derivation.derive_cell`` does the work, so the per-epoch genotype of the history and the
        final genotype.json can never disagree: top-k beta (v2) / best pair (v1) with beta; DARTS's or
        GDAS's rule without; every edge on NAS-Bench-201; never 'none' in DARTS-style cells.
        """
        rule, out = self.derivation_rule, {}
        pairs = self.topology.pairs() if isinstance(self.topology, SubsetMax) else None
        for ct in self.space.cell_types:
            cs = CellSearchSpace(self.space.op_table[ct], self.space.edges)
            beta = self.arch.beta[ct].detach().double().cpu().numpy() if ct in self.arch.beta else None
            out[ct] = derive_cell(cs, self.arch.alpha[ct].detach().double().cpu().numpy(), rule,
                                  k=list(self.space.in_degree), beta=beta, pairs=pairs, where=f"{self.name} {ct}")
        return out

    def argmax_choice(self) -> dict[str, list[tuple[int, int]]]:
        """The derived architecture as (edge, op index) pairs per cell type (for the supernet)."""
        choice: dict[str, list[tuple[int, int]]] = {}
        for ct, nodes in self.derived_cells().items():
            pairs = []
            for dst, entries in zip(self.space.dst_nodes, nodes):
                by_src = {self.space.edges[e][0]: e for e in self.space.incoming(dst)}
                pairs += [(by_src[src], self.space.ops(ct, by_src[src]).index(op)) for op, src in entries]
            choice[ct] = sorted(pairs)
        return choice

    def genotype(self) -> FlatGenotype:
        """The derived architecture as a flat (op name, source input index) list per cell type."""
        return {ct: [entry for node in nodes for entry in node] for ct, nodes in self.derived_cells().items()}

    def genotype_paths(self) -> dict[str, CellPath]:
        """The discrete argmax network (weights 1) as supernet paths."""
        return {ct: CellPath(pairs, None) for ct, pairs in self.argmax_choice().items()}

    def eval_paths(self) -> dict[str, CellPath]:
        """Validation network: the mixed supernet for darts (what DARTS reports), else the argmax sub-network."""
        if self.op_mode == "mixed":
            with torch.no_grad():
                return self.paths(None, 1.0)
        return self.genotype_paths()

    def node_groups(self) -> dict[str, list[list[int]]]:
        """Per cell type, the indices of ``probabilities()["beta"]`` that form one node's input distribution."""
        topo = self.topology
        if isinstance(topo, SubsetMax):
            groups = [list(range(sl.start, sl.stop)) for sl in topo.slices]
        elif isinstance(topo, EdgeTopK):  # EdgeNormalization too: softmax(beta) over each node's incoming edges
            groups = [list(g) for g in topo.groups]
        else:
            groups = []
        return {ct: groups for ct in self.arch.beta}

    def probabilities(self) -> dict[str, dict[str, list]]:
        """Softmaxed alpha (per edge over its ops) and beta (per node over its edges / subsets), per cell type."""
        out: dict[str, dict[str, list]] = {"alpha": {}, "beta": {}}
        for ct in self.space.cell_types:
            out["alpha"][ct] = F.softmax(self.arch.alpha[ct].detach().float().cpu(), dim=-1).tolist()
            if ct in self.arch.beta:
                out["beta"][ct] = self.topology.probabilities(self.arch.beta[ct])
        return out

    def describe(self) -> dict[str, object]:
        return {"algorithm": self.name, "variant": self.variant, "topology": self.topology.name,
                "op_mode": self.op_mode, "partial_channels": self.partial, "k_samples": self.k_samples,
                "unselected_weights": self.unselected_weights,
                "learns_arch": self.learns_arch,
                "beta_labels": self.topology.labels()}


def build_algorithm(search: SearchConfig, space: SearchSpace, generator: torch.Generator) -> SearchAlgorithm:
    """From the ``search`` params section (``search.mode`` included: ``rome.search.modes``)."""
    behaviour = resolve_behaviour(search, space)
    return SearchAlgorithm(search.algorithm, space, variant=search.rome_variant, topology=search.topology,
                           k_samples=search.k_samples, init_std=search.arch_init_std, generator=generator,
                           partial_channels=search.partial_channels, unselected_weights=behaviour.unselected_weights)
