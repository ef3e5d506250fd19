"""Time and memory of one search iteration (architecture step + weight step), for any space/algorithm/K.

Memory is reported three ways, because on a CPU there is no allocator peak to read:
  * ``saved_mb``: the largest total of tensors autograd saves for backward during one forward pass
    (activations; parameters excluded; a storage saved twice counted once). The K passes of a step
    run one after another, so this is the activation peak of one sub-network;
  * ``cuda_peak_mb``: ``torch.cuda.max_memory_allocated`` over the measured iterations (CUDA only);
  * ``peak_rss_mb``: the process's peak resident set size (includes the Python/torch baseline; run
    one configuration per process, e.g. through ``python -m rome.search.profile``, to compare).

    python -m rome.search.profile --algorithm rome --k 7 --layers 8 --channels 16 --batch 64
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import time
from typing import Any

import torch

from rome.search.algorithms import SearchAlgorithm
from rome.search.saved_tensors import SavedTensorMeter
from rome.search.step import OptimizerSettings, build_step_parts, search_step
from rome.search.supernet import build_supernet
from rome.spaces import get_space


def measure_iteration(space: str = "darts", algorithm: str = "rome", k_samples: int = 1, *, variant: str = "v2",
                      topology: bool = True, layers: int = 8, init_channels: int = 16, batch_size: int = 64,
                      resolution: int = 32, in_channels: int = 3, num_classes: int = 10, nodes: int = 4,
                      device: str | torch.device = "cpu", warmup: int = 1, repeats: int = 3, tau: float = 5.0,
                      channels_last: bool = False, amp: str = "none", seed: int = 0) -> dict[str, Any]:
    """Seconds per iteration (median over ``repeats`` after ``warmup``) and memory of one search iteration.

    The iteration is the loop's own (``rome.search.step.search_step`` with the paper's optimiser
    settings), on random data of the given shape. The peak RSS is read before the saved-tensor meter
    runs: its hooks keep saved tensors alive in reference cycles and would inflate it.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    sp = get_space(space, nodes)
    algo = SearchAlgorithm(algorithm, sp, variant=variant, topology=topology, k_samples=k_samples,
                           generator=torch.Generator().manual_seed(seed))
    algo.arch.to(device)
    model = build_supernet(sp, init_channels, num_classes, layers, in_channels, partial=algo.partial).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.randn(batch_size, in_channels, resolution, resolution, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, num_classes, (batch_size,), device=device)
    parts = build_step_parts(model, algo, OptimizerSettings(), torch.Generator().manual_seed(seed + 1))
    batch = itertools.repeat((x, y))

    def iteration() -> None:
        search_step(parts, batch, batch, tau, amp)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        iteration()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        iteration()
        sync()
        times.append(time.perf_counter() - t0)
    cuda_peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB
    with SavedTensorMeter(model, list(model.parameters()) + list(algo.arch.parameters())) as meter:
        iteration()
    times.sort()
    return {
        "space": space, "algorithm": algorithm, "k_samples": algo.k_samples, "variant": algo.variant,
        "layers": layers, "init_channels": init_channels, "batch_size": batch_size, "resolution": resolution,
        "device": str(device), "torch_threads": torch.get_num_threads(), "amp": amp, "channels_last": channels_last,
        "seconds_per_iteration": round(times[len(times) // 2], 4), "seconds_all": [round(t, 4) for t in times],
        "saved_bytes": meter.peak,
        "saved_mb": round(meter.peak / 2**20, 1),
        "cuda_peak_mb": round(cuda_peak, 1) if cuda_peak is not None else None,
        "peak_rss_mb": peak_rss_mb,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="time and memory of one search iteration; prints one JSON line")
    p.add_argument("--space", default="darts")
    p.add_argument("--algorithm", default="rome")
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--variant", default="v2")
    p.add_argument("--no-topology", action="store_true")
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--amp", default="none", choices=["none", "bf16"])
    a = p.parse_args(argv)
    result = measure_iteration(a.space, a.algorithm, a.k, variant=a.variant, topology=not a.no_topology,
                               layers=a.layers, init_channels=a.channels, batch_size=a.batch, resolution=a.resolution,
                               num_classes=a.classes, device=a.device, warmup=a.warmup, repeats=a.repeats,
                               channels_last=a.channels_last, amp=a.amp)
    print(json.dumps(result), file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
