"""Typed, frozen views of the params sections, built once at the stage boundary.

A stage resolves params (``rome.config``), turns the sections it reads into these dataclasses and
passes them (or plain arguments) inward, the way timm passes ``optimizer_kwargs(cfg)`` into
``create_optimizer_v2``: the library never digs string keys out of a params dict, and the keys a
stage reads are declared here, once. The fields mirror the schema's properties of each section
(``tests/test_sections.py`` checks that they are the same set), so a key added to the schema
without a field here fails the tests, not a run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T", bound="Section")


class Section:
    """Shared constructors of the section dataclasses."""

    NAME = ""

    @classmethod
    def from_params(cls: type[T], params: dict[str, Any]) -> T:
        """The section of resolved (schema-validated) params as a frozen dataclass."""
        return cls(**params[cls.NAME])  # type: ignore[call-arg]

    def as_dict(self) -> dict[str, Any]:
        """Plain values, e.g. for a checkpoint's identity or a provenance block."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class DataConfig(Section):
    NAME = "data"
    dataset: str
    root: str | None
    download: bool
    resize: int | None
    split_seed: int
    test_fraction: float
    storage: str
    subset: dict[str, int | None]
    max_pixels: int


@dataclass(frozen=True)
class SearchConfig(Section):
    NAME = "search"
    space: str
    algorithm: str
    rome_variant: str
    topology: bool
    k_samples: int
    epochs: int
    steps_per_epoch: int | None
    batch_size: int
    layers: int
    init_channels: int
    nodes: int
    partial_channels: int
    stem: str
    augment: str
    mode: str
    unrolled: bool | None
    arch_warmup_epochs: int | None
    behaviour: dict[str, bool]
    indicators: dict[str, Any]
    early_stop: dict[str, Any]
    w_lr: float
    w_lr_min: float
    w_momentum: float
    w_weight_decay: float
    grad_clip: float
    a_lr: float
    a_beta1: float
    a_beta2: float
    a_weight_decay: float
    arch_init_std: float
    tau_max: float
    tau_min: float
    channels_last: str | bool  # auto | true | false: rome.layout.use_channels_last resolves it
    amp: str
    workers: int
    nproc: int
    parallel: str


@dataclass(frozen=True)
class DeriveConfig(Section):
    NAME = "derive"
    plot: bool


@dataclass(frozen=True)
class TrainConfig(Section):
    NAME = "train"
    network: str
    genotype: str | None
    epochs: int
    steps_per_epoch: int | None
    batch_size: int
    layers: int
    init_channels: int
    lr: float
    lr_min: float
    warmup_epochs: int
    momentum: float
    weight_decay: float
    grad_clip: float | None
    drop_path: float
    auxiliary_weight: float
    random_erasing: float
    mixup: float
    label_smoothing: float
    ema: bool
    ema_decay: float
    sync_bn: bool
    channels_last: str | bool  # auto | true | false: rome.layout.use_channels_last resolves it
    amp: str
    compile: str | bool  # auto | true | false: rome.training.compile.decide resolves it
    workers: int
    nproc: int


@dataclass(frozen=True)
class EvaluateConfig(Section):
    NAME = "evaluate"
    batch_size: int
    latency_batches: int
    benchmark_table: str | None
    benchmark_dataset: str
    workers: int


SECTIONS: tuple[type[Section], ...] = (DataConfig, SearchConfig, DeriveConfig, TrainConfig, EvaluateConfig)
