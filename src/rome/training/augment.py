"""Train-time augmentation of the DARTS protocol, sized to the prepared resolution.

DARTS (CIFAR, 32 px): RandomCrop(32, padding 4) + horizontal flip, then cutout 16 after
normalisation. Here the padding and the cutout side scale with the resolution (res / 8 and
res / 2), so a 16 px dataset gets padding 2 and an 8 x 8 cutout. A streamed dataset
(rome.data.stream) gets the same above up to 64 px and timm's ImageNet transform beyond.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass
class TrainTransform:
    """Retraining's per-image transform; ``on_pixels``: it takes the prepared uint8 pixels, else the PIL image."""

    fn: Callable[[Any], torch.Tensor]
    on_pixels: bool

    def __call__(self, img: Any) -> torch.Tensor:
        return self.fn(img)


def stream_train_transform(resolution: int, channels: int, flip: bool, mean: tuple[float, ...],
                           std: tuple[float, ...]) -> TrainTransform:
    """A streamed retraining's per-image transform. Up to 64 px (rome.data.stream.SMALL_RESOLUTION) the
    in-memory retraining's own (``ImageTensorDataset``'s arithmetic with ``train_transform`` on the same
    pixels: the same numbers, so streaming CIFAR trains as in memory); above it timm's
    ImageNet transform (RandomResizedCrop, flip, ColorJitter 0.4, normalise) on the decoded original."""
    from rome.data.stream import SMALL_RESOLUTION

    if resolution <= SMALL_RESOLUTION:
        from rome.data.normalize import channel_stats, to_unit

        crop = train_transform(resolution, flip)
        m, s = channel_stats(mean, std, batched=False)

        def small(pixels: torch.Tensor) -> torch.Tensor:  # ImageTensorDataset.__getitem__'s arithmetic
            return (crop(to_unit(pixels)) - m) / s

        return TrainTransform(small, on_pixels=True)
    from timm.data import create_transform

    return TrainTransform(create_transform(input_size=(channels, resolution, resolution), is_training=True,
                                           hflip=0.5 if flip else 0.0, color_jitter=0.4, mean=mean, std=std,
                                           re_prob=0.0), on_pixels=False)


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
