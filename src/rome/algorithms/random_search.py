"""Random sampling baseline: uniform single paths of the final space, nothing learned.

Its alpha/beta are standard-normal logits drawn from the seed (``init_std`` 1), so deriving them
(argmax) yields a uniformly random architecture of the space.
"""

from rome.algorithms.registry import AlgorithmSpec, register_algorithm

SPEC = register_algorithm(AlgorithmSpec(
    name="random", op_mode="gumbel", learns_arch=False, fixed_k=None, topology="uniform", rule="darts",
    init_std=1.0, summary="uniform op per edge and uniform k inputs per node, K samples for the weights",
))
