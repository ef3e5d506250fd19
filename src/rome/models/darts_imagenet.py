"""The DARTS ImageNet (mobile setting) evaluation network (``NetworkImageNet``), registered with timm."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from timm.models import register_model

from rome.models.base import entrypoint_kwargs, with_pretrained_cfg
from rome.models.cells import AuxiliaryHead, build_cell_stack
from rome.models.darts_cifar import DartsNetwork, darts_genotype, reduction_layers
from rome.spaces.ops import imagenet_stem


class DartsImageNetNet(DartsNetwork):
    """Three stride-2 stem convs (C/2, C, then C), 14 cells at C = 48 (reductions at 1/3, 2/3), GAP, linear.

    The first cell treats its inputs as reduced (factorized-reduce preprocessing), as in DARTS. The
    global pool is adaptive (choice): identical to DARTS's AvgPool2d(7) at 224 px, and it also works
    on the tiny inputs of the tests. Forward returns ``(logits, aux_logits)`` in training mode with
    ``auxiliary=True``, otherwise ``logits``.
    """

    def __init__(self, genotype: Any, num_classes: int = 1000, in_chans: int = 3, init_channels: int = 48,
                 layers: int = 14, auxiliary: bool = False, drop_path_rate: float = 0.0,
                 drop_rate: float = 0.0) -> None:
        super().__init__(drop_path_rate)
        self.genotype = darts_genotype(genotype, "rome_darts_imagenet")
        self.num_classes, self.auxiliary, self.layers, self.drop_rate = num_classes, auxiliary, layers, drop_rate
        C = init_channels
        self.stem0, self.stem1 = imagenet_stem(in_chans, C)
        C_prev_prev, C_prev, C_curr = C, C, C
        reductions = reduction_layers(layers)
        self.aux_index = reductions[1]
        self.cells, C_prev, C_aux = build_cell_stack(self.genotype, layers, reductions, self.aux_index,
                                                     C_prev_prev, C_prev, C_curr, reduction_prev=True)
        self.auxiliary_head = AuxiliaryHead(C_aux, num_classes, stride=2, second_bn=False) if auxiliary else None
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = C_prev
        self.classifier = nn.Linear(C_prev, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        return self.cells_and_head(s0, s1)


@register_model
def rome_darts_imagenet(pretrained: bool = False, **kwargs: Any) -> DartsImageNetNet:
    """DARTS ImageNet mobile network from a genotype (defaults: 14 cells, 48 channels)."""
    return with_pretrained_cfg(DartsImageNetNet(**entrypoint_kwargs("rome_darts_imagenet", pretrained, kwargs)), "rome_darts_imagenet", 224, kwargs)
