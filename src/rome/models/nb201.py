"""The NAS-Bench-201 macro network (``TinyNetwork`` of AutoDL-Projects), registered with timm."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from timm.models import register_model

from rome.errors import RomeError
from rome.genotype.files import as_genotype
from rome.genotype.types import NB201Genotype
from rome.models.base import EvalNetwork, entrypoint_kwargs, with_pretrained_cfg
from rome.models.cells import NB201Cell
from rome.spaces.ops import ResNetBasicBlock


class NB201Net(EvalNetwork):
    """Stem conv3x3 -> C + BN; three stages of ``layers`` cells at C, 2C, 4C with a stride-2 ResNet
    basic block between stages; BN-ReLU, GAP, linear. ``layers`` = cells per stage (N = 5 in the benchmark).

    There is no auxiliary head in the NB201 protocol: ``auxiliary=True`` is refused. Forward returns logits.
    """

    def __init__(self, genotype: Any, num_classes: int = 10, in_chans: int = 3, init_channels: int = 16,
                 layers: int = 5, auxiliary: bool = False, drop_path_rate: float = 0.0, drop_rate: float = 0.0) -> None:
        super().__init__(drop_path_rate)
        if auxiliary:
            raise RomeError("rome_nb201: auxiliary = True: the NAS-Bench-201 network has no auxiliary head; "
                            "expected auxiliary = False (train.auxiliary_weight: 0)")
        g = as_genotype(genotype)
        if not isinstance(g, NB201Genotype):
            raise RomeError("rome_nb201: genotype is a DARTS genotype; expected an NB201 cell "
                            "(|op~0|+|op~0|op~1|+|op~0|op~1|op~2|)")
        self.genotype, self.num_classes, self.layers, self.drop_rate = g, num_classes, layers, drop_rate
        self.auxiliary = False
        C = init_channels
        self.stem = nn.Sequential(nn.Conv2d(in_chans, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        self.cells = nn.ModuleList()
        C_prev = C
        for stage, C_curr in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                self.cells.append(ResNetBasicBlock(C_prev, C_curr, 2, True))
            for _ in range(layers):
                self.cells.append(NB201Cell(g, C_curr, C_curr, 1))
            C_prev = C_curr
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = C_prev
        self.classifier = nn.Linear(C_prev, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, self.cell_drop_prob()) if isinstance(cell, NB201Cell) else cell(x)
        out = torch.flatten(self.global_pool(self.lastact(x)), 1)
        if self.drop_rate > 0:
            out = nn.functional.dropout(out, self.drop_rate, self.training)
        return self.classifier(out)


@register_model
def rome_nb201(pretrained: bool = False, **kwargs: Any) -> NB201Net:
    """NAS-Bench-201 network from an NB201 cell (defaults: C = 16, N = 5 cells per stage)."""
    return with_pretrained_cfg(NB201Net(**entrypoint_kwargs("rome_nb201", pretrained, kwargs)), "rome_nb201", 32, kwargs)
