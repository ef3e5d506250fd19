"""The algorithm and space registries are the one list: the schema's enums, the search and derive agree."""

from __future__ import annotations

import pytest

from rome.algorithms import ALGORITHMS, algorithm_names, get_algorithm
from rome.config import schema
from rome.errors import RomeError
from rome.genotype.derivation import RULES, derivation_rule
from rome.spaces import SPACES, get_space, space_names


def test_schema_enums_equal_registry_keys() -> None:
    definitions = schema()["definitions"]
    assert definitions["algorithm"]["enum"] == list(algorithm_names())
    assert definitions["space"]["enum"] == list(space_names())
    assert SPACES == space_names()


def test_every_algorithm_derives_with_a_registered_rule() -> None:
    for name, spec in ALGORITHMS.items():
        assert spec.rule in RULES
        for space in space_names():
            assert derivation_rule(name, space, False) in RULES


def test_unknown_names_are_one_line_errors() -> None:
    with pytest.raises(RomeError, match="search.algorithm = 'pcdarts': unknown algorithm; expected one of"):
        get_algorithm("pcdarts")
    with pytest.raises(RomeError, match="search.space = 's9': unknown search space; expected one of"):
        get_space("s9")


def test_a_new_algorithm_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry alone makes a searchable, derivable algorithm: here uniform ops on every edge, nothing learned."""
    import torch

    from rome.algorithms import AlgorithmSpec
    from rome.search.algorithms import SearchAlgorithm

    spec = AlgorithmSpec(name="random_ops", op_mode="gumbel", learns_arch=False, fixed_k=None, topology="all",
                         rule="darts", init_std=1.0)
    monkeypatch.setitem(ALGORITHMS._entries, spec.name, spec)  # what register_algorithm does, undone afterwards
    algo = SearchAlgorithm("random_ops", get_space("darts"), k_samples=3, generator=torch.Generator().manual_seed(0))
    assert algo.k_samples == 3 and not algo.learns_arch and algo.topology.name == "all"
    assert algo.derivation_rule == "darts"
    assert all(len(entries) == 8 for entries in algo.genotype().values())
    paths = algo.paths(algo.draw(torch.Generator().manual_seed(1)), tau=1.0)
    assert len(paths["normal"].pairs) == 14  # one op on every edge
