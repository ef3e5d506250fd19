"""``rome train``: retrain a genotype from scratch (DARTS protocol) with timm's training utilities.

Composition: ``timm.create_model`` (the rome_* networks), ``create_optimizer_v2`` (SGD momentum),
``create_scheduler_v2`` (cosine), ``ModelEmaV3`` (optional), ``CheckpointSaver`` (last + best,
resume), ``AverageMeter`` / ``accuracy`` / ``update_summary``, timm ``RandomErasing`` as cutout,
``Mixup`` + ``SoftTargetCrossEntropy`` or ``LabelSmoothingCrossEntropy`` (optional).
DARTS additions: auxiliary loss, linear drop-path ramp ``p = drop_path * epoch / epochs``, grad clip.

Choices where the paper is silent (each tested in tests/test_train.py):
  * the learning rate follows the cosine per optimizer step, not per epoch (smooth for the few
    epochs of CPU runs; the same curve for 600 epochs); a warm-up (train.warmup_epochs, the
    ImageNet protocol's 5) starts linearly from lr / 100;
  * weight decay applies to every parameter, BN and biases included, as DARTS' train.py does
    (timm's default would exempt them), and SGD is plain momentum (timm's ``sgd`` is Nesterov);
  * every RNG is reseeded from (seed, epoch) at the start of each epoch, so a run killed and
    resumed from its last checkpoint gives bit-identical weights to an uninterrupted run (on CPU);
  * per-epoch validation is on the prepared ``test`` split, as DARTS reports; the exported weights
    are the *final* epoch's (EMA weights when train.ema), never picked by test accuracy; the best
    epoch is reported for information only.

Across processes (``torchrun --nproc_per_node=N rome train``), as timm's train.py: the model is
wrapped in DistributedDataParallel (gradients averaged), ``train.sync_bn`` converts BatchNorm to
SyncBatchNorm (rome.training.sync_batchnorm on the CPU), rank 0 alone writes checkpoints, the
summary, the artifact, the run record and W&B. Where this differs from timm, on purpose:
``train.batch_size`` is the GLOBAL batch (each rank takes 1/N of it: rome.training.shards), so
the params mean the same run whatever N; per-image augmentation is seeded by (epoch, image), so a
rank sees the crops one process would; each rank reseeds its own RNG stream (drop path, cutout,
mixup) from (seed, epoch, rank). Validation runs on every rank (same weights, same numbers).

Resume: ``checkpoint_dir(params, "train")`` keeps CheckpointSaver's ``last.pth.tar`` /
``model_best.pth.tar``, ``summary.csv`` and ``run.json`` (what must match to resume: everything but
``train.epochs``, which may grow, and ``train.nproc``: the global batches do not depend on it; the
continuation is exact with the same number of processes; and ``train.compile``: a compiled run's
checkpoint is the network's own state_dict, rome.training.compile). ``--fresh`` discards it.

Speed (issue 23's measurements, ``python -m benchmarks speed``): ``train.channels_last`` = auto takes
NHWC where the device's kernels are NHWC-native (rome.layout); ``train.compile`` = auto compiles the
training forward when the projected run repays the first call (the drop-path ramp is a graph input
then, so the ramp compiles once; rome.training.compile). Both resolved values go to the run record and
the log, not to the artifact (its provenance keeps the word ``auto``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3, update_summary
from torch.utils.data import DataLoader

from rome import distributed, stopping, tracking
from rome.artifacts import atomic_dir, provenance, write_json, write_run_record, write_text
from rome.csv_text import csv_text, read_csv_rows
from rome.data.loaders import ImageTensorDataset, worker_errors
from rome.data.prepared import PreparedData, load_prepared
from rome.errors import RomeError
from rome.layout import use_channels_last
from rome.outputs import LAYOUTS
from rome.paths import checkpoint_dir, input_dir, stream_cache_dir
from rome.reproducibility import resolve_device, seed_everything, set_deterministic
from rome.sections import TrainConfig
from rome.training import checkpoint, network, sync_batchnorm
from rome.training import compile as compile_choice
from rome.training.augment import cutout, train_transform, uses_flip
from rome.training.loop import StepSettings, require_finite, train_one_epoch, validate_batches
from rome.training.shards import RankSlices, SeededImages
from rome.training.model_artifact import (
    METRICS_FILE,
    METRICS_SCHEMA_VERSION,
    MODEL_FILE,
    MODEL_JSON,
    MODEL_SCHEMA_VERSION,
    SUMMARY_FILE,
)

logger = logging.getLogger(__name__)

SECTIONS = ["data", "train"]
EVAL_BATCH = 256  # the test pass's batch (rome.training.loop.validate's default)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """An independent, reproducible seed per (run seed, epoch[, rank]): what makes resume exact;
    rank r > 0 of a multi-process run gets its own stream (its own drop-path masks, as in timm)."""
    return int(np.random.SeedSequence([seed, epoch, *([rank] if rank else [])]).generate_state(1)[0])


def make_optimizer(model: torch.nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """DARTS' optimizer through timm: plain momentum SGD (timm's "sgd" would be Nesterov), weight
    decay on every parameter, BN and biases included (timm would exempt them by default)."""
    return create_optimizer_v2(model, opt="momentum", lr=train.lr, weight_decay=train.weight_decay,
                               momentum=train.momentum, filter_bias_and_bn=False)


def make_criterion(train: TrainConfig, num_classes: int) -> tuple[torch.nn.Module, Mixup | None]:
    """Mixup (alpha = train.mixup) folds label smoothing into its soft targets; else smoothing CE or plain CE."""
    if train.mixup > 0:
        if train.batch_size % 2:
            raise RomeError(f"train.batch_size = {train.batch_size}: expected an even batch size "
                            f"with train.mixup > 0")
        mix = Mixup(mixup_alpha=train.mixup, cutmix_alpha=0.0, label_smoothing=train.label_smoothing,
                    num_classes=num_classes)
        return SoftTargetCrossEntropy(), mix
    if train.label_smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=train.label_smoothing), None
    return torch.nn.CrossEntropyLoss(), None


def train_loader(data: PreparedData, dataset: str, train: TrainConfig, device: torch.device,
                 generator: torch.Generator, group: distributed.ProcessGroup = distributed.SINGLE) -> DataLoader:
    """This rank's slice of each global batch (rome.training.shards); augmentation seeded per image.
    A streamed split is decoded by ``train.workers`` processes (rome.data.stream: the same transform
    up to 64 px, timm's ImageNet one above)."""
    if data.is_stream:
        from rome.data.stream import StreamImages
        from rome.training.augment import stream_train_transform

        ds = SeededImages(StreamImages(data.stream_split("train"), stream_train_transform(
            data.resolution, data.in_channels, uses_flip(dataset), data.mean, data.std)))
    else:
        images, labels = data.split("train")
        ds = SeededImages(ImageTensorDataset(images, labels, data.mean, data.std,
                                             transform=train_transform(data.resolution, flip=uses_flip(dataset))))
    slices = RankSlices(len(ds), train.batch_size, group.rank, group.world_size, generator)
    loader = DataLoader(ds, batch_sampler=slices, num_workers=train.workers, pin_memory=device.type == "cuda")
    if len(loader) == 0:
        raise RomeError(f"train.batch_size = {train.batch_size}: larger than the train split "
                        f"({len(ds)} images); expected <= {len(ds)}")
    return loader


def trim_summary(file: Path, start_epoch: int) -> None:
    """Drop summary rows of epochs a resumed run will redo (written before the kill, not checkpointed).

    Rewritten atomically in timm's format (``update_summary``: the csv module's ``\\r\\n`` lines), so a
    kill during the trim leaves the old file, and the rows timm appends next match the kept ones.
    """
    rows = read_csv_rows(file)
    if not rows or all(int(r["epoch"]) < start_epoch for r in rows):
        return
    keep = [r for r in rows if int(r["epoch"]) < start_epoch]
    write_text(file, csv_text(keep, lineterminator="\r\n") if keep else "")


def export_state(trained: torch.nn.Module, deployable: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trained weights without the auxiliary head, checked to fill the deployable network exactly."""
    wanted = deployable.state_dict()
    state = {k: v.detach().cpu().contiguous() for k, v in trained.state_dict().items() if k in wanted}
    deployable.load_state_dict(state, strict=True)
    return state


def run(params: dict[str, Any], out: Path, args: argparse.Namespace | None = None) -> Path:
    t0 = time.perf_counter()
    t = TrainConfig.from_params(params)
    group = distributed.current()
    device = distributed.local_device(resolve_device(params["device"]))
    set_deterministic(params["deterministic"])
    data = load_prepared(input_dir(params, "prepare"), stream_cache_dir(params))
    source = network.load_source(network.genotype_path(params))
    name = network.network_name(t.network, source, data.resolution)
    kwargs = network.model_kwargs(source, data.num_classes, data.in_channels, t,
                                  network.data_config(data.in_channels, data.resolution, data.mean, data.std))
    use_aux = t.auxiliary_weight > 0 and network.supports_auxiliary(name)
    if t.auxiliary_weight > 0 and not use_aux:
        logger.warning(f"train: {name} has no auxiliary head (NAS-Bench-201 protocol); "
                       "train.auxiliary_weight ignored")

    seed_everything(params["seed"])
    model = network.build(name, kwargs, auxiliary=use_aux, drop_path_rate=t.drop_path).to(device)
    channels_last = use_channels_last(t.channels_last, device)  # auto: a rule per device type, same on every rank
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if t.sync_bn and group.distributed:
        model = sync_batchnorm.convert(model, device)
    optimizer = make_optimizer(model, t)
    ema = ModelEmaV3(model, decay=t.ema_decay) if t.ema else None

    ckpt_dir = checkpoint_dir(params, "train")
    # data.storage is left out: the prepared data's manifest hash below already names its format
    ident = checkpoint.identity({"seed": params["seed"], "data": {k: v for k, v in params["data"].items() if k != "storage"},
                                 "train": {k: v for k, v in t.as_dict().items() if k not in ("epochs", "nproc", "compile")},
                                 "network": name, "kwargs": kwargs, "data_manifest_sha256": data.manifest_sha256})
    if group.is_main:
        if args is not None and getattr(args, "fresh", False) and ckpt_dir.exists():
            shutil.rmtree(ckpt_dir)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint.check_identity(ckpt_dir, ident):
            logger.info(f"train: {ckpt_dir} holds a finished run with other params; starting fresh")
            shutil.rmtree(ckpt_dir)
            ckpt_dir.mkdir(parents=True)
        (ckpt_dir / checkpoint.COMPLETE_FILE).unlink(missing_ok=True)
    group.barrier()  # the others read the checkpoint folder rank 0 has settled
    saver = checkpoint.Saver(model, optimizer, model_ema=ema, checkpoint_dir=str(ckpt_dir),
                            recovery_dir=str(ckpt_dir), decreasing=False, max_history=1)
    start = checkpoint.resume(ckpt_dir, model, optimizer, ema, saver)
    if start > t.epochs:
        raise RomeError(f"train.epochs = {t.epochs}: {ckpt_dir / checkpoint.LAST_FILE} already finished "
                        f"{start} epochs; expected >= {start}, or `rome train --fresh`")
    group.barrier()  # every rank has read the checkpoint before rank 0 may write the next one
    if group.is_main:
        checkpoint.write_identity(ckpt_dir, ident)
    generator = torch.Generator()
    loader = train_loader(data, params["data"]["dataset"], t, device, generator, group)
    steps = min(t.steps_per_epoch or len(loader), len(loader))
    # decided from the params and the network alone (the whole run, not what is left of it): a resumed
    # run, every rank and a rerun choose alike
    compiled = compile_choice.decide(t.compile, model, in_chans=data.in_channels, resolution=data.resolution,
                                     batch_size=t.batch_size, total_steps=t.epochs * steps, device=device)
    # the training forward only: checkpoints, EMA, export and evaluation keep the network itself
    # (state_dict keys without torch.compile's ``_orig_mod.``), so compiled and eager runs share checkpoints
    forward = compile_choice.compiled_forward(model, t.drop_path) if compiled.compile else model
    # gradients averaged over the ranks during backward; rank 0's weights broadcast once at wrapping
    trained = forward if not group.distributed else torch.nn.parallel.DistributedDataParallel(
        forward, device_ids=[device.index] if device.type == "cuda" else None)
    scheduler, _ = create_scheduler_v2(optimizer, sched="cosine", num_epochs=t.epochs, min_lr=t.lr_min,
                                       warmup_epochs=t.warmup_epochs, warmup_lr=t.lr / 100,
                                       step_on_epochs=False, updates_per_epoch=steps)
    num_updates = start * steps
    scheduler.step_update(num_updates=num_updates)
    criterion, mixup = make_criterion(t, data.num_classes)
    settings = StepSettings(device=device, aux_weight=t.auxiliary_weight if use_aux else 0.0,
                            grad_clip=t.grad_clip, amp=t.amp, channels_last=channels_last, mixup=mixup,
                            erasing=cutout(t.random_erasing, device))
    n_test = len(data.labels("test"))

    def test_batches() -> Any:  # uint8 batches of 256, as ``validate`` takes them from memory
        return data.uint8_batches("test", EVAL_BATCH, t.workers, pin_memory=device.type == "cuda")
    summary = ckpt_dir / SUMMARY_FILE
    if group.is_main:
        trim_summary(summary, start)
    prov = provenance(params, SECTIONS, "train", data.data_sha256)
    log = logger.info if group.is_main else logger.debug
    log(f"train: memory layout {'NHWC' if channels_last else 'NCHW'} (train.channels_last = {t.channels_last}, "
        f"device {device.type}); {'compiled' if compiled.compile else 'eager'}: {compiled.reason}")
    if start:
        log(f"train: resuming {ckpt_dir / checkpoint.LAST_FILE} at epoch {start}/{t.epochs}")
    if group.distributed:
        log(f"train: {group.world_size} processes, {t.batch_size // group.world_size} images each per global "
            f"batch of {t.batch_size}, BatchNorm {'synchronised' if t.sync_bn else 'per process'}")

    epoch_seconds: list[float] = []
    tracker_cm = (tracking.start(params, "train", SECTIONS, prov, run_id=tracking.tracking_run_id(ckpt_dir))
                  if group.is_main else tracking.Tracker())
    with tracker_cm as tracker:
        if not t.genotype:
            tracker.use_artifact(source.path, tracking.artifact_name(params, "genotype"), "genotype")
        stopping.reached(start, t.epochs)
        for epoch in range(start, t.epochs):
            te = time.perf_counter()
            seed_everything(epoch_seed(params["seed"], epoch, group.rank))
            generator.manual_seed(epoch_seed(params["seed"], epoch))  # the shuffle: one order for all ranks
            loader.dataset.epoch_seed = epoch_seed(params["seed"], epoch)
            network.set_drop_path(model, t.drop_path * epoch / t.epochs)
            lr = optimizer.param_groups[0]["lr"]
            train_metrics, num_updates = train_one_epoch(
                trained, worker_errors(loader), steps, optimizer, criterion, settings, scheduler=scheduler, num_updates=num_updates,
                ema=ema, ema_source=model, desc=f"train epoch {epoch + 1}/{t.epochs}", progress=group.is_main)
            train_metrics = dict(zip(train_metrics, group.mean_floats(*train_metrics.values())))
            eval_metrics = validate_batches(ema.module if ema is not None else model, test_batches(), data.mean,
                                            data.std, data.num_classes, settings, desc="test", progress=group.is_main,
                                            total=-(-n_test // EVAL_BATCH))
            require_finite(eval_metrics["loss"], f"train epoch {epoch + 1}/{t.epochs} (test pass)")
            if group.is_main:
                update_summary(epoch, train_metrics, eval_metrics, str(summary), lr=lr)
                saver.save_checkpoint(epoch, metric=eval_metrics["top1"])
            stopping.reached(epoch + 1, t.epochs)
            epoch_seconds.append(round(time.perf_counter() - te, 3))
            tracker.log({"lr": lr, "seconds": epoch_seconds[-1], **{f"train/{k}": v for k, v in train_metrics.items()},
                         **{f"test/{k}": v for k, v in eval_metrics.items()}}, step=epoch)
            log(f"train: epoch {epoch + 1}/{t.epochs} lr {lr:.5f} loss {train_metrics['loss']:.4f} "
                        f"train_top1 {train_metrics['top1']:.2f} | test loss {eval_metrics['loss']:.4f} "
                        f"top1 {eval_metrics['top1']:.2f} top5 {eval_metrics['top5']:.2f} "
                        f"({time.perf_counter() - te:.1f}s)")

        if not group.is_main:
            group.barrier()  # rank 0 exports, evaluates and writes the artifact meanwhile
            return out
        deployable = network.build(name, kwargs).to(device)
        state = export_state(ema.module if ema is not None else model, deployable)
        final = validate_batches(deployable, test_batches(), data.mean, data.std, data.num_classes,
                                 StepSettings(device=device), desc="final", total=-(-n_test // EVAL_BATCH))
        weights = "ema" if ema is not None else "final"
        # metrics.json holds the numbers a researcher compares (what `dvc metrics show` lists); how they
        # were obtained (epochs, steps, which weights, the best epoch) is in model.json's "training"
        metrics = {"top1": final["top1"], "top5": final["top5"], "loss": final["loss"], "best_top1": saver.best_metric}
        model_doc = {
            "schema_version": MODEL_SCHEMA_VERSION,
            "network": name,
            "kwargs": kwargs,
            "weights": weights,
            "training": {"epochs": t.epochs, "steps_per_epoch": steps, "best_epoch": saver.best_epoch,
                         "metrics_schema_version": METRICS_SCHEMA_VERSION},
            "num_classes": data.num_classes,
            "in_chans": data.in_channels,
            "resolution": data.resolution,
            "mean": list(data.mean),
            "std": list(data.std),
            "classes": data.classes,
            "genotype_file": str(source.path) if t.genotype else None,
            "space": source.space,
            "nb201_arch": source.nb201_arch,
            "genotype_provenance": source.provenance,
            "provenance": prov,
        }
        with atomic_dir(out, LAYOUTS["train"]) as tmp:
            # one metadata key only: safetensors writes its metadata map in a random order per
            # process, so two keys would make identical weights differ byte-wise (model.json names
            # the network and the weights)
            save_file(state, str(tmp / MODEL_FILE), metadata={"schema_version": str(MODEL_SCHEMA_VERSION)})
            write_json(tmp / MODEL_JSON, model_doc)
            write_json(tmp / METRICS_FILE, metrics)
            if summary.is_file():
                shutil.copy2(summary, tmp / SUMMARY_FILE)
                from rome.curves import plot_train_curves

                rows = read_csv_rows(summary)
                if rows:
                    plot_train_curves(rows, tmp / "curves.png")
        checkpoint.mark_complete(ckpt_dir, t.epochs)
        tracker.summary({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        tracker.log_artifact(out / MODEL_FILE, tracking.artifact_name(params, "model"), "model")
        write_run_record(params, "train", out, tracker.run_id, seconds=round(time.perf_counter() - t0, 3),
                         resumed_at_epoch=start, epoch_seconds=epoch_seconds, processes=group.world_size,
                         channels_last=channels_last, compiled=compiled.compile, compile_reason=compiled.reason)
    logger.info(f"train: {name} {t.epochs} epochs x {steps} steps, test top1 {final['top1']:.2f} "
                f"(best {saver.best_metric if saver.best_metric is not None else float('nan'):.2f}) "
                f"in {time.perf_counter() - t0:.1f}s")
    group.barrier()
    return out
