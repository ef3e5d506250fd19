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
the compute device once, so no DataLoader workers are needed. A streamed split (``StreamBatches``)
draws the same indices and crops here and has ``search.workers`` processes decode and crop them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from rome.data.augmentation import apply_crop_flip, crop_padding, draw_crop_flip
from rome.data.normalize import channel_stats, normalize


class BatchOrder:
    """The random part of the batch stream: a permutation per pass, the position in it, and each
    batch's crop draws, all from one generator; ``state_dict`` is the exact position."""

    def __init__(self, n_images: int, batch_size: int, generator: torch.Generator, augment: str,
                 resolution: int) -> None:
        if batch_size > n_images:
            raise ValueError(f"batch size {batch_size} > {n_images} images")
        if augment not in ("none", "crop", "crop_flip"):
            raise ValueError(f"augment {augment!r}: expected none, crop or crop_flip (resolve 'auto' first)")
        self.n, self.batch_size, self.generator, self.augment = n_images, batch_size, generator, augment
        self.pad = crop_padding(resolution)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(indices, crop offsets or None, flips or None) of the next batch."""
        if self.perm is None or self.pos + self.batch_size > len(self.perm):
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        if self.augment == "none":
            return idx, None, None
        return idx, *draw_crop_flip(len(idx), self.pad, self.augment == "crop_flip", self.generator)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.pos = state["perm"], int(state["pos"])


class EndlessBatches:
    """``next()`` gives (x, y) forever; ``state_dict()`` / ``load_state_dict()`` capture the exact position."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, mean: Sequence[float],
                 std: Sequence[float], generator: torch.Generator, device: torch.device | str = "cpu",
                 channels_last: bool = False, augment: str = "none") -> None:
        self.order = BatchOrder(len(labels), batch_size, generator, augment, images.shape[2])
        self.augment = augment
        self.images, self.labels = images.to(device), labels.to(device)
        self.batch_size, self.generator, self.channels_last = batch_size, generator, channels_last
        self.mean, self.std = channel_stats(mean, std, device)

    @property
    def batches_per_pass(self) -> int:
        return len(self.labels) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx, offsets, flipped = self.order.next()
        idx = idx.to(self.images.device)
        images = self.images[idx]
        if offsets is not None:
            images = apply_crop_flip(images, offsets, flipped, self.order.pad)
        return normalize(images, self.mean, self.std, self.channels_last), self.labels[idx]

    def in_order(self, max_batches: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The split in stored order, normalised, without augmentation (the per-epoch validation)."""
        return sequential_batches(self.images, self.labels, self.batch_size, self.mean, self.std, max_batches,
                                  self.channels_last)

    def state_dict(self) -> dict[str, Any]:
        return self.order.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order.load_state_dict(state)

    def close(self) -> None:
        """Nothing to stop (``StreamBatches.close`` stops its workers)."""


class StreamBatches:
    """``EndlessBatches`` over a streamed split (rome.data.stream): the same indices and crop draws,
    made in this process from the same generator, the images decoded and cropped by DataLoader workers.

    Workers run ahead of the search (prefetch), so the order's state is snapshotted after each planned
    batch and ``state_dict()`` is the snapshot of the last batch *consumed*: a checkpoint resumes at
    the next batch the loop would have read, whatever the workers had prefetched."""

    def __init__(self, dataset: Any, batch_size: int, mean: Sequence[float], std: Sequence[float],
                 generator: torch.Generator, device: torch.device | str = "cpu", channels_last: bool = False,
                 augment: str = "none", workers: int = 0) -> None:
        self.order = BatchOrder(len(dataset), batch_size, generator, augment, dataset.split.resolution)
        self.dataset, self.labels, self.augment, self.workers = dataset, dataset.split.labels, augment, workers
        self.batch_size, self.channels_last, self.device = batch_size, channels_last, torch.device(device)
        self.mean, self.std = channel_stats(mean, std, device)
        self._consumed = self.order.state_dict()
        self._planned: deque[dict[str, Any]] = deque()
        self._loader: Iterator[Any] | None = None
        self._batches: Iterator[Any] | None = None

    @property
    def batches_per_pass(self) -> int:
        return len(self.labels) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def _plans(self) -> Iterator[list[Any]]:
        while True:
            idx, offsets, flipped = self.order.next()
            self._planned.append(self.order.state_dict())
            if offsets is None:
                yield [int(i) for i in idx]
            else:
                flips = flipped.tolist() if flipped is not None else [None] * len(idx)
                yield [(int(i), int(o[0]), int(o[1]), f) for i, o, f in zip(idx, offsets, flips)]

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._batches is None:
            from torch.utils.data import DataLoader

            from rome.data.loaders import worker_errors

            self._loader = iter(DataLoader(self.dataset, batch_sampler=_Plans(self._plans), num_workers=self.workers,
                                           pin_memory=self.device.type == "cuda"))
            self._batches = worker_errors(self._loader)
        images, labels = next(self._batches)
        self._consumed = self._planned.popleft()
        images = images.to(self.device, non_blocking=True)
        return normalize(images, self.mean, self.std, self.channels_last), labels.to(self.device, non_blocking=True)

    def in_order(self, max_batches: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The split in stored order, normalised, without augmentation, decoded by the workers."""
        from rome.data.stream import in_order

        for images, labels in in_order(self.dataset, self.batch_size, self.workers, max_batches,
                                       pin_memory=self.device.type == "cuda"):
            yield (normalize(images.to(self.device), self.mean, self.std, self.channels_last),
                   labels.to(self.device))

    def state_dict(self) -> dict[str, Any]:
        return dict(self._consumed)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.close()
        self.order.load_state_dict(state)
        self._consumed = dict(state)

    def close(self) -> None:
        """Stop the workers now and rewind to the last consumed batch (the next batch starts new ones).

        Dropping the loader's last references shuts its workers down at once; left to the cycle
        collector (the loader's sampler refers back to this object) it took 5 s per worker."""
        self._batches = self._loader = None
        self._planned.clear()
        self.order.load_state_dict(self._consumed)


class _Plans:
    """A batch sampler DataLoader can iterate (in this process) over a generator of planned batches."""

    def __init__(self, plans: Any) -> None:
        self.plans = plans

    def __iter__(self) -> Iterator[Any]:
        return self.plans()


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
