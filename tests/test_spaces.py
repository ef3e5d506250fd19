"""Search spaces as data and the candidate operations."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rome.errors import RomeError
from rome.spaces import SPACES, get_space
from rome.spaces.darts import DARTS_OPS, S1_NORMAL, S1_REDUCE
from rome.spaces.nb201 import NB201_OP_NAMES
from rome.spaces.ops import (
    NB201_OPS,
    OPS,
    PARAMETER_FREE_OPS,
    FactorizedReduce,
    ResNetBasicBlock,
    make_op,
    make_search_op,
)



def test_darts_space_edges_and_ops() -> None:
    space = get_space("darts")
    assert space.kind == "darts" and space.cell_types == ("normal", "reduce")
    assert space.n_edges == 14
    # DARTS order: node0 <- {0,1}, node1 <- {0,1,2}, ... as (src, dst) state indices
    assert space.edges[:5] == ((0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert space.edges[-1] == (4, 5)
    assert [len(space.incoming(d)) for d in space.dst_nodes] == [2, 3, 4, 5]
    assert space.in_degree == (2, 2, 2, 2)
    assert "none" not in DARTS_OPS and len(DARTS_OPS) == 7
    assert all(space.ops(ct, e) == list(DARTS_OPS) for ct in space.cell_types for e in range(14))
    assert space.selects_topology


def test_s1_ops_are_per_edge_and_per_cell_type() -> None:
    space = get_space("s1")
    assert [space.ops("normal", e) for e in range(14)] == [list(o) for o in S1_NORMAL]
    assert [space.ops("reduce", e) for e in range(14)] == [list(o) for o in S1_REDUCE]
    assert space.ops("normal", 0) == ["skip_connect", "dil_conv_3x3"]
    assert space.ops("reduce", 1) == ["max_pool_3x3", "dil_conv_3x3"]
    assert space.ops("normal", 12) == ["dil_conv_3x3", "dil_conv_5x5"]
    assert len({tuple(space.ops("normal", e)) for e in range(14)}) > 1
    with pytest.raises(RomeError, match="s1"):
        get_space("s1", nodes=3)


@pytest.mark.parametrize(("name", "ops"), [("s2", ["skip_connect", "sep_conv_3x3"]),
                                           ("s3", ["none", "skip_connect", "sep_conv_3x3"]),
                                           ("s4", ["noise", "sep_conv_3x3"])])
def test_uniform_rdarts_spaces(name: str, ops: list[str]) -> None:
    space = get_space(name)
    assert all(space.ops(ct, e) == ops for ct in space.cell_types for e in range(space.n_edges))


def test_nb201_space() -> None:
    space = get_space("nb201")
    assert space.kind == "nb201" and space.cell_types == ("normal",)
    assert space.edges == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert space.ops("normal", 3) == list(NB201_OP_NAMES)
    assert space.in_degree == (1, 2, 3)  # every edge kept
    assert not space.selects_topology


def test_size_knob_nodes() -> None:
    assert get_space("darts", nodes=3).n_edges == 2 + 3 + 4
    assert get_space("nb201", nodes=5).n_edges == 10
    assert get_space("s2", nodes=5).n_edges == 20


def test_unknown_space_names_the_key() -> None:
    with pytest.raises(RomeError, match=r"search\.space = 'nope'"):
        get_space("nope")
    assert set(SPACES) == {"darts", "s1", "s2", "s3", "s4", "nb201"}
    with pytest.raises(RomeError, match="cell type"):
        get_space("nb201").ops("reduce", 0)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("side", [8, 7])
def test_darts_op_shapes(name: str, stride: int, side: int) -> None:
    x = torch.randn(2, 4, side, side)
    out_side = -(-side // stride)
    for op in (OPS[name](4, stride, True), make_search_op(name, 4, stride)):
        assert op(x).shape == (2, 4, out_side, out_side)


def test_search_pools_get_batchnorm_only_in_search() -> None:
    for name in ("max_pool_3x3", "avg_pool_3x3"):
        search = make_search_op(name, 4, 1)
        assert isinstance(search, nn.Sequential) and isinstance(search[-1], nn.BatchNorm2d)
        assert not search[-1].affine
        assert not any(isinstance(m, nn.BatchNorm2d) for m in OPS[name](4, 1, True).modules())
    conv = make_search_op("sep_conv_3x3", 4, 1)
    assert all(not m.affine for m in conv.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(m.affine for m in OPS["sep_conv_3x3"](4, 1, True).modules() if isinstance(m, nn.BatchNorm2d))
    with pytest.raises(RomeError, match="unknown DARTS operation"):
        make_op("conv_7x7", 4, 1, False)


def test_parameter_free_ops_have_no_parameters_at_stride_1() -> None:
    assert PARAMETER_FREE_OPS == {"none", "noise", "skip_connect", "max_pool_3x3", "avg_pool_3x3"}
    for name in PARAMETER_FREE_OPS:
        assert sum(p.numel() for p in OPS[name](4, 1, True).parameters()) == 0
    for name in set(OPS) - PARAMETER_FREE_OPS:
        assert sum(p.numel() for p in OPS[name](4, 1, True).parameters()) > 0


def test_none_and_noise_ignore_the_input_values() -> None:
    x = torch.randn(2, 4, 8, 8)
    assert torch.count_nonzero(OPS["none"](4, 2, True)(x)) == 0
    torch.manual_seed(0)
    a = OPS["noise"](4, 1, True)(x)
    torch.manual_seed(0)
    b = OPS["noise"](4, 1, True)(x * 100)
    assert torch.equal(a, b) and a.std() > 0.5


def test_avg_pool_excludes_padding() -> None:
    x = torch.ones(1, 1, 4, 4)
    assert torch.allclose(OPS["avg_pool_3x3"](1, 1, True)(x), x)


@pytest.mark.parametrize("channels_last", [False, True])
def test_factorized_reduce_matches_darts_on_even_sides(channels_last: bool) -> None:
    """The second path's stride-1 conv of x[1::2, 1::2] is DARTS's stride-2 conv of x[1:, 1:]: the same
    products, equal to float rounding (oneDNN may pick another kernel for the other strides), forward and
    backward, in either layout."""
    torch.manual_seed(0)
    fr = FactorizedReduce(4, 6, affine=False).eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 4, 8, 8).to(memory_format=fmt).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    w_ref = fr.conv_2.weight.detach().clone().requires_grad_()
    h = F.relu(x_ref)
    expected = fr.bn(torch.cat([fr.conv_1(h), F.conv2d(h[:, :, 1:, 1:], w_ref, stride=2)], dim=1))
    out = fr(x)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    g = torch.randn_like(out)
    out.backward(g)
    expected.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fr.conv_2.weight.grad, w_ref.grad, rtol=1e-6, atol=1e-6)


def test_factorized_reduce_pads_odd_sides_with_zeros() -> None:
    """Odd sides: the shifted input's zero row / column at the bottom / right gives a zero last row / column
    of the second path (computed here without a conv kernel)."""
    torch.manual_seed(0)
    fr = FactorizedReduce(3, 4, affine=False).eval()
    x = torch.randn(2, 3, 7, 9)
    h = F.relu(x)
    shifted = F.pad(h, (0, 1, 0, 1))[:, :, 1::2, 1::2]  # rows 1, 3, 5, 7 (7: the zero pad)
    second = torch.einsum("nchw,oc->nohw", shifted, fr.conv_2.weight[:, :, 0, 0])
    first = torch.einsum("nchw,oc->nohw", h[:, :, ::2, ::2], fr.conv_1.weight[:, :, 0, 0])
    assert second.shape == first.shape == (2, 2, 4, 5)
    expected = fr.bn(torch.cat([first, second], dim=1))
    assert torch.allclose(fr(x), expected, atol=1e-6)
    out = fr(x)  # eval BN with fresh statistics maps zeros to zeros: the padded last row and column
    assert not out[:, 2:, -1].any() and not out[:, 2:, :, -1].any() and out[:, 2:, :-1, :-1].abs().sum() > 0


def test_nb201_ops_and_resnet_block() -> None:
    x = torch.randn(2, 4, 8, 8)
    for name, build in NB201_OPS.items():
        assert build(4, 4, 1, False)(x).shape == (2, 4, 8, 8), name
        assert build(4, 8, 2, False)(x).shape == (2, 8, 4, 4), name
    assert ResNetBasicBlock(4, 8, 2)(x).shape == (2, 8, 4, 4)
    assert ResNetBasicBlock(4, 8, 2)(torch.randn(2, 4, 7, 7)).shape == (2, 8, 4, 4)
    assert ResNetBasicBlock(4, 4, 1)(x).shape == (2, 4, 8, 8)
