"""channels_last: auto and train.compile: auto resolve by fixed rules, never by a timing taken at run time."""

from __future__ import annotations

import pathlib

import pytest
import torch

from rome.config import resolve
from rome.layout import nhwc_preferred, use_channels_last
from rome.training import compile as compile_choice
from rome.genotype.named import published_path
from rome.training import network

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_channels_last_auto_follows_the_device_rule():
    assert use_channels_last("auto", "cpu") is torch.backends.mkldnn.is_available()
    assert use_channels_last("auto", "cuda") is True
    assert nhwc_preferred(torch.device("meta")) is False
    assert use_channels_last(True, "meta") is True and use_channels_last(False, "cuda") is False


@pytest.mark.parametrize("preset", ["default", "smoke", "paper", "imagenet_search", "imagenet_train"])
def test_presets_layout_and_compile(tmp_path, preset):
    """Every preset leaves the layout to ``auto`` (issue 23: the measured faster layout by default)."""
    params = resolve({"preset": preset}, [f"results_dir={tmp_path}"], source="test")
    assert params["search"]["channels_last"] == "auto" and params["train"]["channels_last"] == "auto"
    assert params["train"]["compile"] == (False if preset == "smoke" else "auto")  # smoke (tests, CI): never


def _model(layers: int = 3, channels: int = 4, in_chans: int = 3) -> torch.nn.Module:
    src = network.load_source(published_path("darts_v2"))  # a published cell (package data)
    kw = {"genotype": src.genotype.to_dict(), "num_classes": 10, "in_chans": in_chans, "layers": layers,
          "init_channels": channels}
    return network.build("rome_darts_cifar", kw)


def test_compile_auto_needs_a_long_run():
    model, cpu = _model(), torch.device("cpu")
    short = compile_choice.decide("auto", model, in_chans=3, resolution=8, batch_size=16, total_steps=4, device=cpu)
    assert not short.compile and "would not repay" in short.reason
    long = compile_choice.decide("auto", model, in_chans=3, resolution=32, batch_size=64, total_steps=10**7, device=cpu)
    # on the CPU the compiling process steps at 0.9 x eager NHWC (measured, rome.allocator set): a long run repays
    assert compile_choice.COMPILED_RATIO["cpu"] < 1 and long.compile and "repays" in long.reason
    # the default preset's retraining (6 epochs x 62 steps of 16 px MNIST, batch 64, 6 cells, 12 channels) is far
    # too short for the ~90 s first call on a CPU; the paper's 600 epochs of 50,000 images at batch 96 are not
    default = compile_choice.decide("auto", _model(6, 12, in_chans=1), in_chans=1, resolution=16, batch_size=64,
                                    total_steps=6 * 62, device=cpu)
    paper = compile_choice.decide("auto", _model(20, 36), in_chans=3, resolution=32, batch_size=96,
                                  total_steps=600 * 521, device=cpu)
    assert not default.compile and "would not repay" in default.reason and paper.compile
    cuda = torch.device("cuda")  # the decision is a projection: no CUDA device is needed to make it
    assert compile_choice.decide("auto", model, in_chans=3, resolution=32, batch_size=64, total_steps=10**7,
                                 device=cuda).compile
    assert not compile_choice.decide("auto", model, in_chans=3, resolution=8, batch_size=16, total_steps=4,
                                     device=cuda).compile
    # deterministic: the same inputs give the same choice and reason
    again = compile_choice.decide("auto", model, in_chans=3, resolution=32, batch_size=64, total_steps=10**7, device=cpu)
    assert again == long
    assert compile_choice.decide(True, model, in_chans=3, resolution=8, batch_size=1, total_steps=1, device=cpu).compile
    assert not compile_choice.decide(False, model, in_chans=3, resolution=8, batch_size=1, total_steps=1,
                                     device=cpu).compile
