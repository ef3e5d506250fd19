"""GDAS (Dong & Yang, CVPR 2019): one Gumbel-max op on every edge, one sample per step.

Reference mode (``search.mode: reference``) runs it as D-X-Y/AutoDL-Projects does
(``exps/NAS-Bench-201-algos/GDAS.py``, ``exps/algos/GDAS.py``, ``search_model_gdas*.py``,
``search_cells.py``, ``cell_operations.py``, ``configs/.../GDAS*.config``): the weight step before
the architecture step on each batch, BatchNorm + ReLU before the DARTS-space network's pooling, the
unselected ops' zero-valued weights added to each NAS-Bench-201 node, no BatchNorm after search pools,
Nesterov SGD, and its own optimiser values (``REFERENCE_HPARAMS``; the weight lr 0.025 and weight decay
5e-4 of both its configs differ from the default and paper presets' 0.05 and 3e-4).

Clipping (``clip_with_alpha``): its weight step is ``w_optimizer.zero_grad(); base_loss.backward();
clip_grad_norm_(network.parameters(), 5); w_optimizer.step()`` and ``network.parameters()`` includes the
architecture parameters (registered ``nn.Parameter``: ``search_model_gdas.py:44``,
``search_model_gdas_nasnet.py:44-45``), whose gradient only ``a_optimizer.zero_grad()`` clears, after the
weight step. So the clip norm covers the weights plus alpha's gradient from the previous architecture step
plus the weight batch's own. Its sampling (``hardwts = one_hot - probs.detach() + probs``) and tau
schedule are ours (tests/test_reference_modes.py).
"""

from rome.algorithms.registry import (
    AlgorithmSpec,
    Fact,
    ReferenceBehaviour,
    ReferenceHyperparameters,
    register_algorithm,
)

_CFG201 = "D-X-Y/AutoDL-Projects@a84f483:configs/nas-benchmark/algos/GDAS.config"
_PY201 = "D-X-Y/AutoDL-Projects@5d7ccd4:exps/NAS-Bench-201-algos/GDAS.py"
_SH201 = "D-X-Y/AutoDL-Projects@5d7ccd4:scripts-search/NAS-Bench-201-algos/GDAS.sh"
_CFGNAS = "D-X-Y/AutoDL-Projects@33384a7:configs/search-opts/GDAS-NASNet-CIFAR.config"
_PYNAS = "D-X-Y/AutoDL-Projects@233a829:exps/algos/GDAS.py"
_SHNAS = "D-X-Y/AutoDL-Projects@33384a7:scripts-search/GDAS-search-NASNet-space.sh"

REFERENCE_HPARAMS = {
    # NAS-Bench-201: scripts-search/NAS-Bench-201-algos/GDAS.sh runs exps/NAS-Bench-201-algos/GDAS.py
    # with --config_path configs/nas-benchmark/algos/GDAS.config (GDAS.sh:40)
    "nb201": ReferenceHyperparameters(
        applied={
            "w_lr": Fact(0.025, f"{_CFG201}:7"),  # "LR"
            "w_lr_min": Fact(0.001, f"{_CFG201}:3"),  # "eta_min" of the "cos" scheduler
            "w_momentum": Fact(0.9, f"{_CFG201}:9"),
            "w_weight_decay": Fact(0.0005, f"{_CFG201}:8"),  # "decay"
            "grad_clip": Fact(5.0, f"{_PY201}:54"),  # clip_grad_norm_(network.parameters(), 5)
            "a_lr": Fact(0.0003, f"{_SH201}:42"),  # --arch_learning_rate 0.0003
            "a_beta1": Fact(0.5, f"{_PY201}:175"),  # Adam(..., betas=(0.5, 0.999))
            "a_beta2": Fact(0.999, f"{_PY201}:175"),
            "a_weight_decay": Fact(0.001, f"{_SH201}:42"),  # --arch_weight_decay 0.001
            "tau_max": Fact(10.0, f"{_SH201}:41"),  # --tau_max 10 --tau_min 0.1
            "tau_min": Fact(0.1, f"{_SH201}:41"),
        },
        recorded={
            "batch_size": Fact(64, f"{_CFG201}:12"),
            "epochs": Fact(240, f"{_CFG201}:4"),  # total_epoch = epochs + warmup (GDAS.py)
            "lr_warmup_epochs": Fact(0, f"{_CFG201}:5"),  # "warmup": linear lr warm-up epochs, none
            "nesterov": Fact(True, f"{_CFG201}:10"),  # ReferenceBehaviour.nesterov
            "arch_warmup_epochs": Fact(0, f"{_PY201}:64-69"),  # an architecture step on every batch
        }),
    # DARTS space: scripts-search/GDAS-search-NASNet-space.sh runs exps/algos/GDAS.py with
    # --config_path configs/search-opts/GDAS-NASNet-CIFAR.config (GDAS-search-NASNet-space.sh:34)
    "darts": ReferenceHyperparameters(
        applied={
            "w_lr": Fact(0.025, f"{_CFGNAS}:3"),
            "w_lr_min": Fact(0.001, f"{_CFGNAS}:4"),
            "w_momentum": Fact(0.9, f"{_CFGNAS}:9"),
            "w_weight_decay": Fact(0.0005, f"{_CFGNAS}:8"),
            "grad_clip": Fact(5.0, f"{_PYNAS}:39"),  # clip_grad_norm_(network.parameters(), 5)
            "a_lr": Fact(0.0003, f"{_SHNAS}:37"),
            "a_beta1": Fact(0.5, f"{_PYNAS}:102"),
            "a_beta2": Fact(0.999, f"{_PYNAS}:102"),
            "a_weight_decay": Fact(0.001, f"{_SHNAS}:37"),
            "tau_max": Fact(10.0, f"{_SHNAS}:36"),
            "tau_min": Fact(0.1, f"{_SHNAS}:36"),
        },
        recorded={
            "batch_size": Fact(256, f"{_CFGNAS}:12"),
            "epochs": Fact(250, f"{_CFGNAS}:5"),
            "lr_warmup_epochs": Fact(0, f"{_CFGNAS}:6"),
            "nesterov": Fact(True, f"{_CFGNAS}:10"),
            "arch_warmup_epochs": Fact(0, f"{_PYNAS}:47-52"),
        }),
}

SPEC = register_algorithm(AlgorithmSpec(
    name="gdas", op_mode="gumbel", learns_arch=True, fixed_k=1, topology="all", rule="gdas",
    reference=ReferenceBehaviour(
        weights_first=True, lastact=True, unselected_weights=True, pool_bn=False, nesterov=True, clip_with_alpha=True,
        source="D-X-Y/AutoDL-Projects GDAS.py, search_model_gdas(_nasnet).py, search_cells.py, GDAS*.config"),
    reference_hparams=REFERENCE_HPARAMS,
    summary="Gumbel-max op on every edge, K = 1",
))
