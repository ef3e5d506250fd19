"""``search.mode``: the controlled comparison (default) or each baseline as its authors' code runs it.

The facts come from the algorithm registry (``AlgorithmSpec.reference``: a ``ReferenceBehaviour``);
this module only resolves them against the params into the concrete ``SearchBehaviour`` the supernet,
the optimisers and the step read, so nothing downstream branches on an algorithm's name. Controlled
mode is today's loop for every algorithm. ``search.unrolled`` and ``search.arch_warmup_epochs``
override what the mode says in either mode (null = the mode decides), and so does each key of
``search.behaviour`` for one of the other switches: a reference mode minus one behaviour, or the
controlled loop plus one, is how a difference between the two modes is traced to its cause.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rome.algorithms import get_algorithm
from rome.algorithms.registry import CONTROLLED
from rome.errors import RomeError
from rome.sections import SearchConfig
from rome.spaces import SearchSpace

MODES = ("controlled", "reference")


@dataclass(frozen=True)
class SearchBehaviour:
    """What one search does differently from the controlled loop (all defaults = controlled)."""

    mode: str = "controlled"
    weights_first: bool = False  # weight step before the architecture step on each batch
    unrolled: bool = False  # second-order architecture gradient
    lastact: bool = False  # BN + ReLU before the DARTS-space supernet's pooling
    unselected_weights: bool = False  # NB201 node += zero-valued weights of the unselected ops
    pool_bn: bool = True  # BatchNorm after search pools (DARTS-space cells)
    nesterov: bool = False
    lr_epoch_shift: bool = False  # epoch e runs at the cosine rate of e + 1
    arch_warmup_epochs: int = 0
    clip_with_alpha: bool = False  # the weight step's clip norm includes alpha's stale + weight-batch gradient


def resolve_behaviour(search: SearchConfig, space: SearchSpace) -> SearchBehaviour:
    """The behaviour ``search`` asks for on ``space``; one-line ``RomeError`` for an impossible request."""
    if search.mode not in MODES:
        raise RomeError(f"search.mode = {search.mode!r}: expected one of {list(MODES)}")
    spec = get_algorithm(search.algorithm)
    ref = spec.reference if search.mode == "reference" else CONTROLLED
    darts_space = space.kind != "nb201"
    unrolled = ref.unrolled if search.unrolled is None else bool(search.unrolled)
    if unrolled and spec.op_mode != "mixed":
        raise RomeError(f"search.unrolled = true: the second-order gradient is defined for the mixed-op algorithms "
                        f"(darts, pc_darts), not {search.algorithm!r}; set it to null or false")
    if search.arch_warmup_epochs is not None:
        warmup = int(search.arch_warmup_epochs)
    else:
        warmup = int(round(ref.arch_warmup * search.epochs))
    if warmup >= search.epochs and spec.learns_arch:
        raise RomeError(f"search.arch_warmup_epochs = {warmup}: expected fewer than search.epochs ({search.epochs}), "
                        "else the architecture never learns")
    behaviour = SearchBehaviour(
        mode=search.mode, weights_first=ref.weights_first, unrolled=unrolled,
        lastact=ref.lastact and darts_space,  # the NB201 supernet always has it (as GDAS's and NB201's)
        unselected_weights=ref.unselected_weights and not darts_space,
        pool_bn=ref.pool_bn, nesterov=ref.nesterov, lr_epoch_shift=ref.lr_epoch_shift, arch_warmup_epochs=warmup,
        clip_with_alpha=ref.clip_with_alpha)
    return override(behaviour, dict(search.behaviour or {}), darts_space, spec.op_mode, spec.learns_arch)


def override(behaviour: SearchBehaviour, overrides: dict[str, bool], darts_space: bool, op_mode: str,
             learns_arch: bool = True) -> SearchBehaviour:
    """``search.behaviour`` on top of the mode; a switch the run's network does not have is refused, not ignored.
    Which keys exist and that they are booleans is the schema's check (``search.behaviour`` properties, each a
    ``SearchBehaviour`` field: tests/test_reference_modes.py)."""
    for key, value in overrides.items():
        if key in ("lastact", "pool_bn") and not darts_space:
            raise RomeError(f"search.behaviour.{key} = {str(value).lower()}: the NAS-Bench-201 supernet has no such "
                            f"switch (its BN-ReLU before pooling and its pools are fixed); expected a DARTS space")
        if key == "unselected_weights" and value and (darts_space or op_mode != "gumbel"):
            raise RomeError("search.behaviour.unselected_weights = true: a sampled NAS-Bench-201 cell's switch (GDAS's; "
                            "gdas, rome or random on search.space nb201); expected false or no key")
        if key == "clip_with_alpha" and value and not learns_arch:
            raise RomeError("search.behaviour.clip_with_alpha = true: the algorithm learns no alpha/beta (random); "
                            "expected false or no key")
    return dataclasses.replace(behaviour, **overrides)
