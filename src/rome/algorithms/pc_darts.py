"""PC-DARTS (Xu et al., ICLR 2020), first order: partial channel connections and edge normalisation.

As its released code (yuhuixu1993/PC-DARTS, ``model_search.py``): on every edge 1/K of the channels go
through the softmax(alpha)-weighted mixed op and the rest bypass it (through a 2x2 max-pool on stride-2
edges), the two are concatenated and channel-shuffled with K groups; each edge's output is multiplied by
its beta normalised by a softmax over the node's incoming edges. Derived with its own rule (``pc_darts``:
edge strength = largest non-``none`` op weight x normalised beta, top-k inputs per node).

Reference mode (its ``train_search.py``): no architecture step in the first 30 % of the epochs (15 of
its 50; ``search.arch_warmup_epochs`` sets a count) and the cosine schedule stepped at the start of
each epoch. Its batch 256, lr 0.1 and arch lr 6e-4 are values (``search.batch_size`` ...), not code.
"""

from rome.algorithms.registry import AlgorithmSpec, ReferenceBehaviour, register_algorithm

SPEC = register_algorithm(AlgorithmSpec(
    name="pc_darts", op_mode="mixed", learns_arch=True, fixed_k=1, topology="normalized", rule="pc_darts",
    partial=True,
    reference=ReferenceBehaviour(arch_warmup=0.3, lr_epoch_shift=True,
                                 source="yuhuixu1993/PC-DARTS train_search.py, model_search.py"),
    summary="weighted mixed op on 1/K of the channels, channel shuffle, softmax(beta) per node's edges, K = 1",
))
