"""ROME (Wang et al., ICCV 2023): Gumbel-max ops, Gumbel-Top-k inputs over a learned beta, K samples per step.

No official ROME code exists, so ``search.mode: reference`` changes nothing for it (default ``reference``).
"""

from rome.algorithms.registry import AlgorithmSpec, register_algorithm

SPEC = register_algorithm(AlgorithmSpec(
    name="rome", op_mode="gumbel", learns_arch=True, fixed_k=None, topology="learned",
    # without beta (search.topology: false) ROME samples like GDAS, so it is derived like GDAS (choice)
    rule="gdas",
    summary="Gumbel-max op per edge, Gumbel-Top-k inputs per node (beta), K samples accumulated",
))
