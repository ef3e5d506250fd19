"""Torch datasets over prepared uint8 tensors (in memory; streamed sets: rome.data.stream), and the
one-line form of an error raised inside a DataLoader worker."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from rome.data.normalize import channel_stats, to_unit
from rome.errors import RomeError


class ImageTensorDataset(Dataset):
    """uint8 N,C,H,W images -> normalised float C,H,W (after an optional transform on the float image)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 N,C,H,W, got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels, self.transform = images, labels, transform
        self.mean, self.std = channel_stats(mean, std, batched=False)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = to_unit(self.images[index])
        if self.transform is not None:
            img = self.transform(img)
        return (img - self.mean) / self.std, self.labels[index]


def worker_errors(batches: Iterable[Any]) -> Iterator[Any]:
    """Re-raise a worker's RomeError as the one line it was (DataLoader wraps it in a traceback)."""
    try:
        yield from batches
    except RomeError as exc:
        lines = str(exc).strip().splitlines()
        prefix = "rome.errors.RomeError: "
        if len(lines) > 1 and lines[-1].startswith(prefix):
            raise RomeError(lines[-1][len(prefix):]) from None
        raise
