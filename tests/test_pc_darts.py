"""PC-DARTS: partial channels against a re-statement of its MixedOp, edge normalisation, its derivation rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rome.errors import RomeError
from rome.genotype.derivation import CellSearchSpace, derivation_rule, derive_cell
from rome.search.algorithms import SearchAlgorithm
from rome.search.step import arch_gradients
from rome.search.supernet import DartsSearchCell, build_supernet
from rome.spaces import get_space


def reference_mixed_op(x: torch.Tensor, ops, weights: torch.Tensor, k: int, shuffle: bool = True) -> torch.Tensor:
    """PC-DARTS's ``MixedOp.forward`` re-stated: split, weighted ops on the 1/k part, concat, shuffle.

    The shuffle is written as the permutation it is (output channel c' * k + g = input channel g * C/k + c'),
    not as view/transpose, so it checks the supernet's ``channel_shuffle`` independently.
    """
    c = x.shape[1]
    xtemp, xtemp2 = x[:, :c // k], x[:, c // k:]
    temp1 = sum(w * op(xtemp) for w, op in zip(weights, ops))
    ans = torch.cat([temp1, xtemp2 if temp1.shape[2] == x.shape[2] else F.max_pool2d(xtemp2, 2, 2)], dim=1)
    per_group = c // k
    perm = [g * per_group + j for j in range(per_group) for g in range(k)]
    return ans[:, perm] if shuffle else ans


def reference_cell(cell: DartsSearchCell, s0: torch.Tensor, s1: torch.Tensor, alpha: torch.Tensor,
                   beta: torch.Tensor, k: int, shuffle: bool = True) -> torch.Tensor:
    """PC-DARTS's ``Cell.forward``: node i sums weights2[j] * MixedOp_j(h_j) over its i + 2 inputs; weights2 =
    softmax of the node's betas (the ``betas_normal[start:end]`` slices of its ``Network.forward``)."""
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    weights = F.softmax(alpha, dim=-1)
    offset = 0
    for _ in range(4):
        n = len(states)
        weights2 = F.softmax(beta[offset:offset + n], dim=-1)
        states.append(sum(weights2[j] * reference_mixed_op(h, cell.edge_ops[offset + j], weights[offset + j], k, shuffle)
                          for j, h in enumerate(states)))
        offset += n
    return torch.cat(states[2:], dim=1)


@pytest.mark.parametrize("cell_type", ["normal", "reduce"])
def test_partial_channel_cell_equals_the_reference_mixed_op(cell_type: str) -> None:
    space = get_space("darts")
    torch.manual_seed(0)
    algo = SearchAlgorithm("pc_darts", space, init_std=1.0, generator=torch.Generator().manual_seed(3))
    assert algo.partial == 4
    cell = DartsSearchCell(space, cell_type, 12, 12, 8, reduction_prev=False, partial=algo.partial)
    s0, s1 = torch.randn(3, 12, 8, 8), torch.randn(3, 12, 8, 8)
    ours = cell(s0, s1, algo.paths(None, 1.0)[cell_type])
    expected = reference_cell(cell, s0, s1, algo.arch.alpha[cell_type], algo.arch.beta[cell_type], 4)
    assert ours.shape == expected.shape == (3, 32, 4 if cell_type == "reduce" else 8, 4 if cell_type == "reduce" else 8)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
    # the shuffle matters: without it the outputs differ
    unshuffled = reference_cell(cell, s0, s1, algo.arch.alpha[cell_type], algo.arch.beta[cell_type], 4, shuffle=False)
    assert not torch.allclose(ours, unshuffled, atol=1e-3)


