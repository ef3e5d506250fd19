"""The architecture step's memory savings: weights frozen during the architecture passes.

The savings must not change a single bit of the search (same alpha/beta gradients as with trainable
weights, same weights' ``requires_grad`` after the step, even on an error), and must actually save:
fewer bytes saved for backward per architecture pass, and no graph outliving its pass.
"""

from __future__ import annotations

import torch

from benchmarks.step_before import arch_gradients_before
from rome.search.algorithms import SearchAlgorithm
from rome.search.saved_tensors import SavedTensorMeter
from rome.search.step import arch_gradients
from rome.search.supernet import build_supernet
from rome.spaces import get_space


def _setup(algorithm: str = "rome", k: int = 3):
    torch.manual_seed(0)
    space = get_space("darts")
    algo = SearchAlgorithm(algorithm, space, k_samples=k, generator=torch.Generator().manual_seed(0))
    model = build_supernet(space, 4, 10, 3, 3)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    gen = torch.Generator().manual_seed(1)
    samples = [algo.draw(gen) for _ in range(algo.k_samples)]
    return algo, model, x, y, samples


def _grads(algo: SearchAlgorithm) -> list[torch.Tensor]:
    return [p.grad.clone() for p in algo.arch.parameters()]


def test_arch_gradients_are_bit_identical_to_trainable_weights() -> None:
    for name in ("rome", "gdas", "darts", "pc_darts"):
        algo, model, x, y, samples = _setup(name)
        model.cells[0].preprocess1[1].weight.requires_grad_(False)  # a frozen weight stays frozen
        loss_before = arch_gradients_before(model, algo, x, y, samples, 5.0)
        before = _grads(algo)
        loss_after = arch_gradients(model, algo, x, y, samples, 5.0)
        after = _grads(algo)
        assert loss_before == loss_after
        assert all(torch.equal(a, b) for a, b in zip(after, before)), name
        frozen = {id(model.cells[0].preprocess1[1].weight)}
        assert all(p.requires_grad == (id(p) not in frozen) for p in model.parameters())
        assert all(p.grad is None for p in model.parameters())  # no weight gradient is ever computed


def test_weights_trainable_again_after_an_error() -> None:
    algo, model, x, y, samples = _setup()
    try:
        arch_gradients(model, algo, x, y[:1], samples, 5.0)  # batch-size mismatch in the loss
    except (RuntimeError, ValueError):
        pass
    else:
        raise AssertionError("expected the mismatched batch to fail")
    assert all(p.requires_grad for p in model.parameters())


def test_arch_passes_save_less_and_no_graph_outlives_its_pass() -> None:
    algo, model, x, y, samples = _setup()
    exclude = list(model.parameters()) + list(algo.arch.parameters())
    with SavedTensorMeter(model, exclude, forward_only=True) as old:
        arch_gradients_before(model, algo, x, y, samples, 5.0)
    with SavedTensorMeter(model, exclude, forward_only=True) as new:
        arch_gradients(model, algo, x, y, samples, 5.0)
    assert len(new.passes) == len(old.passes) == 3
    assert all(n < o for n, o in zip(new.passes, old.passes))  # the stem and preprocessing save nothing now
    assert old.live_peak > old.peak  # before: pass k+1 ran with pass k's untraversed graph alive
    assert new.live_peak == new.peak and new.live == 0 and old.live == 0
