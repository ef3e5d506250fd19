"""DARTS (Liu et al., ICLR 2019), first order: the softmax-weighted mixed op on every edge."""

from rome.algorithms.registry import AlgorithmSpec, register_algorithm

SPEC = register_algorithm(AlgorithmSpec(
    name="darts", op_mode="mixed", learns_arch=True, fixed_k=1, topology="all", rule="darts",
    summary="weighted mixed op over all ops of every edge (first order), K = 1",
))
