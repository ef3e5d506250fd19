"""PC-DARTS (Xu et al., ICLR 2020), first order: partial channel connections and edge normalisation.

As its released code (yuhuixu1993/PC-DARTS, ``model_search.py``): on every edge 1/K of the channels go
through the softmax(alpha)-weighted mixed op and the rest bypass it (through a 2x2 max-pool on stride-2
edges), the two are concatenated and channel-shuffled with K groups; each edge's output is multiplied by
its beta normalised by a softmax over the node's incoming edges. Derived with its own rule (``pc_darts``:
edge strength = largest non-``none`` op weight x normalised beta, top-k inputs per node).

Reference mode (its ``train_search.py``): no architecture step in the first 30 % of the epochs (15 of
its 50, ``if epoch>=15`` at train_search.py:156; ``search.arch_warmup_epochs`` sets a count), the cosine
schedule stepped at the start of each epoch, and its argparse defaults (``REFERENCE_HPARAMS``: lr 0.1,
arch lr 6e-4; its batch 256 and 50 epochs are recorded, not applied).

Clipping: ``nn.utils.clip_grad_norm(model.parameters(), args.grad_clip)`` (train_search.py:164) covers the
weights only: alpha and beta are plain ``Variable`` attributes (model_search.py:173-176), not registered
parameters; their gradient from the weight step is zeroed by ``Architect.step`` before it is used (its
``architect.py`` is DARTS's, imported at train_search.py:18). Our loop does the same.
Only the DARTS space was searched by the authors; on NAS-Bench-201 reference mode uses the same values.

Adam's betas: ``train_search.py`` imports ``Architect`` from its own ``architect.py`` (train_search.py:18),
which the index read here does not hold; the values recorded are DARTS's ``Architect`` (quark0/darts
architect.py:20), from which PC-DARTS's is taken.
"""

from rome.algorithms.registry import (
    AlgorithmSpec,
    Fact,
    ReferenceBehaviour,
    ReferenceHyperparameters,
    register_algorithm,
)

_TS = "yuhuixu1993/PC-DARTS@8c434ef:train_search.py"
_AR = "quark0/darts@8876e79:cnn/architect.py"

_HPARAMS = ReferenceHyperparameters(
    applied={
        "w_lr": Fact(0.1, f"{_TS}:25"),  # --learning_rate
        "w_lr_min": Fact(0.001, f"{_TS}:26"),
        "w_momentum": Fact(0.9, f"{_TS}:27"),
        "w_weight_decay": Fact(0.0003, f"{_TS}:28"),
        "grad_clip": Fact(5.0, f"{_TS}:40"),
        "a_lr": Fact(0.0006, f"{_TS}:43"),  # --arch_learning_rate
        "a_beta1": Fact(0.5, f"{_AR}:20 (Architect imported at {_TS}:18)"),
        "a_beta2": Fact(0.999, f"{_AR}:20 (Architect imported at {_TS}:18)"),
        "a_weight_decay": Fact(0.001, f"{_TS}:44"),
    },
    recorded={
        "batch_size": Fact(256, f"{_TS}:24"),
        "epochs": Fact(50, f"{_TS}:31"),
        "nesterov": Fact(False, f"{_TS}:81-85"),
        "arch_warmup_epochs": Fact(15, f"{_TS}:156"),  # ReferenceBehaviour.arch_warmup = 15 / 50
    })

REFERENCE_HPARAMS = {"darts": _HPARAMS, "nb201": _HPARAMS}

SPEC = register_algorithm(AlgorithmSpec(
    name="pc_darts", op_mode="mixed", learns_arch=True, fixed_k=1, topology="normalized", rule="pc_darts",
    partial=True,
    reference=ReferenceBehaviour(arch_warmup=0.3, lr_epoch_shift=True,
                                 source="yuhuixu1993/PC-DARTS train_search.py, model_search.py"),
    reference_hparams=REFERENCE_HPARAMS,
    summary="weighted mixed op on 1/K of the channels, channel shuffle, softmax(beta) per node's edges, K = 1",
))
