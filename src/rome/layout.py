"""The memory layout of a run: ``search.channels_last`` / ``train.channels_last`` = auto | true | false.

``auto`` (the default) is a fixed rule per device *type*, never a timing taken at run time, so every
rank of a run, a resumed run and a rerun on the same machine all make the same choice:

  * CPU with oneDNN (``torch.backends.mkldnn``): NHWC. ``python -m benchmarks speed`` on the 2-core
    development CPU at the paper's size (batch 64, 8 cells, 16 channels, 32 px, 2 threads, medians of
    3 fresh processes, 2026-12-07; benchmarks/results/speed_cpu.json): ROME K=1 search iteration
    1.702 -> 1.049 s (x 0.616), GDAS 2.768 -> 1.823 s (x 0.659), DARTS-V2 retraining step
    0.699 -> 0.511 s (x 0.731). oneDNN's convolutions are NHWC-native; NCHW inputs are reordered
    around every call.
  * CUDA: NHWC (cuDNN's preferred layout; not measured here: no GPU was available).
  * anything else (a CPU build without oneDNN, MPS, ...): NCHW, the layout no kernel penalises.

The choice is a fact of the run, not of its result: the params keep the word ``auto`` (so the
artifacts' provenance and params hash are the same on every machine) and the resolved layout goes to
the run record (``write_run_record``). What the layout can change is the float rounding of the
convolutions (another kernel, another summation order): on one machine the same params always give
the same bytes; two machines that resolve ``auto`` differently give numerically close, not
byte-identical, weights, as two different CPUs already do.
"""

from __future__ import annotations

from typing import Literal

import torch

ChannelsLast = Literal["auto", True, False]


def nhwc_preferred(device: torch.device) -> bool:
    """The rule behind ``auto``: NHWC where the device's convolution library is NHWC-native."""
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available())
    return False


def use_channels_last(setting: ChannelsLast | str | bool, device: torch.device | str) -> bool:
    """``channels_last`` as the run uses it: true / false as given, ``auto`` by ``nhwc_preferred``."""
    if setting == "auto":
        return nhwc_preferred(torch.device(device))
    return bool(setting)


def memory_format(channels_last: bool) -> torch.memory_format:
    """The torch memory format of a resolved layout."""
    return torch.channels_last if channels_last else torch.contiguous_format
