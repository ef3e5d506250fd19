"""Augmentation facts shared by search and retraining, and the search's batched crop/flip on the device.

DARTS's and GDAS's search loaders apply their train transform, RandomCrop(32, padding 4) + horizontal
flip, to both halves of the CIFAR training data (quark0/darts ``cnn/train_search.py``:
``_data_transforms_cifar10``; D-X-Y/AutoDL-Projects ``get_datasets``). The padding keeps DARTS's 1/8
ratio at other resolutions; digits (mnist5k, SVHN) are cropped but never flipped, since a mirrored
digit is no longer that digit (our choice, the same as retraining's).

The search crops a whole uint8 batch at once where it lives (one pad and one gather, no per-image
loop), with offsets and flips drawn on the CPU from the batch stream's own seeded generator: a
checkpoint that saves that generator replays the same crops, and a crop never depends on the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rome.errors import RomeError

# Datasets whose labels change under a mirror image: handwritten digits (a flipped 2, 3, 7 is no
# longer that digit). The paper is silent (it only trains on CIFAR / ImageNet); our choice.
NO_FLIP_DATASETS = frozenset({"mnist5k", "svhn"})

SEARCH_AUGMENTS = ("auto", "none", "crop", "crop_flip")


def uses_flip(dataset: str) -> bool:
    """Horizontal flip for natural images only; digit datasets are not mirror-invariant."""
    return dataset not in NO_FLIP_DATASETS


def crop_padding(resolution: int) -> int:
    """DARTS pads 4 px on 32 px images: keep the same 1/8 ratio (at least 1 px)."""
    return max(1, resolution // 8)


def resolve_search_augment(mode: str, dataset: str) -> str:
    """``search.augment`` -> ``none`` / ``crop`` / ``crop_flip``; ``auto`` = the references' per dataset
    (CIFAR-10/100 and imagefolder: crop + flip, as retraining; SVHN and mnist5k: crop only)."""
    if mode not in SEARCH_AUGMENTS:
        raise RomeError(f"search.augment = {mode!r}: expected one of {list(SEARCH_AUGMENTS)}")
    if mode != "auto":
        return mode
    return "crop_flip" if uses_flip(dataset) else "crop"


def draw_crop_flip(n: int, pad: int, flip: bool,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The random part of ``random_crop_flip``: (N,2) crop offsets, then (N,) flips when ``flip``.

    Separate so a streamed search can draw them in the main process (where the checkpointed
    generator lives) and apply them in DataLoader workers, with the in-memory path's numbers."""
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    flipped = torch.rand(n, generator=generator) < 0.5 if flip else None
    return offsets, flipped


def apply_crop_flip(images: torch.Tensor, offsets: torch.Tensor, flipped: torch.Tensor | None,
                    pad: int) -> torch.Tensor:
    """The deterministic part: one zero pad and one gather on ``images``' device (see ``random_crop_flip``)."""
    n, c, h, w = images.shape
    dev = images.device
    rows = offsets[:, 0, None].to(dev) + torch.arange(h, device=dev)  # N,H
    cols = torch.arange(w, device=dev).expand(n, w)
    if flipped is not None:
        cols = torch.where(flipped.to(dev)[:, None], w - 1 - cols, cols)
    cols = offsets[:, 1, None].to(dev) + cols  # N,W
    padded = F.pad(images, (pad, pad, pad, pad))  # zeros, as RandomCrop's default fill
    return padded[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def random_crop_flip(images: torch.Tensor, flip: bool, generator: torch.Generator,
                     padding: int | None = None) -> torch.Tensor:
    """RandomCrop(size, padding, zero fill) (+ RandomHorizontalFlip(0.5) when ``flip``) of a N,C,H,W batch.

    Offsets (and flips) come from ``generator`` (a CPU generator), then one zero pad and one gather on
    ``images``' device produce the batch: output[n, :, i, j] = padded[n, :, oy + i, ox + j], with j
    mirrored (w - 1 - j) for flipped images, i.e. the crop first, then the flip (torchvision's order).
    """
    pad = crop_padding(images.shape[2]) if padding is None else padding
    return apply_crop_flip(images, *draw_crop_flip(images.shape[0], pad, flip, generator), pad)
