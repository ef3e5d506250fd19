"""Algorithm 1 of ROME over epochs: ``rome.search.step.search_step`` per iteration (an architecture
step, K samples, gradients averaged, Adam; then a weight step, K fresh samples, gradients summed,
clipped, SGD), validation and a checkpoint after every epoch.

``search.mode: reference`` (``rome.search.modes``) runs a baseline as its authors' code does: the
supernet (lastact, pool BN), the weight optimiser (Nesterov), the schedule (stepped at the start of
each epoch), the warm-up epochs without architecture steps and the step order / unrolled gradient
(``StepParts``) come from its ``SearchBehaviour``; controlled mode (default) is the loop below unchanged.

The same loop runs every algorithm: what differs (K, the sampled paths, whether alpha/beta learn)
comes from ``SearchAlgorithm``. First-order gradients unless ``search.unrolled`` (or DARTS's reference mode).

Where the paper is silent (choices of this project):
  * tau: linear tau_max -> tau_min over the epochs, one value per epoch, shared by edges and ops (GDAS);
  * weights: SGD + cosine annealing w_lr -> w_lr_min over the epochs, stepped once per epoch (DARTS);
  * gradients are set to ``None`` before each step, so an op that none of the K samples executed
    gets neither momentum nor weight decay in that step: only what was sampled is trained;
  * the K passes of a step run one after the other and accumulate, so peak memory is one sub-network;
  * per-epoch validation: the current argmax sub-network (the mixed supernet for darts), BatchNorm in
    eval mode, on search_val (capped at steps_per_epoch batches when that is set);
  * on the CPU ``search.amp`` is ignored (bf16 autocast is for GPUs);
  * augmentation (``search.augment``): both halves' batches, as DARTS's and GDAS's search loaders
    (crop + flip for natural images, crop only for digits); validation sees raw images.
  * collapse indicators (``search.indicators``, rome.search.indicators) go into each epoch's history
    row after validation; they read the network and never change it, so a search gives the same
    weights and architecture with them on or off (tested). ``search.early_stop``
    (rome.search.early_stop) decides from the history alone after each epoch's checkpoint; when it
    fires the search ends and keeps the architecture parameters of the epoch the rule names (a snapshot
    of alpha/beta is kept per epoch in the checkpoint for this).
"""

from __future__ import annotations

import logging
import math
import resource
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from rome import stopping
from rome.data.augmentation import resolve_search_augment
from rome.distributed import SINGLE, ProcessGroup
from rome.errors import RomeError
from rome.genotype.types import count_param_free
from rome.layout import use_channels_last
from rome.precision import bf16_autocast
from rome.reproducibility import rng_state, set_rng_state
from rome.search.algorithms import SearchAlgorithm, build_algorithm
from rome.search.batches import EndlessBatches, StreamBatches
from rome.search.checkpoint import CHECKPOINT_FILE, fingerprint, load_checkpoint, save_checkpoint
from rome.search.early_stop import StopDecision, StopRule, decide, hessian_due, warmup_warning
from rome.search.indicators import architecture_indicators, hessian_eigenvalue, timed
from rome.search.modes import SearchBehaviour, resolve_behaviour
from rome.search.sampling import linear_tau
from rome.search.step import OptimizerSettings, StepParts, build_step_parts, search_step
from rome.search.supernet import CellPath, build_supernet, check_imagenet_stem, resolve_stem
from rome.sections import SearchConfig
from rome.spaces import SearchSpace, get_space

logger = logging.getLogger(__name__)

# offsets of the seeds of the run's private generators (any fixed distinct values do)
ARCH_INIT_SEED, SAMPLE_SEED, TRAIN_ORDER_SEED, VAL_ORDER_SEED = 1, 2, 3, 4