def test_edge_normalisation_gradient_reaches_beta_and_equals_finite_differences() -> None:
    space = get_space("darts")
    torch.manual_seed(0)
    algo = SearchAlgorithm("pc_darts", space, init_std=0.5, generator=torch.Generator().manual_seed(1))
    model = build_supernet(space, 4, 3, 3, 3, partial=algo.partial).double()
    algo.arch.double()
    model.eval()  # BN with running statistics: the loss is a smooth function of beta alone
    x, y = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    arch_gradients(model, algo, x, y, [None], tau=1.0)
    beta = algo.arch.beta["normal"]
    assert beta.grad is not None and beta.grad.shape == (14,)
    assert (beta.grad.abs() > 0).all()  # every edge, node 0's two included
    for node in ([0, 1], [2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12, 13]):  # softmax per node: gradients sum to 0
        assert abs(float(beta.grad[node].sum())) < 1e-10

    def loss() -> float:
        with torch.no_grad():
            return float(F.cross_entropy(model(x, algo.paths(None, 1.0)), y))

    eps = 1e-5
    for e in (0, 5, 13):
        with torch.no_grad():
            beta[e] += eps
            up = loss()
            beta[e] -= 2 * eps
            down = loss()
            beta[e] += eps
        assert float(beta.grad[e]) == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-9)


OPS = ("none", "sep_conv_3x3", "skip_connect")
CELL = CellSearchSpace((OPS,) * 5, ((0, 2), (1, 2), (0, 3), (1, 3), (2, 3)))
ALPHA = np.array([[5.0, 1.0, 0.0],   # node 2: 'none' dominates edge 0, which must not count
                  [0.0, 1.0, 0.0],
                  [0.0, 3.0, 0.0],   # node 3: the strongest op weight, but a small beta
                  [0.0, 0.0, 2.0],
                  [0.0, 1.0, 1.5]])


def test_pc_darts_rule_ranks_edges_by_op_weight_times_normalised_beta() -> None:
    """Hand computation: node 2 edge strengths 0.0179 x 0.99995 vs 0.576 x 4.5e-5 -> input 0; node 3:
    0.909 x 0.035, 0.787 x 0.260, 0.547 x 0.705 -> edges 4 then 3 (skip_connect from states 2 and 1)."""
    beta = np.array([10.0, 0.0, -2.0, 0.0, 1.0])
    got = derive_cell(CELL, ALPHA, "pc_darts", k=[1, 2], beta=beta)
    assert got == [[("sep_conv_3x3", 0)], [("skip_connect", 2), ("skip_connect", 1)]]
    # DARTS's rule (no beta) picks otherwise on both nodes, so beta is what decided
    assert derive_cell(CELL, ALPHA, "darts", k=[1, 2]) == [[("sep_conv_3x3", 1)], [("sep_conv_3x3", 0), ("skip_connect", 1)]]
    # equal betas within each node: PC-DARTS's rule reduces to DARTS's
    assert derive_cell(CELL, ALPHA, "pc_darts", k=[1, 2], beta=np.zeros(5)) == derive_cell(CELL, ALPHA, "darts", k=[1, 2])
    with pytest.raises(RomeError, match="needs beta"):
        derive_cell(CELL, ALPHA, "pc_darts", k=[1, 2])


def test_pc_darts_derivation_rule_is_chosen_by_the_registry() -> None:
    assert derivation_rule("pc_darts", "darts", True) == "pc_darts"
    assert derivation_rule("pc_darts", "s3", True) == "pc_darts"
    assert derivation_rule("pc_darts", "nb201", True) == "nb201"  # NB201 keeps every edge
    assert derivation_rule("rome", "darts", True) == "rome"
    algo = SearchAlgorithm("pc_darts", get_space("darts"), generator=torch.Generator().manual_seed(0))
    assert algo.derivation_rule == "pc_darts" and algo.k_samples == 1 and algo.draw(torch.Generator()) is None
    assert all(len(entries) == 8 for entries in algo.genotype().values())


def test_partial_channels_must_divide_the_width() -> None:
    space = get_space("darts")
    with pytest.raises(RomeError, match="search.partial_channels = 3: must divide"):
        build_supernet(space, 4, 3, 3, 3, partial=3)
    algo = SearchAlgorithm("darts", space, partial_channels=4, generator=torch.Generator().manual_seed(0))
    assert algo.partial == 1  # only pc_darts reads the key
