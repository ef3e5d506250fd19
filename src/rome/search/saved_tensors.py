"""Bytes autograd saves for backward per forward pass: the activation memory of a sub-network on any device."""

from __future__ import annotations

from typing import Any

import torch


class SavedTensorMeter:
    """Per forward pass of ``model``, the bytes autograd saves for backward (via ``saved_tensors_hooks``).

    Parameters (``exclude``) are not activations and are skipped; a storage saved twice counts once.
    ``peak`` is the largest running total of a pass, ``passes`` every pass's total (the spread over
    samples). With ``forward_only`` only what is saved inside the model's forward counts: the relaxed
    alpha/beta weights, built before the forward, are then left out (what the memory benchmark wants).
    """

    def __init__(self, model: torch.nn.Module, exclude: list[torch.Tensor], *, forward_only: bool = False) -> None:
        self.exclude = {p.untyped_storage().data_ptr() for p in exclude}
        self.forward_only = forward_only
        self.current: dict[int, int] = {}
        self.total = 0
        self.peak = 0
        self.passes: list[int] = []
        self._in_forward = False
        self._handles = [model.register_forward_pre_hook(self._start_pass), model.register_forward_hook(self._end_pass)]
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _start_pass(self, *_: Any) -> None:
        self.current, self.total, self._in_forward = {}, 0, True

    def _end_pass(self, *_: Any) -> None:
        self._in_forward = False
        self.passes.append(self.total)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        if self._in_forward or not self.forward_only:
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in self.exclude and ptr not in self.current:  # a running total: O(1) per saved tensor
                self.current[ptr] = storage.nbytes()
                self.total += self.current[ptr]
                self.peak = max(self.peak, self.total)
        return t

    def __enter__(self) -> SavedTensorMeter:
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)
        for handle in self._handles:
            handle.remove()
