"""Endless shuffled batches over an in-memory split, with a state that checkpoints the exact position.

The search loop draws one architecture batch and one weight batch per iteration from two of
these; they persist across steps and epochs (a new permutation is drawn from the iterator's own
``torch.Generator`` whenever a pass is used up; the incomplete tail of a pass is dropped so every
batch has ``batch_size`` images). Saving (generator state, permutation, position) makes a resumed
run read exactly the batches an uninterrupted one would.

Augmentation (``search.augment``, resolved by ``rome.data.augmentation.resolve_search_augment``): each
batch is randomly cropped (and flipped) in uint8 on the device, as DARTS's search loaders do for both
halves, with offsets drawn from this iterator's generator, so the saved generator state replays the
same crops; then scaled to [0, 1] and normalised with the prepared mean/std. The uint8 split sits on
the compute device once, so no DataLoader workers are needed (``search.workers`` is unused here).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from rome.data.augmentation import random_crop_flip
from rome.data.normalize import channel_stats, normalize


class EndlessBatches:
    """``next()`` gives (x, y) forever; ``state_dict()`` / ``load_state_dict()`` capture the exact position."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, mean: Sequence[float],
                 std: Sequence[float], generator: torch.Generator, device: torch.device | str = "cpu",
                 channels_last: bool = False, augment: str = "none") -> None:
        if batch_size > len(labels):
            raise ValueError(f"batch size {batch_size} > {len(labels)} images")
        if augment not in ("none", "crop", "crop_flip"):
            raise ValueError(f"augment {augment!r}: expected none, crop or crop_flip (resolve 'auto' first)")
        self.augment = augment
        self.images, self.labels = images.to(device), labels.to(device)
        self.batch_size, self.generator, self.channels_last = batch_size, generator, channels_last
        self.mean, self.std = channel_stats(mean, std, device)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    @property
    def batches_per_pass(self) -> int:
        return len(self.labels) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.perm is None or self.pos + self.batch_size > len(self.perm):
            self.perm = torch.randperm(len(self.labels), generator=self.generator)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.batch_size].to(self.images.device)
        self.pos += self.batch_size
        images = self.images[idx]
        if self.augment != "none":
            images = random_crop_flip(images, self.augment == "crop_flip", self.generator)
        return normalize(images, self.mean, self.std, self.channels_last), self.labels[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.pos = state["perm"], int(state["pos"])


def sequential_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, mean: torch.Tensor,
                       std: torch.Tensor, max_batches: int | None = None,
                       channels_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """In-order batches (the last one may be short) for validation; ``max_batches`` caps them."""
    n_batches = -(-len(labels) // batch_size)
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    for b in range(n_batches):
        sl = slice(b * batch_size, (b + 1) * batch_size)
        yield normalize(images[sl], mean, std, channels_last), labels[sl]
