"""GDAS (Dong & Yang, CVPR 2019): one Gumbel-max op on every edge, one sample per step."""

from rome.algorithms.registry import AlgorithmSpec, register_algorithm

SPEC = register_algorithm(AlgorithmSpec(
    name="gdas", op_mode="gumbel", learns_arch=True, fixed_k=1, topology="all", rule="gdas",
    summary="Gumbel-max op on every edge, K = 1",
))
