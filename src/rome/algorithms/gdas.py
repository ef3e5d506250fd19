"""GDAS (Dong & Yang, CVPR 2019): one Gumbel-max op on every edge, one sample per step.

Reference mode (``search.mode: reference``) runs it as D-X-Y/AutoDL-Projects does
(``exps/NAS-Bench-201-algos/GDAS.py``, ``exps/algos/GDAS.py``, ``search_model_gdas*.py``,
``search_cells.py``, ``cell_operations.py``, ``configs/.../GDAS*.config``): the weight step before
the architecture step on each batch, BatchNorm + ReLU before the DARTS-space network's pooling, the
unselected ops' zero-valued weights added to each NAS-Bench-201 node, no BatchNorm after search pools,
Nesterov SGD. Its sampling (``hardwts = one_hot - probs.detach() + probs``), tau schedule and
learning-rate values are already ours (tests/test_reference_modes.py).
"""

from rome.algorithms.registry import AlgorithmSpec, ReferenceBehaviour, register_algorithm

SPEC = register_algorithm(AlgorithmSpec(
    name="gdas", op_mode="gumbel", learns_arch=True, fixed_k=1, topology="all", rule="gdas",
    reference=ReferenceBehaviour(
        weights_first=True, lastact=True, unselected_weights=True, pool_bn=False, nesterov=True,
        source="D-X-Y/AutoDL-Projects GDAS.py, search_model_gdas(_nasnet).py, search_cells.py, GDAS*.config"),
    summary="Gumbel-max op on every edge, K = 1",
))
