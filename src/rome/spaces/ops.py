"""Candidate operations of the DARTS / R-DARTS spaces and of NAS-Bench-201.

One definition serves the search supernet and the evaluation networks: ``affine`` is False in
search (DARTS protocol) and True in evaluation, and pools get a trailing BatchNorm only in the
search network (``make_search_op`` / ``pool_bn=True``), as DARTS's MixedOp does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------- building blocks


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv (no bias) -> BN: the preprocessing of DARTS cells and NB201's nor_conv."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True, dilation: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU -> depthwise dilated kxk -> pointwise 1x1 -> BN."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, dilation: int,
                 affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked (ReLU, depthwise kxk, pointwise 1x1, BN); only the first depthwise conv strides."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine),
        )


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The 'none' op: zeros of the output shape (strided at stride 2), keeping the graph connected."""

    def __init__(self, stride: int, C_out: int | None = None) -> None:
        super().__init__()
        self.stride, self.C_out = stride, C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.C_out is not None and self.C_out != x.shape[1]:
            shape = (x.shape[0], self.C_out, x.shape[2], x.shape[3])
            return x.new_zeros(shape)
        return x.mul(0.0)


class Noise(nn.Module):
    """R-DARTS S4 'noise': N(0, 1) of the output shape, ignoring the input values (parameter-free).

    Draws from torch's global generator, so a seeded run stays reproducible and resumable.
    """

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return torch.randn(x.shape, dtype=x.dtype, device=x.device)


class FactorizedReduce(nn.Module):
    """ReLU, two 1x1 stride-2 convs (the second on the input shifted by one pixel), concat, BN.

    DARTS writes the second path as ``conv_2(x[:, :, 1:, 1:])`` with stride 2. A 1x1 stride-2 conv of
    the shifted input reads exactly the pixels (2i + 1, 2j + 1), so here ``conv_2`` has stride 1 and
    convolves the view ``x[:, :, 1::2, 1::2]``: the same products, equal to float rounding on even sides
    (oneDNN may pick another kernel for other strides; tests/test_spaces.py), with a quarter of the input
    copied to the conv's layout instead of the whole shifted input, padded first. Measured on the retraining network (paper size, channels_last, compiled, 2-core CPU):
    the layout copies fell from ~60 to ~17 ms of a ~0.29 s step. It also keeps clear of a heap corruption
    in torch 2.14's CPU conv backward: a stride-2 conv of a padded-and-sliced channels_last input at odd
    sides crashed later calls (segfault or glibc abort in 4 of 8 runs of a 4-call script; never with this form).
    Odd sides: DARTS's shape rule is this module's old one, a zero row and column at the bottom/right of
    the shifted input, which a bias-free 1x1 conv maps to zeros; so the second path's output is
    zero-padded to the first's shape.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even C_out, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=1, bias=False)  # on the pixels (2i + 1, 2j + 1)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        first = self.conv_1(x)
        second = self.conv_2(x[:, :, 1::2, 1::2])
        if second.shape[-2:] != first.shape[-2:]:  # odd sides: the zero-padded row / column
            second = F.pad(second, (0, first.shape[-1] - second.shape[-1], 0, first.shape[-2] - second.shape[-2]))
        return self.bn(torch.cat([first, second], dim=1))


def _pool(kind: str, stride: int) -> nn.Module:
    if kind == "max":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)


# ----------------------------------------------------------------------------- DARTS ops

OPS: dict[str, Callable[[int, int, bool], nn.Module]] = {
    "none": lambda C, stride, affine: Zero(stride),
    "noise": lambda C, stride, affine: Noise(stride),
    "avg_pool_3x3": lambda C, stride, affine: _pool("avg", stride),
    "max_pool_3x3": lambda C, stride, affine: _pool("max", stride),
    "skip_connect": lambda C, stride, affine: Identity() if stride == 1 else FactorizedReduce(C, C, affine),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine),
}
"""DARTS op name -> constructor ``(C, stride, affine)``; evaluation-network semantics (no BN after pools)."""

PARAMETER_FREE_OPS: frozenset[str] = frozenset({"none", "noise", "skip_connect", "max_pool_3x3", "avg_pool_3x3"})
"""Ops counted as parameter-free in collapse statistics (skip_connect even at stride 2, as R-DARTS counts it)."""

POOL_OPS: frozenset[str] = frozenset({"max_pool_3x3", "avg_pool_3x3"})


def make_op(name: str, C: int, stride: int, affine: bool, pool_bn: bool = False) -> nn.Module:
    """Build one DARTS op; ``pool_bn`` appends BatchNorm(affine=False) to pools (search network only)."""
    if name not in OPS:
        from rome.errors import RomeError

        raise RomeError(f"op {name!r}: unknown DARTS operation; expected one of {sorted(OPS)}")
    op = OPS[name](C, stride, affine)
    if pool_bn and name in POOL_OPS:
        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
    return op


def make_search_op(name: str, C: int, stride: int, pool_bn: bool = True) -> nn.Module:
    """The search-network version: affine=False everywhere and BN after pools (DARTS protocol; GDAS's
    reference mode passes ``pool_bn=False``: its search pools have none)."""
    return make_op(name, C, stride, affine=False, pool_bn=pool_bn)


# ----------------------------------------------------------------------------- NAS-Bench-201 ops


class NB201Pool(nn.Module):
    """NB201 avg_pool_3x3: a 1x1 ReLU-conv-BN first only when the channel count changes."""

    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool) -> None:
        super().__init__()
        self.preprocess = ReLUConvBN(C_in, C_out, 1, 1, 0, affine) if C_in != C_out else None
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.pool(x)


def _nb201_skip(C_in: int, C_out: int, stride: int, affine: bool) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return Identity()
    if stride == 2:
        return FactorizedReduce(C_in, C_out, affine)
    return ReLUConvBN(C_in, C_out, 1, 1, 0, affine)


NB201_OPS: dict[str, Callable[[int, int, int, bool], nn.Module]] = {
    "none": lambda C_in, C_out, stride, affine: Zero(stride, C_out),
    "skip_connect": _nb201_skip,
    "nor_conv_1x1": lambda C_in, C_out, stride, affine: ReLUConvBN(C_in, C_out, 1, stride, 0, affine),
    "nor_conv_3x3": lambda C_in, C_out, stride, affine: ReLUConvBN(C_in, C_out, 3, stride, 1, affine),
    "avg_pool_3x3": lambda C_in, C_out, stride, affine: NB201Pool(C_in, C_out, stride, affine),
}
"""NAS-Bench-201 op name -> constructor ``(C_in, C_out, stride, affine)``."""


class ResNetBasicBlock(nn.Module):
    """NB201's stride-2 block between stages: two ReLU-conv3x3-BN plus an avgpool+1x1 shortcut."""

    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool = True) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"invalid stride {stride}")
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1, affine)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine)
        if stride == 2:
            self.downsample: nn.Module | None = nn.Sequential(
                # ceil_mode: odd sides match the stride-2 conv path (identical to NB201 for even sides)
                nn.AvgPool2d(2, stride=2, padding=0, ceil_mode=True), nn.Conv2d(C_in, C_out, 1, bias=False))
        elif C_in != C_out:
            self.downsample = ReLUConvBN(C_in, C_out, 1, 1, 0, affine)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return residual + self.conv_b(self.conv_a(x))


