"""Cost estimates before a run: time a few warmed-up calls of the real step, project, compare memory.

Why: a paper-scale search costs GPU-days; a user should know the time and whether it fits the
device from seconds of measurement on *their* device, not from figures quoted from a paper.

The rule (used by ``rome search --estimate`` and ``rome table --estimate``): ``WARMUP`` calls are
run and discarded (allocator, cuDNN autotuning, first-touch page faults), then ``REPEATS`` calls are
timed one by one; the *median* is the per-call figure (robust to a neighbour's burst on a shared
machine). Peak memory is what the run itself reports: CUDA max-allocated on a GPU, the process's
peak resident set size on a CPU. The device's capacity is the GPU's total memory, or on a CPU the
RAM available to this process (available now plus what it already holds).
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

WARMUP = 2
REPEATS = 5


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Timing:
    """The first (cold) call and the median of the warmed-up ones, in seconds."""

    first: float
    median: float

    @property
    def startup(self) -> float:
        """What the first call costs beyond a warm one (paid once per run)."""
        return max(0.0, self.first - self.median)


def time_calls(call: Callable[[], object], device: torch.device, warmup: int = WARMUP,
               repeats: int = REPEATS) -> Timing:
    """The first call's seconds, then the median over ``repeats`` timed calls after the ``warmup`` (first included)."""
    synchronize(device)
    t0 = time.perf_counter()
    call()
    synchronize(device)
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        call()
    synchronize(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return Timing(first, statistics.median(times))


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: max allocated since the last reset; CPU: the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def capacity_mb(device: torch.device) -> tuple[float, str]:
    """(MiB the run may use, what that figure is): the GPU's total memory, or the RAM this process can have."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return props.total_memory / 2**20, f"{props.name} total memory"
    import psutil

    held = psutil.Process().memory_info().rss
    return (psutil.virtual_memory().available + held) / 2**20, "RAM available to this process"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def duration(seconds: float) -> str:
    """Seconds as a human reads a cost: 42 s, 12.5 min, 3.2 h, 1.4 GPU-days (as days)."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.2f} days"


@dataclass(frozen=True)
class StageEstimate:
    """One stage's projection: the timed per-iteration figure and how it scales to the whole run."""

    stage: str
    seconds_per_iteration: float
    startup_seconds: float  # the first iteration's and first evaluation's extra time, once per run
    iterations: int  # optimizer iterations over the whole run (steps per epoch x epochs)
    eval_seconds_per_epoch: float  # the per-epoch validation / test pass
    epochs: int
    peak_mb: float
    capacity_mb: float
    capacity_what: str
    device: str

    @property
    def total_seconds(self) -> float:
        return (self.startup_seconds + self.seconds_per_iteration * self.iterations
                + self.eval_seconds_per_epoch * self.epochs)

    @property
    def fits(self) -> bool:
        return self.peak_mb <= self.capacity_mb

    def lines(self) -> list[str]:
        steps = self.iterations // max(self.epochs, 1)
        return [
            f"{self.stage} on {self.device}:",
            f"  {self.seconds_per_iteration:.4g} s per iteration (median of {REPEATS} after {WARMUP} warm-up)",
            f"  {self.epochs} epochs x ({steps} iterations + {self.eval_seconds_per_epoch:.3g} s evaluation)"
            f" + {self.startup_seconds:.3g} s start-up = {duration(self.total_seconds)} projected",
            f"  peak memory {self.peak_mb:,.0f} MiB of {self.capacity_mb:,.0f} MiB ({self.capacity_what}): "
            + ("fits" if self.fits else "DOES NOT FIT"),
        ]
