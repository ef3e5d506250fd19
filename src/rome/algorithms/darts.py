"""DARTS (Liu et al., ICLR 2019): the softmax-weighted mixed op on every edge.

Controlled mode: first order (``search.unrolled`` true gives second order in either mode).
Reference mode (quark0/darts ``cnn/train_search.py``, ``cnn/architect.py``): the second-order
(unrolled) architecture gradient, which DARTS's published S0 numbers use, the cosine schedule
stepped at the start of each epoch (epoch e runs at the rate of e + 1), and its argparse defaults
(``REFERENCE_HPARAMS``).

Clipping: ``nn.utils.clip_grad_norm(model.parameters(), args.grad_clip)`` (train_search.py:160) covers the
weights only: alpha is a plain ``Variable(..., requires_grad=True)`` attribute (model_search.py:117-118),
not a registered parameter. The weight step's backward does put a gradient on alpha, but
``Architect.step`` zeroes it (``self.optimizer.zero_grad()``, architect.py:34) before the next architecture
gradient, so it is never used: our loop (weights-only clip, alpha's gradient set afresh) is the same.
Only DARTS's own code was released for the DARTS space; on NAS-Bench-201 reference mode uses the same
values (NB201's DARTS rows are AutoDL-Projects' re-implementation, not the authors').

Not reproduced: the stored ``architect.py`` (commit 8876e79) clips alpha's gradient to norm 10 before the
Adam step (architect.py:41) and ``train_search.py`` (4bfe432) logs that norm; it is recorded below
(``arch_grad_clip``) but not applied, pending a check against the upstream release.
"""

from rome.algorithms.registry import (
    AlgorithmSpec,
    Fact,
    ReferenceBehaviour,
    ReferenceHyperparameters,
    register_algorithm,
)

_TS = "quark0/darts@4bfe432:cnn/train_search.py"
_AR = "quark0/darts@8876e79:cnn/architect.py"

_HPARAMS = ReferenceHyperparameters(
    applied={
        "w_lr": Fact(0.025, f"{_TS}:24"),  # --learning_rate
        "w_lr_min": Fact(0.001, f"{_TS}:25"),  # --learning_rate_min
        "w_momentum": Fact(0.9, f"{_TS}:26"),
        "w_weight_decay": Fact(0.0003, f"{_TS}:27"),
        "grad_clip": Fact(5.0, f"{_TS}:39"),
        "a_lr": Fact(0.0003, f"{_TS}:42"),  # --arch_learning_rate
        "a_beta1": Fact(0.5, f"{_AR}:20"),  # Adam(..., betas=(0.5, 0.999), ...)
        "a_beta2": Fact(0.999, f"{_AR}:20"),
        "a_weight_decay": Fact(0.001, f"{_TS}:43"),  # --arch_weight_decay
    },
    recorded={
        "batch_size": Fact(64, f"{_TS}:23"),
        "epochs": Fact(50, f"{_TS}:30"),
        "nesterov": Fact(False, f"{_TS}:80-84"),  # SGD(model.parameters(), lr, momentum=, weight_decay=)
        "arch_warmup_epochs": Fact(0, f"{_TS}:152"),  # architect.step on every batch
        "arch_grad_clip": Fact(10.0, f"{_AR}:41"),  # not applied (module docstring)
    })

REFERENCE_HPARAMS = {"darts": _HPARAMS, "nb201": _HPARAMS}

SPEC = register_algorithm(AlgorithmSpec(
    name="darts", op_mode="mixed", learns_arch=True, fixed_k=1, topology="all", rule="darts",
    reference=ReferenceBehaviour(unrolled=True, lr_epoch_shift=True,
                                 source="quark0/darts cnn/train_search.py, cnn/architect.py"),
    reference_hparams=REFERENCE_HPARAMS,
    summary="weighted mixed op over all ops of every edge (first order; second order in reference mode), K = 1",
))
