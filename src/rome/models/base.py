"""What every evaluation network shares: the drop-path knob the trainer ramps, timm's entrypoint contract."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from rome.errors import RomeError

# Arguments timm.create_model always passes to an entrypoint; ours have no pretrained weights.
_TIMM_ONLY = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def entrypoint_kwargs(name: str, pretrained: bool, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Strip timm's factory arguments; refuse ``pretrained=True`` (no weights are published)."""
    if pretrained:
        raise RomeError(f"{name}: pretrained = True: no pretrained weights exist; expected pretrained = False")
    if kwargs.get("genotype") is None:
        raise RomeError(f"{name}: genotype is required (a published cell name such as darts_v2, a Genotype, "
                        f"a genotype.json mapping or path, or Genotype(...) text)")
    return {k: v for k, v in kwargs.items() if k not in _TIMM_ONLY}


def with_pretrained_cfg(model: EvalNetwork, name: str, side: int, kwargs: dict[str, Any]) -> EvalNetwork:
    """Attach timm's ``pretrained_cfg`` so ``timm.data.resolve_model_data_config(model)`` gives this
    network's input, not timm's 3x224 ImageNet fallback.

    The defaults describe the untrained network (its channels and classes, the protocol's image side,
    neutral 0.5 mean/std); ``pretrained_cfg_overlay`` (timm's own argument, which ``rome train``
    records in model.json from the data it trained on: input size, mean, std) overrides them.
    """
    overlay = kwargs.get("pretrained_cfg_overlay") or {}
    if not isinstance(overlay, dict):
        raise RomeError(f"{name}: pretrained_cfg_overlay = {overlay!r:.80}: expected a mapping such as "
                        "{'input_size': (3, 32, 32), 'mean': (...), 'std': (...)}")
    chans = int(kwargs.get("in_chans", 3))
    cfg: dict[str, Any] = {
        "architecture": name, "input_size": (chans, side, side), "mean": (0.5,) * chans, "std": (0.5,) * chans,
        "interpolation": "bilinear", "crop_pct": 1.0, "crop_mode": "center", "num_classes": model.num_classes,
        "classifier": "classifier",
    }
    cfg.update({k: tuple(v) if isinstance(v, list) else v for k, v in overlay.items()})
    cfg["num_classes"] = model.num_classes  # the head decides, whatever an overlay says
    model.pretrained_cfg = cfg
    model.default_cfg = cfg  # the name older timm code reads
    return model


class EvalNetwork(nn.Module):
    """Base of the evaluation networks.

    ``drop_path_prob`` is read by the cells at every forward; the train stage ramps it linearly
    over the epochs (``set_drop_path``), as DARTS does. It starts at ``drop_path_rate`` so a
    model used outside the trainer drops at the rate it was created with.

    Under ``torch.compile`` a Python float is a constant the graph is specialised on, so the ramp
    would recompile the network every epoch. ``compile_drop_path(True)`` (rome.training.compile) makes
    the cells read the probability from the 0-dim buffer ``drop_path_input`` instead, a graph input:
    one graph for the whole ramp. Eager runs keep the float and timm's ``drop_path`` (their masks,
    hence their bytes, are what they were); the buffer is not persistent, so checkpoints are alike.
    """

    num_classes: int
    num_features: int
    classifier: nn.Module
    pretrained_cfg: dict[str, Any]

    def __init__(self, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_path_rate < 1.0:
            raise RomeError(f"drop_path_rate = {drop_path_rate}: expected 0 <= rate < 1")
        self.drop_path_rate = float(drop_path_rate)
        self.register_buffer("drop_path_input", torch.tensor(float(drop_path_rate)), persistent=False)
        self.graph_drop_path = False
        self.drop_path_prob = float(drop_path_rate)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "drop_path_prob" and "drop_path_input" in self._buffers:  # the buffer follows the float
            with torch.no_grad():
                self._buffers["drop_path_input"].fill_(float(value))

    def set_drop_path(self, p: float) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability {p}: expected 0 <= p < 1")
        self.drop_path_prob = float(p)

    def compile_drop_path(self, on: bool = True) -> None:
        """Read the drop-path probability from the buffer (a graph input) rather than the float."""
        self.graph_drop_path = bool(on)

    def cell_drop_prob(self) -> float | torch.Tensor:
        """What the cells get: the float (eager) or the buffer (compiled; see the class docstring)."""
        return self.drop_path_input if self.graph_drop_path else self.drop_path_prob

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        if isinstance(getattr(self, "pretrained_cfg", None), dict):
            self.pretrained_cfg["num_classes"] = num_classes
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
