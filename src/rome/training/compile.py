"""``train.compile`` = auto | true | false: whether ``torch.compile`` pays for a retraining.

timm's ``--torchcompile`` is a switch; ``auto`` (the default) decides it from a projection, made
before the first step and from the params and the network alone, so it is deterministic: the same
params on the same device type always make the same choice (a rerun is byte-identical, a resumed run
decides as the uninterrupted one did, every rank agrees):

    projected eager seconds = epochs x steps x (3 x 2 x multiply-adds per image x batch) / EAGER_FLOP_RATE
    compile  <=>  projected seconds x (1 - COMPILED_RATIO) >= PAYBACK x FIRST_CALL_SECONDS

i.e. the time compilation saves over the whole run must repay its first call ``PAYBACK`` times over.
A forward + backward costs about 3 forwards, a multiply-add 2 FLOPs. The CPU constants are
``python -m benchmarks compile_trend`` on the 2-core development CPU (2026-12-07, benchmarks/README.md
section 6; DARTS-V2 network, batch 64, 8 cells, 16 channels, 32 px, 2 threads, 48 steps after the first
call): eager NHWC 0.444 s/step (0.46-0.51 s in other runs); the network has 43.4 M multiply-adds per
image. The process that compiles cold steps in 0.398 s (x 0.90 of eager; first call 88-96 s) and one
loading the kernels from a warm Inductor cache in 0.384 s. That holds because ``compiled_forward``
first fixes glibc's allocator thresholds (rome.allocator): without that, the cold process re-faulted
~119,000 pages per step and stepped at x 0.86-1.11 of eager (median 1.04 over nine measurements),
which is why an earlier ``auto`` never compiled on the CPU. CUDA's constants are conservative guesses,
unmeasured.
At smoke size (the tests, CI) the projection is milliseconds: auto never compiles there, and the smoke preset says ``false``.
The DARTS drop-path ramp changes the probability every epoch; as a Python float it is a constant
dynamo specialises on, so each epoch recompiled (measured: a new graph per value). A compiled network
therefore reads it from a 0-dim buffer, a graph input (``graph_drop_path``, rome.models.base): one
graph for the whole ramp (tests/test_compile.py counts them). Its masks come from the compiled graph's
random stream, not eager's: the same distribution, other draws, so a compiled run with drop-path is
as good as an eager one but not the same bytes; with ``drop_path`` 0 the two agree to float rounding.

The compiled module wraps the network for the training forward only: checkpoints, the EMA, the
export and the evaluation use the network itself, so the state_dict keys carry no ``_orig_mod.``
prefix and a checkpoint written by a compiled run resumes an eager one and back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from rome.allocator import keep_freed_memory
from rome.training.flops import multiply_adds_m

logger = logging.getLogger(__name__)

# CPU: 3 x 2 x 43.4 M multiply-adds x 64 images / 0.511 s (the eager NHWC step); CUDA: a guess
EAGER_FLOP_RATE = {"cpu": 3.3e10, "cuda": 5.0e12}
# compiled / eager NHWC step in the process that compiles (CPU: measured cold, allocator set; CUDA: a guess)
COMPILED_RATIO = {"cpu": 0.9, "cuda": 0.8}
FIRST_CALL_SECONDS = {"cpu": 90.0, "cuda": 90.0}  # cold-cache first call (CPU: 66-96 s measured; CUDA: a guess)
PAYBACK = 2.0


@dataclass(frozen=True)
class CompileChoice:
    """What ``train.compile`` resolved to, and why (the log line and the run record)."""

    compile: bool
    reason: str
    projected_eager_s: float | None = None


def decide(setting: str | bool, model: torch.nn.Module, *, in_chans: int, resolution: int, batch_size: int,
           total_steps: int, device: torch.device) -> CompileChoice:
    """``train.compile`` for this run: true / false as given, auto by the projection above."""
    if setting is True or setting is False:
        return CompileChoice(bool(setting), f"train.compile = {str(setting).lower()}")
    if device.type not in EAGER_FLOP_RATE:
        return CompileChoice(False, f"train.compile = auto: no measurement for device {device.type}")
    if COMPILED_RATIO[device.type] >= 1:
        return CompileChoice(False, f"train.compile = auto: on {device.type} the compiling process steps "
                                    f"{COMPILED_RATIO[device.type]:g} x as long as eager (measured), so compiling "
                                    "would not repay at any length")
    macs = multiply_adds_m(model, in_chans, resolution) * 1e6
    step_s = 3 * 2 * macs * batch_size / EAGER_FLOP_RATE[device.type]
    projected = total_steps * step_s
    saved = projected * (1 - COMPILED_RATIO[device.type])
    need = PAYBACK * FIRST_CALL_SECONDS[device.type]
    verdict = "repays" if saved >= need else "would not repay"
    return CompileChoice(saved >= need, (
        f"train.compile = auto: {total_steps} steps x ~{step_s:.3g} s projected eager = {projected:.0f} s, "
        f"compiling saves ~{saved:.0f} s, which {verdict} {PAYBACK:g} x the ~{FIRST_CALL_SECONDS[device.type]:.0f} s "
        f"first call on {device.type}"), round(projected, 1))


def compiled_forward(model: torch.nn.Module, drop_path: float) -> torch.nn.Module:
    """``torch.compile(model)``, with the drop-path probability made a graph input when the run ramps
    it (``drop_path`` > 0); at 0 the cells skip drop-path as eager does and no mask is drawn.

    The process's allocator is told to keep freed memory first (rome.allocator): after a cold compile
    glibc otherwise returns and re-faults the step's buffers every step, which made the compiled step
    slower than eager on the development CPU."""
    logger.info(f"train: compiling the network; {keep_freed_memory()}")
    if drop_path > 0 and hasattr(model, "compile_drop_path"):
        model.compile_drop_path(True)
    return torch.compile(model)