@dataclass
class SearchData:
    """The two search splits as uint8 tensors (or, streamed, ``StreamImages`` datasets whose images
    workers decode: ``*_images`` are then None) plus what the network needs to know about them."""

    train_images: torch.Tensor | None
    train_labels: torch.Tensor
    val_images: torch.Tensor | None
    val_labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    manifest_sha256: str | None = None
    train_stream: Any = None
    val_stream: Any = None

    @property
    def in_channels(self) -> int:
        if self.train_images is None:
            return int(self.train_stream.split.channels)
        return int(self.train_images.shape[1])

    @property
    def resolution(self) -> int:
        if self.train_images is None:
            return int(self.train_stream.split.resolution)
        return int(self.train_images.shape[-1])

    @classmethod
    def from_prepared(cls, prepared: Any) -> SearchData:
        """Weight batches from ``search_train``, architecture batches from ``search_val``."""
        if prepared.is_stream:
            from rome.data.stream import StreamImages

            tr, va = StreamImages(prepared.stream_split("search_train")), StreamImages(prepared.stream_split("search_val"))
            return cls(None, tr.split.labels, None, va.split.labels, tuple(prepared.mean), tuple(prepared.std),
                       prepared.num_classes, prepared.manifest_sha256, tr, va)
        tx, ty = prepared.split("search_train")
        vx, vy = prepared.split("search_val")
        return cls(tx, ty, vx, vy, tuple(prepared.mean), tuple(prepared.std), prepared.num_classes, prepared.manifest_sha256)


