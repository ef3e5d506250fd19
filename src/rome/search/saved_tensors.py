"""Bytes autograd saves for backward per forward pass: the activation memory of a sub-network on any device."""

from __future__ import annotations

import weakref
from typing import Any

import torch


class SavedTensorMeter:
    """Per forward pass of ``model``, the bytes autograd saves for backward (via ``saved_tensors_hooks``).

    Parameters (``exclude``) are not activations and are skipped; a storage saved twice counts once.
    ``peak`` is the largest running total of a pass, ``passes`` every pass's total (the spread over
    samples). With ``forward_only`` only what is saved inside the model's forward counts: the relaxed
    alpha/beta weights, built before the forward, are then left out (what the memory benchmark wants).

    ``live_peak`` is the largest total of counted storages that some graph still holds at one time,
    across passes: it exceeds ``peak`` when a pass starts while an earlier pass's graph is still alive.
    A storage stays live while one of its saved aliases does (``weakref.finalize`` on the alias).
    The pack hook saves a detached alias, not the tensor itself: a saved output would otherwise point
    back at its own ``grad_fn`` (a reference cycle only the cyclic garbage collector frees).
    """

    def __init__(self, model: torch.nn.Module, exclude: list[torch.Tensor], *, forward_only: bool = False) -> None:
        self.exclude = {p.untyped_storage().data_ptr() for p in exclude}
        self.forward_only = forward_only
        self.current: dict[int, int] = {}
        self.total = 0
        self.peak = 0
        self.passes: list[int] = []
        self.live = 0
        self.live_peak = 0
        self._live_refs: dict[int, list[int]] = {}  # storage pointer -> [saved aliases alive, bytes]
        self._in_forward = False
        self._handles = [model.register_forward_pre_hook(self._start_pass), model.register_forward_hook(self._end_pass)]
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _start_pass(self, *_: Any) -> None:
        self.current, self.total, self._in_forward = {}, 0, True

    def _end_pass(self, *_: Any) -> None:
        self._in_forward = False
        self.passes.append(self.total)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        alias = t.detach()
        if self._in_forward or not self.forward_only:
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in self.exclude:
                if ptr not in self.current:  # a running total: O(1) per saved tensor
                    self.current[ptr] = storage.nbytes()
                    self.total += self.current[ptr]
                    self.peak = max(self.peak, self.total)
                self._hold(ptr, storage.nbytes(), alias)
        return alias

    def _hold(self, ptr: int, nbytes: int, alias: torch.Tensor) -> None:
        ref = self._live_refs.get(ptr)
        if ref is None:
            self._live_refs[ptr] = ref = [0, nbytes]
            self.live += nbytes
            self.live_peak = max(self.live_peak, self.live)
        ref[0] += 1
        weakref.finalize(alias, self._release, ptr)

    def _release(self, ptr: int) -> None:
        ref = self._live_refs[ptr]
        ref[0] -= 1
        if ref[0] == 0:
            self.live -= ref[1]
            del self._live_refs[ptr]

    def __enter__(self) -> SavedTensorMeter:
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)
        for handle in self._handles:
            handle.remove()
