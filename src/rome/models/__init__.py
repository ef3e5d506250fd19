"""Evaluation networks built from a genotype; importing this package registers them with timm:
``rome_darts_cifar``, ``rome_darts_imagenet``, ``rome_nb201``.

    import rome.models, timm
    model = timm.create_model("rome_darts_cifar", genotype="darts_v2", num_classes=10,
                              layers=20, init_channels=36, auxiliary=True, drop_path_rate=0.2, in_chans=3)

Training-mode forward with ``auxiliary=True`` returns ``(logits, aux_logits)``; otherwise ``logits``.
The trainer ramps drop-path with ``model.set_drop_path(p)`` (or ``model.drop_path_prob = p``).
"""

from rome.models.base import EvalNetwork
from rome.models.darts_cifar import DartsCifarNet, rome_darts_cifar
from rome.models.darts_imagenet import DartsImageNetNet, rome_darts_imagenet
from rome.models.nb201 import NB201Net, rome_nb201

MODEL_NAMES = {"darts_cifar": "rome_darts_cifar", "darts_imagenet": "rome_darts_imagenet", "nb201": "rome_nb201"}
"""``train.network`` value -> timm model name."""


def count_parameters(model, exclude_auxiliary: bool = True) -> int:
    """Parameters as the DARTS literature counts them: without the auxiliary head (used in training only)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if not (exclude_auxiliary and name.startswith("auxiliary_head.")))


__all__ = ["EvalNetwork", "DartsCifarNet", "DartsImageNetNet", "NB201Net", "MODEL_NAMES", "count_parameters",
           "rome_darts_cifar", "rome_darts_imagenet", "rome_nb201"]
