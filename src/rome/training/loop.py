"""One training epoch and one validation pass, in the shape of timm's train.py.

What the DARTS protocol adds to timm's loop: the auxiliary-head loss (weight
``aux_weight``; the network returns ``(logits, aux_logits)`` in train mode when built with
``auxiliary=True``) and gradient clipping by norm. The drop-path ramp is set by the caller per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from timm.data import Mixup
from timm.utils import AverageMeter, ModelEmaV3, accuracy, dispatch_clip_grad
from tqdm import tqdm

from rome.data.normalize import channel_stats, normalize
from rome.errors import RomeError
from rome.precision import bf16_autocast


@dataclass
class StepSettings:
    """Per-step knobs of the loop (everything that is not a model, data or optimizer)."""

    device: torch.device
    aux_weight: float = 0.0
    grad_clip: float | None = None
    amp: str = "none"
    channels_last: bool = False
    mixup: Mixup | None = None
    erasing: Callable[[torch.Tensor], torch.Tensor] | None = None


def _to_device(x: torch.Tensor, s: StepSettings) -> torch.Tensor:
    x = x.to(s.device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if s.channels_last else x


def topk(num_classes: int) -> tuple[int, int]:
    """(1, 5) as papers report, shrunk for datasets with fewer than 5 classes."""
    return 1, min(5, num_classes)


def require_finite(loss: float, where: str) -> None:
    """Stop a diverged retraining at once, as the search does (naming search.w_lr there): NaN
    weights would otherwise be exported, evaluated and aggregated as if they were a result."""
    if not math.isfinite(loss):
        raise RomeError(f"{where}: loss is not finite ({loss}); lower train.lr (or raise train.warmup_epochs) "
                        f"or check the data")


def train_one_epoch(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], steps: int,
                    optimizer: torch.optim.Optimizer, criterion: torch.nn.Module, settings: StepSettings,
                    scheduler: Any = None, num_updates: int = 0, ema: ModelEmaV3 | None = None,
                    desc: str = "train", ema_source: torch.nn.Module | None = None,
                    progress: bool = True) -> tuple[dict[str, float], int]:
    """Run ``steps`` optimizer steps; returns ({loss, top1}, num_updates after the epoch).

    ``top1`` is measured against the un-mixed labels, so with mixup it is only indicative.
    ``model`` may be a DistributedDataParallel wrapper; the EMA then follows ``ema_source``, the
    wrapped network (its state_dict keys are the checkpoint's).
    """
    model.train()
    losses, top1 = AverageMeter(), AverageMeter()
    bar = tqdm(total=steps, desc=desc, leave=False, dynamic_ncols=True, disable=not progress)
    for step, (images, labels) in enumerate(batches):
        if step >= steps:
            break
        images, labels = _to_device(images, settings), labels.to(settings.device, non_blocking=True)
        if settings.erasing is not None:
            images = settings.erasing(images)
        target = labels
        if settings.mixup is not None:
            images, target = settings.mixup(images, labels)
        with bf16_autocast(settings.device, settings.amp, on_cpu=True):  # train.amp holds on the CPU too
            out = model(images)
            logits, aux = out if isinstance(out, tuple) else (out, None)
            loss = criterion(logits, target)
            if aux is not None and settings.aux_weight > 0:
                loss = loss + settings.aux_weight * criterion(aux, target)
        loss_value = loss.item()
        require_finite(loss_value, f"{desc} step {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip:
            dispatch_clip_grad(model.parameters(), settings.grad_clip, mode="norm")
        optimizer.step()
        num_updates += 1
        if ema is not None:
            ema.update(ema_source if ema_source is not None else model, step=num_updates)
        if scheduler is not None:
            scheduler.step_update(num_updates=num_updates)
        n = labels.size(0)
        losses.update(loss_value, n)
        top1.update(accuracy(logits.detach().float(), labels, topk=(1,))[0].item(), n)
        bar.set_postfix(loss=f"{losses.avg:.3f}", top1=f"{top1.avg:.1f}", refresh=False)
        bar.update(1)
    bar.close()
    return {"loss": losses.avg, "top1": top1.avg}, num_updates


@torch.no_grad()
def validate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: Iterable[float],
             std: Iterable[float], num_classes: int, settings: StepSettings, batch_size: int = 256,
             desc: str = "eval", progress: bool = True) -> dict[str, float]:
    """Cross-entropy, top-1 and top-5 (%) of uint8 ``images`` in eval mode, normalised chunk by chunk."""
    chunks = ((images[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, len(labels), batch_size))
    return validate_batches(model, chunks, mean, std, num_classes, settings, desc, progress,
                            total=-(-len(labels) // batch_size))


@torch.no_grad()
def validate_batches(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                     mean: Iterable[float], std: Iterable[float], num_classes: int, settings: StepSettings,
                     desc: str = "eval", progress: bool = True, total: int | None = None) -> dict[str, float]:
    """``validate`` over uint8 batches from anywhere (in-memory slices, or a streamed split's workers)."""
    model.eval()
    m, s = channel_stats(mean, std, settings.device)
    k1, k5 = topk(num_classes)
    losses, top1, top5 = AverageMeter(), AverageMeter(), AverageMeter()
    for images, labels in tqdm(batches, desc=desc, total=total, leave=False, dynamic_ncols=True, disable=not progress):
        x = normalize(images.to(settings.device), m, s, settings.channels_last)
        y = labels.to(settings.device)
        with bf16_autocast(settings.device, settings.amp, on_cpu=True):
            logits = model(x)
        logits = (logits[0] if isinstance(logits, tuple) else logits).float()
        a1, a5 = accuracy(logits, y, topk=(k1, k5))
        n = y.size(0)
        losses.update(F.cross_entropy(logits, y).item(), n)
        top1.update(a1.item(), n)
        top5.update(a5.item(), n)
    return {"loss": losses.avg, "top1": top1.avg, "top5": top5.avg}
