"""The space registry: one ``SpaceSpec`` per ``search.space`` value, registered by the module that defines it.

The search (``get_space``), the derivation (``rome.genotype.derivation``), ``rome derive``'s check of
search.json and the schema's enum (a test compares them) read the list from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rome.errors import RomeError
from rome.spaces.space import SearchSpace


@dataclass(frozen=True)
class SpaceSpec:
    """A space's name, its kind (``darts``: two-input cells, normal + reduce; ``nb201``: one-input cells),
    its cell types, how to build it for ``search.nodes``, and the derivation rule it imposes (``None``:
    the algorithm's; NB201 keeps every edge whatever searched it)."""

    name: str
    kind: str
    cell_types: tuple[str, ...]
    build: Callable[[int], SearchSpace]
    rule: str | None = None


SPACES_REGISTRY: dict[str, SpaceSpec] = {}


def register_space(spec: SpaceSpec) -> SpaceSpec:
    """Add ``spec`` under its name (once: a second module claiming the name is a bug)."""
    if spec.name in SPACES_REGISTRY:
        raise ValueError(f"space {spec.name!r} registered twice")
    SPACES_REGISTRY[spec.name] = spec
    return spec


def space_names() -> tuple[str, ...]:
    return tuple(SPACES_REGISTRY)


def find_space(name: str) -> SpaceSpec | None:
    return SPACES_REGISTRY.get(name)


def get_space_spec(name: str) -> SpaceSpec:
    """The spec of ``search.space``; a one-line error naming the known ones otherwise."""
    if name not in SPACES_REGISTRY:
        raise RomeError(f"search.space = {name!r}: unknown search space; expected one of {list(SPACES_REGISTRY)}")
    return SPACES_REGISTRY[name]