@dataclass
class SearchState:
    """Everything a search consists of; ``state_dict`` is the checkpoint."""

    config: SearchConfig
    seed: int
    space: SearchSpace
    parts: StepParts
    scheduler: torch.optim.lr_scheduler.CosineAnnealingLR
    train_batches: EndlessBatches | StreamBatches
    val_batches: EndlessBatches | StreamBatches
    data: SearchData
    device: torch.device
    behaviour: SearchBehaviour = field(default_factory=SearchBehaviour)
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    group: ProcessGroup = SINGLE
    stem: str = "cifar"  # the resolved search.stem
    arch_by_epoch: list[dict[str, torch.Tensor]] = field(default_factory=list)  # alpha/beta after each epoch
    stop: StopDecision | None = None  # search.early_stop's decision, once it fired

    @property
    def stop_rule(self) -> StopRule:
        return StopRule.from_search(self.config.early_stop, self.config.indicators)

    @property
    def model(self) -> nn.Module:
        return self.parts.model

    @property
    def algorithm(self) -> SearchAlgorithm:
        return self.parts.algorithm

    def iteration(self, tau: float) -> dict[str, float]:
        """One iteration of Algorithm 1 on the next architecture batch and the next weight batch."""
        return search_step(self.parts, self.train_batches, self.val_batches, tau, self.config.amp, self.group)

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "arch": self.algorithm.arch.state_dict(),
            "w_opt": self.parts.w_opt.state_dict(),
            "a_opt": self.parts.a_opt.state_dict() if self.parts.a_opt is not None else None,
            "scheduler": self.scheduler.state_dict(),
            "sample_gen": self.parts.sample_gen.get_state(),
            # alpha/beta's gradient as the last step left it: clip_with_alpha's clip norm reads it (GDAS's loop)
            "arch_grad": [None if p.grad is None else p.grad.detach().clone() for p in self.algorithm.arch.parameters()],
            "train_batches": self.train_batches.state_dict(),
            "val_batches": self.val_batches.state_dict(),
            "rng": rng_state(),
            "history": self.history,
            "arch_by_epoch": self.arch_by_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.model.load_state_dict(state["model"])
        self.algorithm.arch.load_state_dict(state["arch"])
        self.parts.w_opt.load_state_dict(state["w_opt"])
        if self.parts.a_opt is not None:
            self.parts.a_opt.load_state_dict(state["a_opt"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.parts.sample_gen.set_state(state["sample_gen"])
        for p, g in zip(self.algorithm.arch.parameters(), state.get("arch_grad") or []):
            p.grad = None if g is None else g.to(p.device)
        self.train_batches.load_state_dict(state["train_batches"])
        self.val_batches.load_state_dict(state["val_batches"])
        set_rng_state(state["rng"])
        self.history = list(state["history"])
        self.arch_by_epoch = [dict(snapshot) for snapshot in state.get("arch_by_epoch") or []]


def build_state(config: SearchConfig, seed: int, dataset: str, data: SearchData,
                device: torch.device | str = "cpu", group: ProcessGroup = SINGLE) -> SearchState:
    """A fresh search (call ``rome.reproducibility.seed_everything`` first for reproducible weights).

    Across processes (``group``) every rank builds the same state from the same seeds: same
    weights, same alpha/beta, same sample and batch streams; only the share of the K draws differs."""
    s, seed = config, int(seed)
    device = torch.device(device)
    space = get_space(s.space, s.nodes)
    if group.distributed and s.parallel == "batch" and s.batch_size % group.world_size:
        raise RomeError(f"search.batch_size = {s.batch_size}: expected a multiple of the {group.world_size} processes "
                        "with search.parallel = batch (each takes an equal slice)")
    if s.batch_size > min(len(data.train_labels), len(data.val_labels)):
        raise RomeError(f"search.batch_size = {s.batch_size}: larger than the search splits "
                        f"({len(data.train_labels)} / {len(data.val_labels)} images); lower it or enlarge data.subset")
    behaviour = resolve_behaviour(s, space)
    check_early_stop(s)
    stem = resolve_stem(s.stem, data.resolution, space)
    if stem == "imagenet":
        check_imagenet_stem(data.resolution, s.layers, s.stem)
    algorithm = build_algorithm(s, space, torch.Generator().manual_seed(seed * 10 + ARCH_INIT_SEED))
    algorithm.arch.to(device)
    model = build_supernet(space, s.init_channels, data.num_classes, s.layers, data.in_channels,
                           partial=algorithm.partial, lastact=behaviour.lastact, pool_bn=behaviour.pool_bn,
                           stem=stem).to(device)
    channels_last = use_channels_last(s.channels_last, device)  # auto: a rule per device type, same on every rank
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    parts = build_step_parts(model, algorithm, OptimizerSettings.from_search(s, nesterov=behaviour.nesterov),
                             torch.Generator().manual_seed(seed * 10 + SAMPLE_SEED))
    parts.weights_first, parts.unrolled = behaviour.weights_first, behaviour.unrolled
    parts.clip_with_alpha = behaviour.clip_with_alpha
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(parts.w_opt, T_max=s.epochs, eta_min=s.w_lr_min)
    if behaviour.lr_epoch_shift:
        # DARTS / PC-DARTS call scheduler.step() at the START of each epoch: epoch e runs at the rate of e + 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "step() before optimizer.step()": intended here
            scheduler.step()

    augment = resolve_search_augment(s.augment, dataset)

    def batches(images: torch.Tensor | None, labels: torch.Tensor, stream: Any,
                offset: int) -> EndlessBatches | StreamBatches:
        generator = torch.Generator().manual_seed(seed * 10 + offset)
        if images is None:  # streamed: the same indices and crops, decoded by search.workers processes
            return StreamBatches(stream, s.batch_size, data.mean, data.std, generator, device, channels_last,
                                 augment, s.workers)
        return EndlessBatches(images, labels, s.batch_size, data.mean, data.std, generator, device, channels_last,
                              augment)

    return SearchState(config, seed, space, parts, scheduler,
                       batches(data.train_images, data.train_labels, data.train_stream, TRAIN_ORDER_SEED),
                       batches(data.val_images, data.val_labels, data.val_stream, VAL_ORDER_SEED), data, device,
                       behaviour, group=group.for_model(model, s.parallel), stem=stem)


# ----------------------------------------------------------------------------- evaluation and statistics


@torch.no_grad()
def evaluate(state: SearchState, paths: dict[str, CellPath], max_batches: int | None) -> tuple[float, float]:
    """(mean loss, accuracy) of the network ``paths`` on search_val, BatchNorm in eval mode."""
    model = state.model
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for x, y in state.val_batches.in_order(max_batches):
        with bf16_autocast(state.device, state.config.amp):
            logits = model(x, paths)
        loss_sum += float(F.cross_entropy(logits.float(), y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        n += len(y)
    model.train()
    return loss_sum / max(n, 1), correct / max(n, 1)


def check_early_stop(s: SearchConfig) -> None:
    """The early-stopping rule must be able to fire: one line naming the key otherwise."""
    criterion = s.early_stop.get("criterion", "none")
    if criterion == "eigenvalue" and not s.indicators.get("hessian_every"):
        raise RomeError("search.early_stop.criterion = eigenvalue: needs the eigenvalue it watches; "
                        "set search.indicators.hessian_every >= 1 (R-DARTS: 2)")
    if criterion == "eigenvalue" and s.algorithm == "random":
        raise RomeError("search.early_stop.criterion = eigenvalue: random learns no architecture parameters, so there "
                        "is no Hessian to watch; expected none or param_free")


def epoch_indicators(state: SearchState, geno: dict[str, Any], probs: dict[str, Any], tau: float,
                     epoch: int) -> tuple[dict[str, Any], float | None]:
    """The history row's indicator columns (rome.search.indicators) and the eigenvalue's seconds (None if not due)."""
    ind = state.config.indicators
    row: dict[str, Any] = architecture_indicators(geno, probs, state.algorithm.node_groups())
    row["hessian_eig"], row["hessian_iters"], seconds = None, None, None
    if hessian_due(epoch + 1, state.config.epochs, int(ind.get("hessian_every", 0))):
        batches = list(state.val_batches.in_order(int(ind["hessian_batches"])))
        result, seconds = timed(lambda: hessian_eigenvalue(
            state.model, state.algorithm, batches, int(ind["hessian_draws"]), tau, state.seed,
            int(ind["hessian_iters"]), float(ind["hessian_tol"])))
        if result is not None:
            row["hessian_eig"], row["hessian_iters"] = result.value, result.iterations
        else:
            seconds = None  # random: nothing was computed
    return row, seconds


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: max allocated since the last reset; CPU: the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ----------------------------------------------------------------------------- the run


@dataclass
class SearchResult:
    state: SearchState
    complete: bool

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.state.history


def steps_per_epoch(state: SearchState) -> int:
    """``search.steps_per_epoch``, or one pass over search_train when null."""
    n = state.config.steps_per_epoch
    return int(n) if n is not None else state.train_batches.batches_per_pass


def run_search(config: SearchConfig, seed: int, dataset: str, data: SearchData, checkpoint_dir: Path | None,
               device: torch.device | str = "cpu",
               *, max_epochs_this_run: int | None = None, progress: bool = True,
               log: Callable[[str], None] | None = None,
               on_epoch: Callable[[dict[str, Any]], None] | None = None,
               group: ProcessGroup = SINGLE) -> SearchResult:
    """Run (or continue from ``checkpoint_dir/last.pt``) the search; checkpoint after every epoch.

    ``max_epochs_this_run`` stops early (a later call continues): the in-process stand-in for a kill.
    ``on_epoch`` receives each finished epoch's history row (experiment tracking hooks in here).
    ``log`` receives the messages (default: this module's logger at INFO, one line per epoch).
    ``config`` is the typed ``search`` section; ``seed`` and ``dataset`` complete the run's identity.
    ``group`` (rome.distributed): every rank runs this, shares the K draws, resumes from the same
    checkpoint; rank 0 alone saves checkpoints, logs and calls ``on_epoch``.
    """
    log = log if log is not None else logger.info
    if not group.is_main:
        log, progress, on_epoch = logger.debug, False, None
    state = build_state(config, seed, dataset, data, device, group)
    s = config
    if s.channels_last == "auto":  # say what auto resolved to, once the inputs are known good
        log(f"search: memory layout {'NHWC' if use_channels_last(s.channels_last, device) else 'NCHW'} "
            f"(search.channels_last = auto, device {torch.device(device).type})")
    fp = fingerprint(config, seed, dataset, data.manifest_sha256, state.stem)
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir is not None else None
    if ckpt_path is not None:
        # on the CPU: RNG and generator states must stay CPU tensors; load_state_dict moves the rest
        saved = load_checkpoint(ckpt_path, fp, map_location="cpu")
        if saved is not None:
            state.load_state_dict(saved)
            log(f"search: resuming {ckpt_path} after epoch {state.epoch}/{s.epochs}")
        group.barrier()  # every rank has read the checkpoint before rank 0 may write the next one
    if state.algorithm.k_samples != s.k_samples:
        log(f"search: {s.algorithm} uses K = {state.algorithm.k_samples} (search.k_samples = {s.k_samples} ignored)")
    b = state.behaviour
    if state.epoch == 0 and (b.mode != "controlled" or s.behaviour):
        switches = f" with {s.behaviour}" if s.behaviour else ""
        log(f"search: mode {b.mode}{switches} for {s.algorithm}: weights first {b.weights_first}, unrolled {b.unrolled}, "
            f"lastact {b.lastact}, unselected weights {b.unselected_weights}, pool BN {b.pool_bn}, "
            f"nesterov {b.nesterov}, lr shifted one epoch {b.lr_epoch_shift}, arch warm-up epochs {b.arch_warmup_epochs}, "
            f"clip with alpha {b.clip_with_alpha}")
    elif state.epoch == 0 and (b.unrolled or b.arch_warmup_epochs):
        log(f"search: unrolled {b.unrolled}, arch warm-up epochs {b.arch_warmup_epochs}")
    if state.epoch == 0 and (warning := warmup_warning(state.stop_rule, b.arch_warmup_epochs)) is not None:
        log(f"search: warning: {warning}")
    if group.distributed and s.parallel == "batch":
        log(f"search: data parallel over {group.world_size} processes: each runs the K = {state.algorithm.k_samples} "
            f"draws on {s.batch_size // group.world_size} of the {s.batch_size} images of each batch")
    elif group.distributed:
        idle = max(0, group.world_size - state.algorithm.k_samples)
        log(f"search: K = {state.algorithm.k_samples} draws per step over {group.world_size} processes "
            f"(rank r runs draws r, r+{group.world_size}, ...)"
            + (f"; {idle} rank(s) have no draw and idle (search.parallel = batch shares the batch instead)"
               if idle else ""))
    if state.epoch == 0 and state.stem == "imagenet":
        log(f"search: ImageNet stem (search.stem = {s.stem}, {data.resolution} px images): cells from "
            f"{-(-data.resolution // 8)} px")
    if state.epoch == 0:
        log(f"search: augmentation {state.train_batches.augment} on both search halves "
            f"(search.augment = {s.augment}, dataset {dataset})")
    try:
        return _run_epochs(state, ckpt_path, fp, max_epochs_this_run, progress, log, on_epoch, group)
    finally:  # a streamed split's DataLoader workers stop here, not whenever the result is collected
        state.train_batches.close()
        state.val_batches.close()


def not_finite(epoch: int, what: str) -> RomeError:
    return RomeError(f"search epoch {epoch + 1}: loss is not finite ({what}); lower search.w_lr or check the data")


def finite_iteration(state: SearchState, tau: float, epoch: int) -> dict[str, float]:
    """One iteration whose losses are finite; a diverged search stops with the ``search.w_lr`` line
    before anything else fails on its NaN weights (an architecture sample drawn from NaN alphas
    leaves a node without input, and that error would name the wrong cause)."""
    try:
        out = state.iteration(tau)
    except (ValueError, RuntimeError):
        params = [*state.model.parameters(), *state.algorithm.arch.parameters()]
        if all(bool(torch.isfinite(p).all()) for p in params):
            raise
        raise not_finite(epoch, "weights or architecture parameters became NaN/inf") from None
    bad = {k: v for k, v in out.items() if not math.isfinite(v)}
    if bad:
        raise not_finite(epoch, ", ".join(f"{k} {v}" for k, v in bad.items()))
    return out


def _run_epochs(state: SearchState, ckpt_path: Path | None, fp: dict[str, Any],
                max_epochs_this_run: int | None, progress: bool, log: Callable[[str], None],
                on_epoch: Callable[[dict[str, Any]], None] | None, group: ProcessGroup) -> SearchResult:
    """The epochs of ``run_search`` from ``state.epoch`` on."""
    s, b = state.config, state.behaviour
    steps = steps_per_epoch(state)
    val_batches = s.steps_per_epoch  # null: the whole search_val split
    run_epochs = 0
    stopping.reached(state.epoch, s.epochs)  # a stop in this run's first epoch resumes after the resumed one
    rule = state.stop_rule
    state.stop = decide(rule, state.history, s.epochs)  # resumed after the rule fired: stopped already
    while state.epoch < s.epochs and state.stop is None:
        if max_epochs_this_run is not None and run_epochs >= max_epochs_this_run:
            return SearchResult(state, complete=False)
        epoch = state.epoch
        t0 = time.perf_counter()
        if state.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(state.device)
        tau = linear_tau(epoch, s.epochs, s.tau_max, s.tau_min)
        state.parts.arch_active = epoch >= b.arch_warmup_epochs
        lr = state.parts.w_opt.param_groups[0]["lr"]
        sums: dict[str, float] = {}
        bar = tqdm(range(steps), desc=f"search {epoch + 1}/{s.epochs}", file=sys.stderr, leave=False,
                   disable=not progress, dynamic_ncols=True)
        for _ in bar:
            out = finite_iteration(state, tau, epoch)
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.set_postfix(loss=f"{out['train_loss']:.3f}", refresh=False)
        bar.close()
        state.scheduler.step()
        val_loss, val_acc = evaluate(state, state.algorithm.eval_paths(), val_batches)
        geno = state.algorithm.genotype()
        probs = state.algorithm.probabilities()
        seconds = time.perf_counter() - t0
        indicators, hessian_seconds = epoch_indicators(state, geno, probs, tau, epoch)
        row = {
            "epoch": epoch + 1, "tau": tau, "lr": lr,
            "train_loss": sums["train_loss"] / steps, "train_acc": sums["train_acc"] / steps,
            "arch_loss": sums["arch_loss"] / steps if "arch_loss" in sums else None,
            "val_loss": val_loss, "val_acc": val_acc,
            "alpha": probs["alpha"], "beta": probs["beta"],
            "genotype": {ct: [list(e) for e in entries] for ct, entries in geno.items()},
            "n_param_free_normal": count_param_free(op for op, _ in geno.get("normal", [])),
            **indicators,
            "peak_memory_mb": round(peak_memory_mb(state.device), 1),
            "seconds": round(seconds, 3),
            "hessian_seconds": None if hessian_seconds is None else round(hessian_seconds, 3),
        }
        if not all(math.isfinite(row[k]) for k in ("train_loss", "val_loss")):
            raise not_finite(epoch, f"train {row['train_loss']}, val {row['val_loss']}")
        state.history.append(row)
        state.arch_by_epoch.append({k: v.clone() for k, v in state.algorithm.arch.named_tensors().items()})  # own copies
        state.epoch = epoch + 1
        state.stop = decide(rule, state.history, s.epochs)
        if ckpt_path is not None and group.is_main:
            save_checkpoint(ckpt_path, {"fingerprint": fp, "tau": tau, **state.state_dict()})
        stopping.reached(state.epoch, s.epochs)
        run_epochs += 1
        if on_epoch is not None:
            on_epoch(row)
        log(f"search epoch {epoch + 1}/{s.epochs}: tau {tau:.3f} lr {lr:.4g} train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.3f} | supernet val loss {val_loss:.4f} acc {val_acc:.3f} (weight-sharing supernet, "
            f"not the derived model) | param-free normal "
            f"{row['n_param_free_normal']}{_eigen_text(row)} | peak {row['peak_memory_mb']:.0f} MB | {row['seconds']:.1f}s")
        if state.stop is not None:
            log(f"search: early stop after epoch {state.stop.fired_epoch}/{s.epochs} (search.early_stop.criterion = "
                f"{state.stop.criterion}): {state.stop.reason}; keeping the architecture of epoch "
                f"{state.stop.chosen_epoch}")
    return SearchResult(state, complete=True)


def _eigen_text(row: dict[str, Any]) -> str:
    if row.get("hessian_eig") is None:
        return ""
    return f" | Hessian eigenvalue {row['hessian_eig']:.4g} ({row['hessian_seconds']:.1f}s)"
