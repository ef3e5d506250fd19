"""Train-time augmentation of the DARTS protocol, sized to the prepared resolution.

DARTS (CIFAR, 32 px): RandomCrop(32, padding 4) + horizontal flip, then cutout 16 after
normalisation. Here the padding and the cutout side scale with the resolution (res / 8 and
res / 2), so a 16 px dataset gets padding 2 and an 8 x 8 cutout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from timm.data.random_erasing import RandomErasing
from torchvision.transforms import v2

from rome.data.augmentation import NO_FLIP_DATASETS, crop_padding, uses_flip  # noqa: F401  (shared with the search)



def train_transform(resolution: int, flip: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-image RandomCrop with zero padding (+ flip) on the float [0, 1] C,H,W image."""
    steps: list[Callable] = [v2.RandomCrop(resolution, padding=crop_padding(resolution))]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


def cutout(probability: float, device: torch.device | str = "cpu") -> RandomErasing | None:
    """timm RandomErasing configured as DARTS cutout: one square of half the side, zero after normalisation.

    Differences from DARTS' own cutout, kept on purpose to use the library: timm places the square
    wholly inside the image (DARTS lets its centre go anywhere, so the square is often clipped) and
    applies it with ``probability`` (DARTS: always, i.e. train.random_erasing = 1.0).
    Returns None when disabled so the loop can skip it.
    """
    if probability <= 0:
        return None
    return RandomErasing(probability=probability, min_area=0.25, max_area=0.25, min_aspect=1.0, max_aspect=1.0,
                         mode="const", device=str(device))
