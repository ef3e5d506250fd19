"""The process group of a run started by ``torchrun`` (or one process): who I am, and the reductions
that make N processes compute what one process computes.

Why one object: the search step, the loop, the stages and the CLI all need the same few facts
(rank, world size, "am I the writer?") and the same few collectives; passing one ``ProcessGroup``
keeps ``torch.distributed`` out of the numerical code and makes the single process a group of one
whose reductions do nothing (so one process runs exactly the code it ran before).

The search splits its K draws over the ranks (``share``: rank r takes draws r, r+N, ...) and sums
the per-rank gradients (``mean_over_draws`` for alpha/beta, ``sum_over_draws`` for the weights). A gradient that no draw on any rank produced stays
``None`` on every rank, as in one process: SGD and Adam skip such a parameter (no momentum, no
weight decay), which a zero gradient would not.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from rome.errors import RomeError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place among the run's ``world_size`` processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    mode: str = "draws"
    batchnorm: BatchNormReplay | BatchNormAverage | None = field(default=None, repr=False)

    def for_model(self, model: torch.nn.Module, mode: str = "draws") -> ProcessGroup:
        """This group for one search model, sharing the K draws (``draws``, exact) or the batch
        (``batch``, data parallel). Its reductions also keep the model's BatchNorm running
        statistics equal on every rank: replayed in one-process order (draws) or averaged (batch).
        One process: the group itself."""
        if mode not in MODES:
            raise RomeError(f"search.parallel = {mode!r}: expected one of {', '.join(MODES)}")
        if not self.distributed:
            return self
        bn = (BatchNormReplay(model, self.rank, self.world_size) if mode == "draws"
              else BatchNormAverage(model, self.world_size))
        return replace(self, mode=mode, batchnorm=bn)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes artifacts, checkpoints, run records and W&B."""
        return self.rank == 0

    # ------------------------------------------------------------------ the K draws of a search step

    def share(self, draws: Sequence[T]) -> list[T]:
        """This rank's draws: r, r+N, r+2N, ... (every rank drew all K from the same stream); in
        ``batch`` mode all of them."""
        if self.mode == "batch":
            return list(draws)
        return list(draws[self.rank::self.world_size])

    def shard(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's part of a batch every rank took: the r-th of N equal slices in ``batch``
        mode, the whole batch otherwise."""
        if self.mode != "batch" or not self.distributed:
            return batch
        x, y = batch
        per = len(y) // self.world_size
        return x[self.rank * per:(self.rank + 1) * per], y[self.rank * per:(self.rank + 1) * per]

    def mean_over_draws(self, params: Sequence[torch.Tensor], local_mean: float, n_local: int, k: int) -> float:
        """Architecture gradients: each rank holds the MEAN over its ``n_local`` draws; afterwards every
        rank holds the mean over all K draws (sum over ranks of n_local/K x local mean). Returns the
        mean loss over the K draws. One process: nothing to do."""
        if not self.distributed:
            return local_mean
        if self.batchnorm is not None:
            self.batchnorm.replay()
        if self.mode == "batch":  # every rank: the mean over K of its slice's gradient; mean over slices
            self._sum_grads(list(params), 1 / self.world_size)
            return self.mean_floats(local_mean)[0]
        self._sum_grads(list(params), n_local / k)
        return self._sum_floats(local_mean * n_local / k)[0]

    def sum_over_draws(self, params: Sequence[torch.Tensor], local_means: Sequence[float], n_local: int,
                       k: int) -> list[float]:
        """Weight gradients: each rank holds the SUM over its draws; afterwards every rank holds the
        sum over all K draws. ``local_means`` (loss, accuracy over this rank's draws) become means over
        the K draws. One process: nothing to do."""
        if not self.distributed:
            return list(local_means)
        if self.batchnorm is not None:
            self.batchnorm.replay()
        if self.mode == "batch":  # every rank: the sum over K of its slice's gradient; mean over slices
            self._sum_grads(list(params), 1 / self.world_size)
            return self.mean_floats(*local_means)
        self._sum_grads(list(params), 1.0)
        return self._sum_floats(*(m * n_local / k for m in local_means))

    def mean_floats(self, *values: float) -> list[float]:
        """Mean over ranks of per-rank figures (a training epoch's loss and accuracy on equal slices)."""
        if not self.distributed:
            return list(values)
        return [v / self.world_size for v in self._sum_floats(*values)]

    def _sum_grads(self, params: list[torch.Tensor], local_scale: float) -> None:
        """Set each ``p.grad`` to the sum over ranks of ``local_scale`` x the local ``p.grad``.

        A parameter without a gradient on every rank keeps ``None``; one with a gradient on some
        rank gets the sum (zeros where a rank had none). One flat all-reduce for the values, one for
        the presence flags.
        """
        if not params:
            return
        device = params[0].device
        present = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
        dist.all_reduce(present)
        flat = torch.cat([(p.grad.float() if p.grad is not None else torch.zeros(p.numel(), device=device)).reshape(-1)
                          for p in params])
        if local_scale != 1.0:
            flat.mul_(local_scale)
        dist.all_reduce(flat)
        offset = 0
        for p, n_present in zip(params, present.tolist()):
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).to(p.dtype).clone() if n_present > 0 else None
            offset += n

    def _sum_floats(self, *values: float) -> list[float]:
        # NCCL reduces CUDA tensors only
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


class BatchNormReplay:
    """BatchNorm running statistics across ranks, as one process would have them.

    In one process every forward of the K draws (train mode) moves the running mean/var of the
    BatchNorm layers it passes, one exponential update after the other in draw order. Across ranks
    each rank sees only its draws, so hooks record, per BatchNorm call, the batch mean and unbiased
    variance with the global draw index (rank + i x N for this rank's i-th forward since the last
    replay); ``replay`` gathers every rank's records, resets the touched layers to where they were
    and applies all updates in the one-process order. Every rank then holds the same buffers, equal
    to one process's up to the rounding of the recomputed batch statistics.
    """

    def __init__(self, model: torch.nn.Module, rank: int, world_size: int) -> None:
        self.rank, self.world_size = rank, world_size
        self.forwards = 0
        self.records: list[tuple[int, int, str, torch.Tensor, torch.Tensor]] = []
        self.before: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.layers: dict[str, torch.nn.modules.batchnorm._BatchNorm] = {}
        model.register_forward_pre_hook(self._count_forward)
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
                if module.momentum is None:
                    raise RomeError(f"BatchNorm {name}: momentum = None (cumulative average) is not supported "
                                    "across processes; expected a float momentum")
                self.layers[name] = module
                module.register_forward_pre_hook(self._recorder(name))

    def _count_forward(self, module: torch.nn.Module, args: Any) -> None:
        if module.training:
            self.forwards += 1

    def _recorder(self, name: str) -> Any:
        def record(module: torch.nn.modules.batchnorm._BatchNorm, args: Any) -> None:
            if not module.training:
                return
            x = args[0].detach().float()
            dims = [0, *range(2, x.dim())]
            if name not in self.before:
                self.before[name] = (module.running_mean.clone(), module.running_var.clone(),
                                     module.num_batches_tracked.clone())
            draw = self.rank + (self.forwards - 1) * self.world_size
            # kept on the device: one transfer per phase in ``replay``, not a sync per layer
            self.records.append((draw, len(self.records), name, x.mean(dims), x.var(dims, unbiased=True)))
        return record

    @torch.no_grad()
    def replay(self) -> None:
        meta = [(draw, seq, name, mean.numel()) for draw, seq, name, mean, _ in self.records]
        flat = torch.cat([torch.cat([mean, var]) for *_, mean, var in self.records]).cpu() if self.records else None
        gathered_raw: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered_raw, (meta, flat))
        gathered = []
        for rank_meta, rank_flat in gathered_raw:
            offset, rows = 0, []
            for draw, seq, name, c in rank_meta:
                rows.append((draw, seq, name, rank_flat[offset:offset + c], rank_flat[offset + c:offset + 2 * c]))
                offset += 2 * c
            gathered.append(rows)
        for name, (mean, var, count) in self.before.items():
            layer = self.layers[name]
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var)
            layer.num_batches_tracked.copy_(count)
        for _, _, name, mean, var in sorted((r for rank_records in gathered for r in rank_records),
                                            key=lambda r: (r[0], r[1])):
            layer = self.layers[name]
            m = layer.momentum
            layer.running_mean.mul_(1 - m).add_(mean.to(layer.running_mean), alpha=m)
            layer.running_var.mul_(1 - m).add_(var.to(layer.running_var), alpha=m)
            layer.num_batches_tracked.add_(1)
        self.records, self.before, self.forwards = [], {}, 0


