"""Gumbel-max / Gumbel-Top-k samplers: distributions, straight-through values and where gradients go."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rome.search.algorithms import SearchAlgorithm
from rome.search.sampling import (
    gumbel_max,
    gumbel_noise,
    gumbel_topk,
    linear_tau,
    straight_through,
    topk_inclusion_probability,
)
from rome.search.supernet import build_supernet
from rome.spaces import get_space



def test_gumbel_noise_is_finite_even_at_the_uniform_extremes(monkeypatch: pytest.MonkeyPatch) -> None:
    real_rand = torch.rand

    def extreme(shape, generator=None, dtype=torch.float32):  # noqa: ANN001
        u = real_rand(shape, generator=generator, dtype=dtype)
        u.view(-1)[0::2] = 0.0
        u.view(-1)[1::2] = 1.0
        return u

    monkeypatch.setattr(torch, "rand", extreme)
    g = gumbel_noise((1000,))
    assert torch.isfinite(g).all()


def test_gumbel_noise_is_replayable_from_a_generator() -> None:
    a = gumbel_noise((5, 7), torch.Generator().manual_seed(3))
    b = gumbel_noise((5, 7), torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_gumbel_top2_selects_two_distinct_entries() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5)
    for n in (2, 3, 4, 5):
        mask, w = gumbel_topk(logits[:n].expand(2000, n), gumbel_noise((2000, n), gen), 2, 1.0)
        assert (mask.sum(-1) == 2).all()
        # value of the straight-through weights is the hard mask
        assert torch.allclose(w, mask.float(), atol=1e-6)


def test_gumbel_top2_inclusion_matches_plackett_luce() -> None:
    gen = torch.Generator().manual_seed(1)
    beta = torch.tensor([1.2, -0.3, 0.4, 0.0, -1.0])
    p = F.softmax(beta, dim=0)
    expected = topk_inclusion_probability(p)
    assert torch.isclose(expected.sum(), torch.tensor(2.0))
    n = 200_000
    mask, _ = gumbel_topk(beta.expand(n, 5), gumbel_noise((n, 5), gen), 2, 1.0)
    freq = mask.float().mean(0)
    sigma = (expected * (1 - expected) / n).sqrt()
    assert ((freq - expected).abs() < 5 * sigma).all(), (freq, expected)
    # and it is not the naive "2 x softmax" (the test can tell the difference)
    assert ((freq - 2 * p).abs() > 5 * sigma).any()


def test_gumbel_max_frequencies_follow_softmax() -> None:
    gen = torch.Generator().manual_seed(2)
    alpha = torch.tensor([0.5, -1.0, 2.0, 0.0])
    n = 100_000
    index, w = gumbel_max(alpha.expand(n, 4), gumbel_noise((n, 4), gen), 0.5)
    freq = torch.bincount(index, minlength=4).float() / n
    p = F.softmax(alpha, dim=0)
    assert torch.allclose(freq, p, atol=5 * (0.25 / n) ** 0.5)
    assert torch.allclose(w, torch.ones(n), atol=1e-6)


def test_straight_through_value_and_gradient() -> None:
    logits = torch.randn(6, requires_grad=True)
    soft = F.softmax(logits, dim=0)
    hard = torch.zeros(6)
    hard[2] = 1.0
    w = straight_through(hard, soft)
    assert torch.allclose(w, hard, atol=1e-7)
    (w * torch.arange(6.0)).sum().backward()
    assert (logits.grad != 0).all()  # every logit of the group, through the softmax


def test_gradients_reach_all_ops_of_an_edge_through_gumbel_max() -> None:
    alpha = torch.randn(3, 4, requires_grad=True)
    index, w = gumbel_max(alpha, gumbel_noise((3, 4), torch.Generator().manual_seed(0)), 1.0)
    w[1].backward()  # only edge 1 used
    assert (alpha.grad[1] != 0).all()
    assert (alpha.grad[[0, 2]] == 0).all()


def test_linear_tau_schedule() -> None:
    taus = [linear_tau(e, 5, 10.0, 0.1) for e in range(5)]
    assert taus[0] == 10.0 and taus[-1] == 0.1
    assert all(a > b for a, b in zip(taus, taus[1:]))
    assert linear_tau(0, 1, 10.0, 0.1) == 10.0


def _tiny_net(space_name: str):
    space = get_space(space_name)
    torch.manual_seed(0)
    model = build_supernet(space, 4, 3, 3, 3)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 3, (4,))
    return space, model, x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rome_v2_gradients_reach_every_beta_and_only_selected_alphas(seed: int) -> None:
    """Straight-through design: all betas of each node (softmax couples them), all ops' alphas of an
    executed edge, and exactly zero gradient for the alpha of an edge that was not executed."""
    space, model, x, y = _tiny_net("darts")
    algo = SearchAlgorithm("rome", space, k_samples=1, init_std=0.5, generator=torch.Generator().manual_seed(seed))
    sample = algo.draw(torch.Generator().manual_seed(seed + 10))
    paths = algo.paths(sample, tau=1.0)
    F.cross_entropy(model(x, paths), y).backward()
    for ct in space.cell_types:
        executed = {e for e, _ in paths[ct].pairs}
        assert len(paths[ct].pairs) == 8 and len(executed) == 8
        for dst in space.dst_nodes:
            chosen = [e for e in space.incoming(dst) if e in executed]
            assert len(chosen) == 2
        assert (algo.arch.beta[ct].grad != 0).all()
        grad = algo.arch.alpha[ct].grad
        for e in range(space.n_edges):
            if e in executed:
                assert (grad[e] != 0).all(), (ct, e)
            else:
                assert (grad[e] == 0).all(), (ct, e)


def test_rome_v1_gradients_reach_every_pair_beta() -> None:
    space, model, x, y = _tiny_net("darts")
    algo = SearchAlgorithm("rome", space, variant="v1", init_std=0.5, generator=torch.Generator().manual_seed(0))
    assert algo.arch.beta["normal"].shape == (1 + 3 + 6 + 10,)
    paths = algo.paths(algo.draw(torch.Generator().manual_seed(1)), tau=1.0)
    F.cross_entropy(model(x, paths), y).backward()
    grad = algo.arch.beta["normal"].grad
    assert grad[0] == 0  # node 0 has a single pair: its softmax is constant
    assert (grad[1:] != 0).all()


def test_gdas_path_runs_one_op_on_every_edge_and_uniform_random_has_no_gradient() -> None:
    space, model, x, y = _tiny_net("darts")
    gdas = SearchAlgorithm("gdas", space, generator=torch.Generator().manual_seed(0))
    paths = gdas.paths(gdas.draw(torch.Generator().manual_seed(1)), tau=1.0)
    assert sorted(e for e, _ in paths["normal"].pairs) == list(range(14))
    rnd = SearchAlgorithm("random", space, generator=torch.Generator().manual_seed(0))
    paths = rnd.paths(rnd.draw(torch.Generator().manual_seed(1)), tau=1.0)
    assert len(paths["normal"].pairs) == 8
    assert not paths["normal"].weights.requires_grad
