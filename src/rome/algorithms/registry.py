"""The algorithm registry: one ``AlgorithmSpec`` per ``search.algorithm`` value, registered by its own module.

The search (``rome.search.algorithms``), the derivation (``rome.genotype.derivation``), the schema's
enum (a test compares them) and the benchmarks read the facts from here, so none branches on a name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rome.registry import Registry

OP_MODES = ("gumbel", "mixed")  # Gumbel-max over alpha per edge | the weighted mixed op over all ops
# beta learned (Gumbel-Top-k) | k inputs drawn uniformly | every edge | every edge, weighted by softmax(beta) per node
TOPOLOGIES = ("learned", "uniform", "all", "normalized")


@dataclass(frozen=True)
class ReferenceBehaviour:
    """What ``search.mode: reference`` changes for one algorithm: its authors' code, where our loop differs.

    Every field's default is the controlled comparison (every method in the same loop), so an
    algorithm without reference code (rome, random) keeps the default and reference mode changes
    nothing for it. ``weights_first``: the weight step runs before the architecture step on each
    batch (GDAS). ``unrolled``: the second-order architecture gradient (DARTS), unless
    ``search.unrolled`` says otherwise. ``lastact``: BatchNorm + ReLU before global pooling in the
    DARTS-space supernet (GDAS's ``NASNetworkGDAS``). ``unselected_weights``: on NAS-Bench-201 the
    node also receives the (zero-valued) straight-through weight of every unselected op, as a scalar
    (GDAS's ``forward_gdas``). ``pool_bn``: BatchNorm after search pools in DARTS-space cells (GDAS's
    ops have none). ``nesterov``: Nesterov momentum in the weight optimiser (GDAS's configs).
    ``lr_epoch_shift``: the cosine schedule is stepped at the start of each epoch, so epoch e runs at
    the rate of e + 1 (DARTS's and PC-DARTS's ``scheduler.step()`` before training). ``arch_warmup``:
    the fraction of the epochs without architecture steps (PC-DARTS: 15 of 50), unless
    ``search.arch_warmup_epochs`` is set. ``clip_with_alpha``: the weight step's gradient-norm clip also
    covers alpha/beta's gradient as the authors' loop leaves it at that moment: the previous architecture
    step's gradient, never zeroed, plus the weight batch's own (GDAS: ``network.parameters()`` holds the
    architecture parameters). ``source``: the files this was read from.
    """

    weights_first: bool = False
    unrolled: bool = False
    lastact: bool = False
    unselected_weights: bool = False
    pool_bn: bool = True
    nesterov: bool = False
    lr_epoch_shift: bool = False
    arch_warmup: float = 0.0
    clip_with_alpha: bool = False
    source: str = ""


CONTROLLED = ReferenceBehaviour()


@dataclass(frozen=True)
class Fact:
    """One value as the authors' code has it and where: ``owner/repo@commit:path:line`` (the commit read)."""

    value: float | int | bool
    source: str


# The space kinds a reference value is recorded for: NAS-Bench-201, or the DARTS (NASNet-like) spaces
# (darts, s1-s4: the R-DARTS spaces run on DARTS's network and its code's values).
HPARAM_SPACES = ("nb201", "darts")


@dataclass(frozen=True)
class ReferenceHyperparameters:
    """The hyper-parameters of one algorithm's reference code on one space kind, as facts with their source.

    ``applied``: ``search.<key>`` values that ``search.mode: reference`` sets unless the user set the key
    (params file or ``--set``; rome.config.resolve). ``recorded``: facts reference mode does NOT set, kept
    for the provenance and the README: the budget (``batch_size``, ``epochs``: the benchmarks and presets fix
    the scale, e.g. 240 epochs of GDAS on a CPU are out of reach; set them to run the authors' budget) and
    values a ``ReferenceBehaviour`` switch already applies (Nesterov, the architecture warm-up).
    """

    applied: Mapping[str, Fact] = field(default_factory=dict)
    recorded: Mapping[str, Fact] = field(default_factory=dict)


@dataclass(frozen=True)
class AlgorithmSpec:
    """What one search algorithm is, as data.

    ``op_mode``: how an edge's op is chosen (``OP_MODES``). ``learns_arch``: whether alpha/beta get an
    Adam step (else the paths are drawn from zero logits: uniform). ``fixed_k``: samples per step
    when the algorithm defines it (GDAS, DARTS: 1), ``None`` = ``search.k_samples``. ``topology``: how
    a node's inputs are chosen where the space keeps fewer than it offers (``TOPOLOGIES``; ``learned``
    honours ``search.topology`` and ``search.rome_variant``). ``rule``: the derivation rule when no beta
    is stored (``rome.genotype.derivation``). ``init_std``: the std of the initial logits, ``None`` =
    ``search.arch_init_std``. ``partial``: the mixed op sees 1/K of an edge's channels
    (K = ``search.partial_channels``), the rest bypass it (PC-DARTS); only with ``op_mode`` mixed.
    ``reference``: what ``search.mode: reference`` changes (``ReferenceBehaviour``; the default changes nothing).
    ``reference_hparams``: its authors' hyper-parameters per space kind (``HPARAM_SPACES``), as data with the file
    and line of each; empty = reference mode keeps the preset's values (rome, random: no reference code).
    """

    name: str
    op_mode: str
    learns_arch: bool
    fixed_k: int | None
    topology: str
    rule: str
    init_std: float | None = None
    partial: bool = False
    reference: ReferenceBehaviour = CONTROLLED
    reference_hparams: Mapping[str, ReferenceHyperparameters] = field(default_factory=dict)
    summary: str = ""

    def __post_init__(self) -> None:
        if self.op_mode not in OP_MODES:
            raise ValueError(f"{self.name}: op_mode {self.op_mode!r} not in {OP_MODES}")
        if self.topology not in TOPOLOGIES:
            raise ValueError(f"{self.name}: topology {self.topology!r} not in {TOPOLOGIES}")
        if not 0.0 <= self.reference.arch_warmup < 1.0:
            raise ValueError(f"{self.name}: reference arch_warmup {self.reference.arch_warmup} not in [0, 1)")
        unknown = set(self.reference_hparams) - set(HPARAM_SPACES)
        if unknown:
            raise ValueError(f"{self.name}: reference_hparams for {sorted(unknown)}; expected space kinds {HPARAM_SPACES}")
        if self.partial and self.op_mode != "mixed":
            raise ValueError(f"{self.name}: partial channels need op_mode 'mixed' (every op of an edge on the 1/K part)")


ALGORITHMS: Registry[AlgorithmSpec] = Registry("algorithm", "search.algorithm")

register_algorithm = ALGORITHMS.register  # one call per entry, in the module that defines it
algorithm_names = ALGORITHMS.names
find_algorithm = ALGORITHMS.find
get_algorithm = ALGORITHMS.get
