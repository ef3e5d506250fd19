"""The space registry: one ``SpaceSpec`` per ``search.space`` value, registered by the module that defines it.

The search (``get_space``), the derivation (``rome.genotype.derivation``), ``rome derive``'s check of
search.json and the schema's enum (a test compares them) read the list from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rome.registry import Registry
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


SPACES_REGISTRY: Registry[SpaceSpec] = Registry("search space", "search.space")

register_space = SPACES_REGISTRY.register  # one call per entry, in the module that defines it
space_names = SPACES_REGISTRY.names
find_space = SPACES_REGISTRY.find
get_space_spec = SPACES_REGISTRY.get