class BatchNormAverage:
    """Data-parallel search: each rank's BatchNorm saw only its slice of the batch; the running
    statistics are averaged over the ranks after each phase, so every rank evaluates (and rank 0
    checkpoints) the same buffers."""

    def __init__(self, model: torch.nn.Module, world_size: int) -> None:
        self.world_size = world_size
        self.buffers = [b for m in model.modules()
                        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats
                        for b in (m.running_mean, m.running_var)]

    @torch.no_grad()
    def replay(self) -> None:
        if not self.buffers:
            return
        flat = torch.cat([b.reshape(-1) for b in self.buffers])
        dist.all_reduce(flat)
        flat.div_(self.world_size)
        offset = 0
        for b in self.buffers:
            b.copy_(flat[offset:offset + b.numel()].view_as(b))
            offset += b.numel()


MODES = ("draws", "batch")
SINGLE = ProcessGroup()


def launched_by_torchrun() -> bool:
    """torchrun (and torch.distributed.launch) set WORLD_SIZE, RANK and MASTER_ADDR for every worker."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo on the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def local_device(device: torch.device) -> torch.device:
    """On CUDA: this rank's GPU (``LOCAL_RANK``); the CPU stays the CPU."""
    if device.type != "cuda":
        return device
    index = int(os.environ.get("LOCAL_RANK", "0"))
    if index >= torch.cuda.device_count():
        raise RomeError(f"LOCAL_RANK = {index}: this node has {torch.cuda.device_count()} GPU(s); "
                        "expected torchrun --nproc_per_node <= the number of GPUs")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


_current: ProcessGroup = SINGLE


def current() -> ProcessGroup:
    """The group ``init`` joined (a group of one outside torchrun)."""
    return _current


def init(device: torch.device) -> ProcessGroup:
    """Join the torchrun group (idempotent); outside torchrun: the group of one."""
    global _current
    if not launched_by_torchrun():
        _current = SINGLE
        return _current
    local_device(device)
    if not dist.is_initialized():
        # a generous timeout: rank 0 alone writes artifacts while the others wait at a barrier
        dist.init_process_group(backend_for(device), timeout=datetime.timedelta(minutes=60))
    _current = ProcessGroup(dist.get_rank(), dist.get_world_size())
    logger.debug(f"rome: rank {_current.rank} of {_current.world_size} ({dist.get_backend()})")
    return _current


def shutdown() -> None:
    global _current
    if dist.is_initialized():
        dist.destroy_process_group()
    _current = SINGLE


@contextlib.contextmanager
def joined(device: torch.device) -> Iterator[ProcessGroup]:
    """``init`` ... ``shutdown`` around a stage run."""
    group = init(device)
    try:
        yield group
    finally:
        if group.distributed:
            shutdown()
