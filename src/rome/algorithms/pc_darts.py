"""PC-DARTS (Xu et al., ICLR 2020), first order: partial channel connections and edge normalisation.

As its released code (yuhuixu1993/PC-DARTS, ``model_search.py``): on every edge 1/K of the channels go
through the softmax(alpha)-weighted mixed op and the rest bypass it (through a 2x2 max-pool on stride-2
edges), the two are concatenated and channel-shuffled with K groups; each edge's output is multiplied by
its beta normalised by a softmax over the node's incoming edges. Derived with its own rule (``pc_darts``:
edge strength = largest non-``none`` op weight x normalised beta, top-k inputs per node).
"""

from rome.algorithms.registry import AlgorithmSpec, register_algorithm

SPEC = register_algorithm(AlgorithmSpec(
    name="pc_darts", op_mode="mixed", learns_arch=True, fixed_k=1, topology="normalized", rule="pc_darts",
    partial=True,
    summary="weighted mixed op on 1/K of the channels, channel shuffle, softmax(beta) per node's edges, K = 1",
))