# ----------------------------------------------------------------------------- network stems

STEMS = ("auto", "cifar", "imagenet")
IMAGENET_MIN_SIDE = 96
"""``auto`` takes the ImageNet stem (and ``train.network: auto`` the ImageNet network) from this side up.

Our choice (neither paper has an automatic rule): the CIFAR stem keeps the side, the ImageNet stem
divides it by 8, and both DARTS networks run their first cells at about 30 px (32 on CIFAR, 28 at
224 px). From 96 px the ImageNet stem's first cells (>= 12 px) are the nearer of the two to that
(the crossover is ~85 px; 96 = 3 x 32 is the first side past it that every halving keeps even), so
CIFAR (32), SVHN, mnist5k, ImageNet16 and Tiny-ImageNet (64) keep the CIFAR stem and 224 px ImageNet
gets the ImageNet one."""


def imagenet_sized(resolution: int) -> bool:
    """Whether ``auto`` treats images of this side as ImageNet-like (``IMAGENET_MIN_SIDE``)."""
    return resolution >= IMAGENET_MIN_SIDE


def imagenet_stem(C_in: int, C: int, inplace: bool = True) -> tuple[nn.Sequential, nn.Sequential]:
    """The stride-2 three-convolution stem of DARTS's ``NetworkImageNet`` and PC-DARTS's ImageNet search.

    stem0 = conv3x3 s2 (C/2), BN, ReLU, conv3x3 s2 (C), BN; stem1 = ReLU, conv3x3 s2 (C), BN. The cells
    start at side / 8 (28 px at 224), the first reading stem0's side / 4 output as a reduced input.
    ``inplace``: the references' in-place ReLU at the head of stem1 also rectifies stem0's output, which
    every cell preprocessing rectifies again anyway, so False (the search supernet) changes no value.
    """
    stem0 = nn.Sequential(
        nn.Conv2d(C_in, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2), nn.ReLU(inplace=inplace),
        nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
    stem1 = nn.Sequential(nn.ReLU(inplace=inplace), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
                          nn.BatchNorm2d(C))
    return stem0, stem1
