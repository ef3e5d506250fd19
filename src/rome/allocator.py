"""Keep freed memory in the process (glibc ``mallopt``) where a compiled network would re-fault it.

Why (issue 23, benchmarks/README.md section 6, ``python -m benchmarks compile_trend [--allocator
default]``): on the 2-core development CPU the process that compiles the DARTS-V2 retraining network
cold stepped in 0.544 s, slower than eager channels_last (0.495 s), and took 120,056 minor page faults
per step against 39,155 for the same kernels loaded from a warm Inductor cache and 5,878 eager.
glibc's malloc adapts its mmap and trim thresholds to what the process allocated before; after a cold
compile it ends up returning the step's buffers to the kernel at every free and faulting fresh zeroed
pages in again. With the two thresholds fixed (``M_MMAP_THRESHOLD`` 32 MiB, ``M_TRIM_THRESHOLD``
2 GiB) the cold process took 9 faults per step and stepped in 0.398 s (x 0.90 of eager), the warm
one 0.384 s. Eager steps did not change (0.455 s vs 0.454 s in a paired probe), so only a process
that compiles sets them (``rome.training.compile.compiled_forward``).

What it costs: memory freed below 32 MiB stays mapped to the process rather than going back to the
kernel, so the resident set stays near the run's largest step instead of dropping between steps
(whether fragmentation raises the peak itself is not measured). Numerics are untouched: the
allocator only decides where memory comes from.

Left alone: other C libraries (musl, macOS), any process whose user chose the allocator's
behaviour already (a ``MALLOC_*`` variable, ``GLIBC_TUNABLES`` or an ``LD_PRELOAD`` such as jemalloc or
tcmalloc), and ``ROME_ALLOCATOR=default`` (glibc's adaptive default, as before; ``python -m benchmarks
compile_trend --allocator default`` measures it).
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest mmap threshold on 64-bit (HEAP_MAX_SIZE / 2): larger is refused
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes a C int
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                 "GLIBC_TUNABLES", "LD_PRELOAD")


def keep_freed_memory() -> str:
    """Fix glibc's mmap and trim thresholds for this process; a short phrase says what was done (for the log)."""
    if os.environ.get("ROME_ALLOCATOR", "") == "default":
        return "allocator left as glibc's default (ROME_ALLOCATOR=default)"
    chosen = [name for name in USER_SETTINGS if os.environ.get(name)]
    if chosen:
        return f"allocator left as the environment set it ({', '.join(chosen)})"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "allocator unchanged (not glibc)"
    libc = ctypes.CDLL(None)
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not ok:
        return "allocator unchanged (glibc refused mallopt)"
    return "glibc malloc keeps freed memory (mmap threshold 32 MiB, trim threshold 2 GiB: no page faults per step)"
