"""Model size and cost as NAS papers report them: parameters (M) and multiply-adds (M).

FLOPs are counted by torch's own FlopCounterMode (which counts a multiply-add as 2 FLOPs);
NAS papers' "FLOPs" (DARTS 574M on ImageNet, ...) are multiply-adds, so we report
``flops / 2``. Counted for one image at the prepared resolution, in eval mode (no auxiliary
head, no drop-path).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from rome.models import count_parameters


def params_m(model: torch.nn.Module) -> float:
    """Parameters in millions, without the auxiliary head (training-only), as DARTS papers count."""
    return count_parameters(model, exclude_auxiliary=True) / 1e6


@torch.no_grad()
def multiply_adds_m(model: torch.nn.Module, in_chans: int, resolution: int) -> float:
    """Multiply-adds (millions) of one forward pass on one image."""
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(1, in_chans, resolution, resolution, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() / 2 / 1e6
