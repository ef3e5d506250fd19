"""uint8 images -> normalised float32, the one conversion search, training and evaluation share."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [0, 1] (a new tensor: augmentations may then work in place)."""
    return images.float().div_(255.0)


def channel_stats(mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu",
                  batched: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std shaped to broadcast over N,C,H,W (``batched``) or C,H,W images."""
    shape = (1, -1, 1, 1) if batched else (-1, 1, 1)
    return (torch.tensor(list(mean), dtype=torch.float32, device=device).view(shape),
            torch.tensor(list(std), dtype=torch.float32, device=device).view(shape))


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 (N,)C,H,W -> normalised float32 (optionally channels_last); ``mean``/``std`` from ``channel_stats``."""
    x = (to_unit(images) - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
