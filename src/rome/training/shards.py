"""Which training images each process reads, so that N processes train on what one process trains on.

timm's train.py gives each rank a ``DistributedSampler`` shard: the global batch then depends on
the number of processes. Here the in-memory train split keeps one global order (the seeded
shuffle one process uses), is cut into global batches of ``train.batch_size``, and rank r reads
the r-th of N equal slices of each: the union of the ranks' batches is the one-process batch.

Augmentation draws its randomness per image from (epoch seed, image index) instead of from the
process's RNG stream, so an image gets the same crop and flip whichever rank (or DataLoader worker)
reads it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, RandomSampler, Sampler

from rome.errors import RomeError


class RankSlices(Sampler[list[int]]):
    """Global batches of a seeded shuffle (drop_last), this rank's contiguous slice of each."""

    def __init__(self, n_images: int, global_batch: int, rank: int, world_size: int,
                 generator: torch.Generator) -> None:
        if global_batch % world_size:
            raise RomeError(f"train.batch_size = {global_batch}: expected a multiple of the number of "
                            f"processes ({world_size}); it is the global batch, split evenly over them")
        self.batches = BatchSampler(RandomSampler(range(n_images), generator=generator), global_batch, drop_last=True)
        self.per_rank = global_batch // world_size
        self.rank = rank

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        lo = self.rank * self.per_rank
        for batch in self.batches:
            yield batch[lo:lo + self.per_rank]


def image_seed(epoch_seed: int, index: int) -> int:
    return int(np.random.SeedSequence([epoch_seed, index]).generate_state(1)[0])


class SeededImages(Dataset):
    """``dataset[index]`` with the torch RNG (and Python's ``random``, which timm's RandomResizedCrop
    draws from) seeded from (``epoch_seed``, index) for that one call (the caller's streams are left
    as they were). Set ``epoch_seed`` before each epoch."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.epoch_seed = 0

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        seed = image_seed(self.epoch_seed, index)
        saved = random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                random.seed(seed)
                return self.dataset[index]
        finally:
            random.setstate(saved)
