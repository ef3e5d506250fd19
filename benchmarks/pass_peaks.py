"""Peak memory of each forward/backward pass of a model: process RSS on Linux, allocated bytes on CUDA.

A pass runs from one forward of ``model`` to the next (its backward and any optimiser step after it
included). At each forward the previous pass's peaks are read and the counters reset: the kernel's
peak RSS (``VmHWM``, reset by writing 5 to ``/proc/self/clear_refs``) and, on a GPU,
``torch.cuda.max_memory_allocated`` (reset by ``reset_peak_memory_stats``). Both are host-side reads:
no device synchronisation, so timings are not disturbed. So every method's memory is a statistic over
passes, whatever the number of passes its iteration makes (2 for GDAS, 2K for ROME).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def rss_hwm_mb() -> float | None:
    """The process's peak RSS since start or the last reset (``VmHWM``, MB); None where /proc has none."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_rss_hwm() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False where the kernel does not allow it."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


class PassPeaks:
    """Per-pass peak RSS (MB, None where it cannot be reset) and CUDA max allocated (MB, on a GPU)."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device
        self.rss: list[float | None] = []
        self.cuda_mb: list[float] = []
        self._open = False
        self._rss_resettable = True
        self._handle = model.register_forward_pre_hook(self._boundary)

    def _reset(self) -> None:
        self._rss_resettable = reset_rss_hwm()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def _read(self) -> None:
        self.rss.append(rss_hwm_mb() if self._rss_resettable else None)
        if self.cuda:
            self.cuda_mb.append(torch.cuda.max_memory_allocated(self.device) / 2**20)

    def _boundary(self, *_: Any) -> None:
        if self._open:
            self._read()
        self._reset()
        self._open = True

    def close(self) -> None:
        """End the last pass (call after the last step, synchronised) and remove the hook."""
        if self._open:
            self._read()
            self._open = False
        self._handle.remove()
