"""Evaluation networks: timm registration, one training step each, published parameter counts, drop-path."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F

import rome.models  # noqa: F401  (registers the networks with timm)
from rome.errors import RomeError
from rome.genotype import Genotype, NB201Genotype, load_genotype
from rome.models import MODEL_NAMES, count_parameters
from rome.models.cells import DartsCell

REPO = Path(__file__).resolve().parents[1]
DARTS_V2 = REPO / "src" / "rome" / "genotype" / "published" / "darts_v2.json"
NB201_ARCH = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"


def train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """One SGD step (auxiliary loss weighted 0.4 as DARTS); returns the loss and checks weights moved."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    out = model(x)
    if isinstance(out, tuple):
        logits, aux = out
        loss = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)
    else:
        loss = F.cross_entropy(out, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    return float(loss.detach())


def test_registered_names():
    assert set(MODEL_NAMES.values()) <= set(timm.list_models("rome_*"))


@pytest.mark.parametrize("in_chans,size", [(1, 16), (3, 8)])
def test_darts_cifar_builds_and_trains(in_chans: int, size: int):
    torch.manual_seed(0)
    model = timm.create_model("rome_darts_cifar", genotype=str(DARTS_V2), num_classes=5, layers=3, init_channels=4,
                              auxiliary=True, drop_path_rate=0.2, in_chans=in_chans)
    assert model.drop_path_prob == 0.2
    x, y = torch.randn(4, in_chans, size, size), torch.randint(0, 5, (4,))
    out = model.train()(x)
    assert isinstance(out, tuple) and out[0].shape == out[1].shape == (4, 5)
    assert model.eval()(x).shape == (4, 5)  # eval mode: logits only
    model.set_drop_path(0.1)
    train_step(model, x, y)


def test_darts_cifar_at_32px_uses_darts_aux_pool():
    g = load_genotype(DARTS_V2)
    model = timm.create_model("rome_darts_cifar", genotype=g, num_classes=3, layers=3, init_channels=4, auxiliary=True)
    logits, aux = model.train()(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 3)
    no_aux = timm.create_model("rome_darts_cifar", genotype=g.to_dict(), num_classes=3, layers=3, init_channels=4)
    assert no_aux.train()(torch.randn(2, 3, 8, 8)).shape == (2, 3)  # no head: a tensor even when training


def test_darts_imagenet_builds_and_trains():
    torch.manual_seed(0)
    model = timm.create_model("rome_darts_imagenet", genotype=load_genotype(DARTS_V2), num_classes=4, layers=3,
                              init_channels=8, auxiliary=True, drop_path_rate=0.1, in_chans=3)
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 4, (2,))
    train_step(model, x, y)
    assert model.eval()(x).shape == (2, 4)


def test_nb201_builds_and_trains():
    torch.manual_seed(0)
    model = timm.create_model("rome_nb201", genotype=NB201_ARCH, num_classes=3, layers=1, init_channels=4, in_chans=1)
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 3, (4,))
    train_step(model, x, y)
    assert model.eval()(x).shape == (4, 3)


def test_published_parameter_counts():
    # DARTS-V2 on CIFAR-10, 20 cells, 36 channels: 3.3M (DARTS Table 1), counted without the auxiliary
    # head as DARTS's utils.count_parameters_in_MB does (3.349342 M in DARTS's training logs).
    g = load_genotype(DARTS_V2)
    cifar = timm.create_model("rome_darts_cifar", genotype=g, num_classes=10, layers=20, init_channels=36, auxiliary=True)
    assert abs(count_parameters(cifar) / 1e6 - 3.3) < 0.1
    assert count_parameters(cifar) == 3_349_342
    assert count_parameters(cifar, exclude_auxiliary=False) > count_parameters(cifar)
    # ImageNet mobile setting, 14 cells, 48 channels: 4.7M (DARTS Table 2)
    imagenet = timm.create_model("rome_darts_imagenet", genotype=g, num_classes=1000, layers=14, init_channels=48)
    assert abs(count_parameters(imagenet) / 1e6 - 4.7) < 0.1
    # NAS-Bench-201's largest cell (all nor_conv_3x3), CIFAR-10: 1.53M
    big = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    nb = timm.create_model("rome_nb201", genotype=big, num_classes=10)
    assert abs(count_parameters(nb) / 1e6 - 1.53) < 0.01


def test_drop_path_never_touches_identity():
    torch.manual_seed(0)
    skips = Genotype(normal=[("skip_connect", 0), ("skip_connect", 1)] * 2, normal_concat=[2, 3],
                     reduce=[("skip_connect", 0), ("skip_connect", 1)] * 2, reduce_concat=[2, 3])
    convs = Genotype(normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 2, normal_concat=[2, 3],
                     reduce=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 2, reduce_concat=[2, 3])
    x0, x1 = torch.randn(8, 4, 6, 6), torch.randn(8, 4, 6, 6)

    def two_runs(g: Genotype) -> tuple[torch.Tensor, torch.Tensor]:
        cell = DartsCell(*g.cell("normal"), 4, 4, 4, reduction=False, reduction_prev=False).train()
        torch.manual_seed(1)
        a = cell(x0, x1, 0.5)
        torch.manual_seed(2)
        return a, cell(x0, x1, 0.5)

    a, b = two_runs(skips)
    assert torch.equal(a, b)  # identity outputs are never dropped
    a, b = two_runs(convs)
    assert not torch.equal(a, b)  # conv outputs are, per sample


def test_bad_model_arguments():
    nb = NB201Genotype.from_arch_str(NB201_ARCH)
    with pytest.raises(RomeError, match="rome_darts_cifar: genotype is an NB201 cell"):
        timm.create_model("rome_darts_cifar", genotype=nb, layers=3, init_channels=4)
    with pytest.raises(RomeError, match="rome_nb201: genotype is a DARTS genotype"):
        timm.create_model("rome_nb201", genotype=str(DARTS_V2), layers=1, init_channels=4)
    with pytest.raises(RomeError, match="no auxiliary head"):
        timm.create_model("rome_nb201", genotype=nb, layers=1, init_channels=4, auxiliary=True)
    with pytest.raises(RomeError, match="genotype is required"):
        timm.create_model("rome_darts_cifar", layers=3, init_channels=4)
    with pytest.raises(RomeError, match="no pretrained weights"):
        timm.create_model("rome_darts_cifar", pretrained=True, genotype=str(DARTS_V2))
