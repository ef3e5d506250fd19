"""The retraining's cost on this device, measured through its own step (for ``rome table --estimate``).

The network, optimiser, criterion, loader and step settings are built with the train stage's own
helpers from the run's params, and each timed iteration is ``rome.training.loop.train_one_epoch``
for one step (data loading included), as ``rome train`` runs it; the per-epoch test pass is timed
on one batch and scaled to the test split. Nothing is written.

Before a search has run there is no derived cell: the stand-in is a cell of ``sep_conv_3x3`` on
every edge (DARTS format) or ``nor_conv_3x3`` (NAS-Bench-201) — the op derived cells mostly hold,
so a collapsed cell (skips, pools) trains faster and a cell rich in 5x5 ops slower than projected.

The run's own speed settings apply: the layout ``train.channels_last`` resolves to (rome.layout), and
``train.compile`` as the stage decides it (rome.training.compile). A compiled run is projected, not
compiled here (that would cost the first call itself, minutes): the eager step times the measured
compiled / eager ratio, plus the measured first call once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from rome.data.loaders import worker_errors
from rome.data.prepared import PreparedData
from rome.estimate import StageEstimate, capacity_mb, device_name, peak_memory_mb, reset_peak, time_calls
from rome.genotype.types import DARTS_INPUTS, ENTRIES_PER_NODE, Genotype, NB201Genotype
from rome.layout import use_channels_last
from rome.sections import TrainConfig
from rome.training import compile as compile_choice
from rome.training import network
from rome.training.loop import StepSettings, train_one_epoch, validate_batches

STAND_IN_PATH = Path("<stand-in cell>")


def stand_in_source(space: str, nodes: int) -> network.GenotypeSource:
    """A typical cell of ``space`` for timing before one is derived (see the module docstring)."""
    if space == "nb201":
        geno: Any = NB201Genotype(tuple(tuple(("nor_conv_3x3", j) for j in range(n)) for n in range(1, 4)))
        return network.GenotypeSource(STAND_IN_PATH, geno, "nb201", None)
    entries = [("sep_conv_3x3", i) for _ in range(nodes) for i in range(ENTRIES_PER_NODE)]
    concat = range(DARTS_INPUTS, DARTS_INPUTS + nodes)
    return network.GenotypeSource(STAND_IN_PATH, Genotype(entries, concat, entries, concat), space, None)


def genotype_source(params: dict[str, Any], derived: Path | None = None) -> network.GenotypeSource:
    """The run's genotype (train.genotype, else ``derived`` or the derive stage's) when it exists, else the stand-in."""
    path = Path(params["train"]["genotype"]) if params["train"]["genotype"] else derived
    if path is None:
        path = network.genotype_path(params)
    if path.is_file() or params["train"]["genotype"]:
        return network.load_source(path)
    return stand_in_source(params["search"]["space"], params["search"]["nodes"])


def estimate_train(params: dict[str, Any], data: PreparedData, device: torch.device,
                   derived: Path | None = None) -> StageEstimate:
    """Time one training step and the test pass on ``device``; project the whole retraining."""
    from rome.stages.train import EVAL_BATCH, make_criterion, make_optimizer, train_loader

    t = TrainConfig.from_params(params)
    source = genotype_source(params, derived)
    name = network.network_name(t.network, source, data.resolution)
    kwargs = network.model_kwargs(source, data.num_classes, data.in_channels, t)
    use_aux = t.auxiliary_weight > 0 and network.supports_auxiliary(name)
    reset_peak(device)
    model = network.build(name, kwargs, auxiliary=use_aux, drop_path_rate=t.drop_path).to(device)
    channels_last = use_channels_last(t.channels_last, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, t)
    loader = train_loader(data, params["data"]["dataset"], t, device, torch.Generator().manual_seed(0))
    steps = min(t.steps_per_epoch or len(loader), len(loader))
    criterion, mixup = make_criterion(t, data.num_classes)
    settings = StepSettings(device=device, aux_weight=t.auxiliary_weight if use_aux else 0.0, grad_clip=t.grad_clip,
                            amp=t.amp, channels_last=channels_last, mixup=mixup)

    def endless() -> Iterator[Any]:
        while True:
            yield from worker_errors(loader)

    batches = endless()
    step = time_calls(lambda: train_one_epoch(model, itertools.islice(batches, 1), 1, optimizer, criterion, settings,
                                              progress=False), device)
    first = next(iter(data.uint8_batches("test", EVAL_BATCH, t.workers)))
    test = time_calls(lambda: validate_batches(model, [first], data.mean, data.std, data.num_classes, settings,
                                               progress=False), device, warmup=1, repeats=3)
    test_batches = -(-len(data.labels("test")) // EVAL_BATCH)
    capacity, what = capacity_mb(device)
    compiled = compile_choice.decide(t.compile, model, in_chans=data.in_channels, resolution=data.resolution,
                                     batch_size=t.batch_size, total_steps=t.epochs * steps, device=device)
    per_step, startup = step.median, step.startup + test.startup
    layout = "NHWC" if channels_last else "NCHW"
    how = f"{layout}, eager"
    if compiled.compile:
        ratio = compile_choice.COMPILED_RATIO.get(device.type, 1.0)
        first = compile_choice.FIRST_CALL_SECONDS.get(device.type, 0.0)
        per_step, startup = per_step * ratio, startup + first
        how = f"{layout}, compiled: {ratio:g} x the timed eager step + {first:.0f} s first call"
    label = "train" + (" (stand-in cell: none derived yet)" if source.path == STAND_IN_PATH else "") + f" [{how}]"
    return StageEstimate(label, per_step, startup, steps * t.epochs,
                         test.median * test_batches, t.epochs, peak_memory_mb(device), capacity, what,
                         device_name(device))
