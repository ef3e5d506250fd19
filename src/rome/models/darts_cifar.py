"""The DARTS CIFAR evaluation network (Liu et al. 2019, ``NetworkCIFAR``), registered with timm."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from timm.models import register_model

from rome.errors import RomeError
from rome.genotype.files import as_genotype
from rome.genotype.types import Genotype
from rome.models.base import EvalNetwork, entrypoint_kwargs, with_pretrained_cfg
from rome.models.cells import AuxiliaryHead, build_cell_stack


def reduction_layers(layers: int) -> tuple[int, int]:
    """Reduction cells sit at 1/3 and 2/3 of the depth (DARTS); the auxiliary head follows the second."""
    return layers // 3, 2 * layers // 3


def darts_genotype(genotype: Any, name: str) -> Genotype:
    g = as_genotype(genotype)
    if not isinstance(g, Genotype):
        raise RomeError(f"{name}: genotype is an NB201 cell ({g.to_arch_str()}); expected a DARTS genotype "
                        f"(use rome_nb201 for NAS-Bench-201 cells)")
    return g


class DartsNetwork(EvalNetwork):
    """What the CIFAR and ImageNet DARTS networks share after their stems: the cell stack, the
    auxiliary head at 2/3 depth (training mode only) and the classifier."""

    def cells_and_head(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.cell_drop_prob())
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        out = torch.flatten(self.global_pool(s1), 1)
        if self.drop_rate > 0:
            out = nn.functional.dropout(out, self.drop_rate, self.training)
        logits = self.classifier(out)
        return (logits, aux) if aux is not None else logits


class DartsCifarNet(DartsNetwork):
    """Stem conv3x3 -> 3C + BN, ``layers`` cells (reductions at layers//3, 2*layers//3), GAP, linear.

    Forward: in training mode with ``auxiliary=True`` it returns ``(logits, aux_logits)`` (the
    auxiliary head reads the output of cell 2*layers//3); otherwise just ``logits``.
    """

    def __init__(self, genotype: Any, num_classes: int = 10, in_chans: int = 3, init_channels: int = 36,
                 layers: int = 20, auxiliary: bool = False, drop_path_rate: float = 0.0, drop_rate: float = 0.0,
                 stem_multiplier: int = 3) -> None:
        super().__init__(drop_path_rate)
        self.genotype = darts_genotype(genotype, "rome_darts_cifar")
        self.num_classes, self.auxiliary, self.layers = num_classes, auxiliary, layers
        self.drop_rate = drop_rate
        C_curr = stem_multiplier * init_channels
        self.stem = nn.Sequential(nn.Conv2d(in_chans, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, init_channels
        reductions = reduction_layers(layers)
        self.aux_index = reductions[1]
        self.cells, C_prev, C_aux = build_cell_stack(self.genotype, layers, reductions, self.aux_index,
                                                     C_prev_prev, C_prev, C_curr, reduction_prev=False)
        self.auxiliary_head = AuxiliaryHead(C_aux, num_classes, stride=3) if auxiliary else None
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = C_prev
        self.classifier = nn.Linear(C_prev, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(x)
        return self.cells_and_head(s0, s1)


@register_model
def rome_darts_cifar(pretrained: bool = False, **kwargs: Any) -> DartsCifarNet:
    """DARTS CIFAR network from a genotype (defaults: 20 cells, 36 channels, the DARTS protocol)."""
    return with_pretrained_cfg(DartsCifarNet(**entrypoint_kwargs("rome_darts_cifar", pretrained, kwargs)), "rome_darts_cifar", 32, kwargs)
