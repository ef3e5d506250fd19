"""Which evaluation network to retrain, built from which genotype, with which constructor kwargs.

The kwargs returned here are exactly what ``model.json`` records, so ``rome evaluate`` (or any
user) rebuilds the same network with ``timm.create_model(network, **kwargs)``. They describe the
deployable network: no auxiliary head (it exists only while training) and no drop-path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch

from rome.artifacts import parse_json_file
from rome.errors import RomeError
from rome.genotype.files import GENOTYPE_FILE, load_genotype
from rome.genotype.named import resolve_genotype_ref
from rome.genotype.types import NB201Genotype
from rome.models import MODEL_NAMES  # importing rome.models registers the rome_* networks with timm
from rome.paths import input_dir
from rome.sections import TrainConfig
from rome.spaces.ops import imagenet_sized

NB201_NETWORK = MODEL_NAMES["nb201"]


@dataclass(frozen=True)
class GenotypeSource:
    """A genotype plus where it came from (recorded in model.json)."""

    path: Path
    genotype: Any  # rome.genotype.Genotype | NB201Genotype
    space: str | None
    provenance: dict[str, Any] | None

    @property
    def is_nb201(self) -> bool:
        return isinstance(self.genotype, NB201Genotype)

    @property
    def nb201_arch(self) -> str | None:
        return self.genotype.to_arch_str() if self.is_nb201 else None


def genotype_path(params: dict[str, Any]) -> Path:
    """train.genotype when set (a published cell's name such as darts_v2, else a genotype file path),
    else the derive stage's genotype.json."""
    given = params["train"]["genotype"]
    return resolve_genotype_ref(given) if given else input_dir(params, "derive") / GENOTYPE_FILE


def load_source(path: Path) -> GenotypeSource:
    genotype = load_genotype(path)  # one-line RomeError on a missing or malformed file
    space, prov = None, None
    if path.suffix == ".json":
        doc = parse_json_file(path, "genotype file")
        if isinstance(doc, dict):
            space, prov = doc.get("space"), doc.get("provenance")
    if space is None:
        space = "nb201" if isinstance(genotype, NB201Genotype) else "darts"
    return GenotypeSource(path, genotype, space, prov)


def network_name(choice: str, source: GenotypeSource, resolution: int) -> str:
    """train.network -> timm name; ``auto`` follows the genotype and the images: an NB201 cell -> rome_nb201; a
    DARTS genotype -> the ImageNet network (three stride-2 stem convs) for ImageNet-like images of
    ``IMAGENET_MIN_SIDE`` px and more (224 px ImageNet), the CIFAR network below (the rule of ``search.stem:
    auto``, so a 224 px run searches and retrains with the ImageNet stems)."""
    if choice == "auto":
        if source.is_nb201:
            return NB201_NETWORK
        return MODEL_NAMES["darts_imagenet" if imagenet_sized(resolution) else "darts_cifar"]
    name = MODEL_NAMES[choice]
    if (name == NB201_NETWORK) != source.is_nb201:
        kind = "an NB201 cell" if source.is_nb201 else "a DARTS-format genotype"
        raise RomeError(f"train.network = {choice!r}: {source.path} holds {kind}; expected "
                        f"{'nb201' if source.is_nb201 else 'darts_cifar or darts_imagenet'} (or auto)")
    return name


def data_config(in_chans: int, resolution: int, mean: Sequence[float], std: Sequence[float]) -> dict[str, Any]:
    """timm's ``pretrained_cfg_overlay`` for the data a model is trained on: with it in the model's
    kwargs, ``timm.data.resolve_model_data_config(model)`` returns this input size and normalisation
    (rome.models.base.with_pretrained_cfg) instead of 3x224 ImageNet statistics."""
    return {"input_size": [in_chans, resolution, resolution], "mean": [float(m) for m in mean],
            "std": [float(v) for v in std], "interpolation": "bilinear", "crop_pct": 1.0}


def model_kwargs(source: GenotypeSource, num_classes: int, in_chans: int, train: TrainConfig,
                 data_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """Constructor kwargs of the deployable network (JSON-serialisable, genotype as a dict).

    ``layers`` / ``init_channels`` mean cells and initial channels for the DARTS networks, cells
    per stage (N) and stem channels for NB201 (whose protocol is N = 5, C = 16). ``data_cfg``
    (``data_config``) becomes timm's ``pretrained_cfg_overlay``.
    """
    kwargs = {"genotype": source.genotype.to_dict(), "num_classes": num_classes, "in_chans": in_chans,
              "layers": train.layers, "init_channels": train.init_channels}
    if data_cfg is not None:
        kwargs["pretrained_cfg_overlay"] = data_cfg
    return kwargs


def build(name: str, kwargs: dict[str, Any], auxiliary: bool = False,
          drop_path_rate: float = 0.0) -> torch.nn.Module:
    """timm.create_model with the training-only extras (auxiliary head, drop-path) added."""
    extra: dict[str, Any] = {}
    if drop_path_rate:
        extra["drop_path_rate"] = drop_path_rate
    if auxiliary:
        extra["auxiliary"] = True
    return timm.create_model(name, **kwargs, **extra)


def supports_auxiliary(name: str) -> bool:
    """The NAS-Bench-201 protocol has no auxiliary head (its network refuses one)."""
    return name != NB201_NETWORK


def set_drop_path(model: torch.nn.Module, p: float) -> None:
    """The DARTS ramp is applied by the trainer each epoch through the network's own knob."""
    setter = getattr(model, "set_drop_path", None)
    if setter is not None:
        setter(p)
    elif hasattr(model, "drop_path_prob"):
        model.drop_path_prob = p
