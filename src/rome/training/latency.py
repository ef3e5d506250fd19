"""Inference latency of one batch on the current device: median after warm-up."""

from __future__ import annotations

import statistics
import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def batch_latency_ms(model: torch.nn.Module, batch: torch.Tensor, repeats: int, warmup: int = 2) -> float:
    """Median wall time (ms) of ``repeats`` eval-mode forwards of ``batch``, after ``warmup`` untimed ones.

    The median (not the mean) because a shared CPU gives a few slow outliers; warm-up absorbs
    allocator growth and cuDNN autotuning.
    """
    model.eval()
    device = batch.device
    for _ in range(warmup):
        model(batch)
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(batch)
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)
