"""DARTS (Liu et al., ICLR 2019): the softmax-weighted mixed op on every edge.

Controlled mode: first order (``search.unrolled`` true gives second order in either mode).
Reference mode (quark0/darts ``cnn/train_search.py``, ``cnn/architect.py``): the second-order
(unrolled) architecture gradient, which DARTS's published S0 numbers use, and the cosine schedule
stepped at the start of each epoch (epoch e runs at the rate of e + 1).
"""

from rome.algorithms.registry import AlgorithmSpec, ReferenceBehaviour, register_algorithm

SPEC = register_algorithm(AlgorithmSpec(
    name="darts", op_mode="mixed", learns_arch=True, fixed_k=1, topology="all", rule="darts",
    reference=ReferenceBehaviour(unrolled=True, lr_epoch_shift=True,
                                 source="quark0/darts cnn/train_search.py, cnn/architect.py"),
    summary="weighted mixed op over all ops of every edge (first order; second order in reference mode), K = 1",
))
