"""bf16 autocast, the one switch behind ``search.amp`` and ``train.amp``."""

from __future__ import annotations

import contextlib

import torch


def bf16_autocast(device: torch.device, amp: str, *, on_cpu: bool = False) -> contextlib.AbstractContextManager:
    """bf16 autocast when ``amp == "bf16"`` on CUDA (and on the CPU too when ``on_cpu``); else a no-op.

    The search ignores ``search.amp`` on the CPU (its stage says so); retraining honours
    ``train.amp`` on any device (bf16 needs no loss scaler), hence the explicit ``on_cpu``.
    """
    if amp == "bf16" and (device.type == "cuda" or on_cpu):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
