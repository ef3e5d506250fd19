"""The supernet executes only the sampled path; K-sample accumulation averages (arch) and sums (weights)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from rome.search.algorithms import SearchAlgorithm
from rome.search.step import arch_gradients, weight_gradients
from rome.search.supernet import CellPath, DartsSearchCell, NB201SearchCell, build_supernet
from rome.spaces import get_space


def cell_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The search cells of a supernet (for op-call counting)."""
    return [m for m in model.modules() if isinstance(m, (DartsSearchCell, NB201SearchCell))]


def count_op_calls(model: nn.Module) -> list[dict[tuple[int, int], int]]:
    """Per cell, a live counter of calls of each candidate op module (edge, op index)."""
    counters = []
    for cell in cell_modules(model):
        counter: dict[tuple[int, int], int] = {}
        for e, ops in enumerate(cell.edge_ops):
            for o, op in enumerate(ops):
                def hook(_m, _i, _o, key=(e, o), c=counter) -> None:  # noqa: ANN001
                    c[key] = c.get(key, 0) + 1
                op.register_forward_hook(hook)
        counters.append(counter)
    return counters


@pytest.mark.parametrize(("space_name", "algorithm", "per_cell"), [
    ("darts", "rome", 8), ("darts", "gdas", 14), ("darts", "darts", 14 * 7), ("darts", "random", 8),
    ("s1", "rome", 8), ("s1", "darts", 14 * 2), ("s3", "darts", 14 * 3),
    ("nb201", "rome", 6), ("nb201", "gdas", 6), ("nb201", "darts", 6 * 5),
    ("darts", "pc_darts", 14 * 7), ("s3", "pc_darts", 14 * 3), ("nb201", "pc_darts", 6 * 5),
])
def test_one_forward_runs_exactly_the_sampled_ops(space_name: str, algorithm: str, per_cell: int) -> None:
    space = get_space(space_name)
    torch.manual_seed(0)
    algo = SearchAlgorithm(algorithm, space, generator=torch.Generator().manual_seed(0))
    model = build_supernet(space, 4, 3, 3 if space.kind == "darts" else 1, 3, partial=algo.partial)
    counters = count_op_calls(model)
    paths = algo.paths(algo.draw(torch.Generator().manual_seed(1)), tau=1.0)
    model(torch.randn(2, 3, 8, 8), paths)
    for cell, counter in zip(cell_modules(model), counters):
        assert sum(counter.values()) == per_cell
        assert all(v == 1 for v in counter.values())
        assert set(counter) == set(paths[cell.cell_type].pairs)  # nothing outside the path ran


def test_pc_darts_ops_see_a_quarter_of_the_channels() -> None:
    """Every op of a PC-DARTS supernet runs once per forward, on C/4 channels (C = the cell's width)."""
    space = get_space("darts")
    algo = SearchAlgorithm("pc_darts", space, generator=torch.Generator().manual_seed(0))
    model = build_supernet(space, 8, 3, 3, 3, partial=algo.partial)
    seen: list[tuple[int, int]] = []  # (op input channels, the cell's C)
    for cell in cell_modules(model):
        width = cell.preprocess1[1].out_channels  # ReLU, Conv, BN: the cell's C
        for ops in cell.edge_ops:
            for op in ops:
                op.register_forward_hook(lambda _m, i, _o, c=width: seen.append((i[0].shape[1], c)))
    model(torch.randn(2, 3, 8, 8), algo.paths(None, 1.0))
    assert len(seen) == 3 * 14 * 7 and {c for _, c in seen} == {8, 16, 32}  # normal, reduce, reduce
    assert all(ch * 4 == c for ch, c in seen)


def test_rome_v1_runs_8_ops_with_distinct_inputs_per_node() -> None:
    space = get_space("darts")
    model = build_supernet(space, 4, 3, 3, 3)
    counters = count_op_calls(model)
    algo = SearchAlgorithm("rome", space, variant="v1", generator=torch.Generator().manual_seed(0))
    paths = algo.paths(algo.draw(torch.Generator().manual_seed(1)), tau=1.0)
    model(torch.randn(2, 3, 8, 8), paths)
    assert [sum(c.values()) for c in counters] == [8, 8, 8]
    for dst in space.dst_nodes:
        assert len({e for e, _ in paths["normal"].pairs if space.edges[e][1] == dst}) == 2


def test_output_shapes_for_every_space() -> None:
    for name in ("darts", "s1", "s2", "s3", "s4", "nb201"):
        space = get_space(name)
        model = build_supernet(space, 4, 5, 3 if space.kind == "darts" else 1, 1)
        algo = SearchAlgorithm("rome", space, generator=torch.Generator().manual_seed(0))
        out = model(torch.randn(2, 1, 16, 16), algo.paths(algo.draw(torch.Generator()), 1.0))
        assert out.shape == (2, 5)


def test_path_must_feed_every_node() -> None:
    space = get_space("darts")
    model = build_supernet(space, 4, 3, 3, 3)
    bad = CellPath([(0, 0), (1, 0)])  # only node 0 gets inputs
    with pytest.raises(ValueError, match="without any input"):
        model(torch.randn(1, 3, 8, 8), {"normal": bad, "reduce": bad})


@pytest.fixture
def tiny_setup():
    space = get_space("darts")
    torch.manual_seed(0)
    model = build_supernet(space, 4, 3, 3, 3)
    algo = SearchAlgorithm("rome", space, k_samples=3, init_std=0.5, generator=torch.Generator().manual_seed(0))
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 3, (4,))
    gen = torch.Generator().manual_seed(5)
    samples = [algo.draw(gen) for _ in range(3)]
    return model, algo, x, y, samples


def test_arch_gradient_is_the_mean_of_single_sample_gradients(tiny_setup) -> None:
    model, algo, x, y, samples = tiny_setup
    params = list(algo.arch.parameters())
    arch_gradients(model, algo, x, y, samples, tau=2.0)
    accumulated = [p.grad.clone() for p in params]
    singles = []
    for s in samples:
        arch_gradients(model, algo, x, y, [s], tau=2.0)
        singles.append([p.grad.clone() for p in params])
    for i, acc in enumerate(accumulated):
        mean = torch.stack([g[i] for g in singles]).mean(0)
        total = torch.stack([g[i] for g in singles]).sum(0)
        assert torch.allclose(acc, mean, rtol=1e-5, atol=1e-9)
        assert not torch.allclose(acc, total, rtol=1e-3, atol=1e-9)  # a sum would be caught
    assert all(p.grad is not None for p in params)
    # the architecture pass does not touch weight gradients
    assert all(p.grad is None for p in model.parameters())


def test_weight_gradient_is_the_sum_of_single_sample_gradients(tiny_setup) -> None:
    model, algo, x, y, samples = tiny_setup
    params = list(model.parameters())
    model.zero_grad(set_to_none=True)
    weight_gradients(model, algo, x, y, samples, tau=2.0)
    accumulated = [None if p.grad is None else p.grad.clone() for p in params]
    singles = []
    for s in samples:
        model.zero_grad(set_to_none=True)
        weight_gradients(model, algo, x, y, [s], tau=2.0)
        singles.append([torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params])
    n_checked = 0
    for i, acc in enumerate(accumulated):
        total = torch.stack([g[i] for g in singles]).sum(0)
        if acc is None:
            assert (total == 0).all()  # a weight none of the samples executed
            continue
        assert torch.allclose(acc, total, rtol=1e-5, atol=1e-8)
        n_checked += int(total.abs().sum() > 0)
    assert n_checked > 10
    # the weight pass leaves alpha/beta alone
    assert all(p.grad is None for p in algo.arch.parameters())


def test_unsampled_ops_get_no_weight_gradient(tiny_setup) -> None:
    model, algo, x, y, samples = tiny_setup
    model.zero_grad(set_to_none=True)
    paths = algo.paths(samples[0], 1.0)
    weight_gradients(model, algo, x, y, samples[:1], tau=1.0)
    for cell in cell_modules(model):
        used = set(paths[cell.cell_type].pairs)
        for e, ops in enumerate(cell.edge_ops):
            for o, op in enumerate(ops):
                grads = [p.grad for p in op.parameters()]
                if (e, o) not in used:
                    assert all(g is None for g in grads)


def test_measure_iteration_orders_memory_rome_gdas_darts() -> None:
    from rome.search.profile import measure_iteration

    kw = dict(layers=3, init_channels=4, batch_size=4, resolution=8, in_channels=1, num_classes=3, warmup=0, repeats=1)
    saved = {alg: measure_iteration("darts", alg, 1, **kw)["saved_bytes"] for alg in ("rome", "gdas", "darts")}
    assert 0 < saved["rome"] < saved["gdas"] < saved["darts"]
    result = measure_iteration("darts", "rome", 2, **kw)
    assert result["k_samples"] == 2 and result["seconds_per_iteration"] > 0 and result["peak_rss_mb"] > 0


@pytest.mark.parametrize(("algorithm", "per_cell"), [
    ("rome", 8), ("gdas", 14), ("darts", 14 * 7), ("pc_darts", 14 * 7), ("random", 8),
])
def test_imagenet_stem_supernet_runs_the_sampled_ops_at_28_14_7(algorithm: str, per_cell: int) -> None:
    """PC-DARTS's ImageNet stem: 224 px in, cells at 28 (normal) / 14 / 7 px, the first cell reading stem0's
    56 px output through a factorized reduce; the ops a forward runs are the path's, as with the CIFAR stem."""
    space = get_space("darts")
    algo = SearchAlgorithm(algorithm, space, generator=torch.Generator().manual_seed(0))
    model = build_supernet(space, 4, 2, 3, 3, partial=algo.partial, stem="imagenet")
    assert not hasattr(model, "stem") and model.cells[0].preprocess0.__class__.__name__ == "FactorizedReduce"
    counters = count_op_calls(model)
    sides: list[tuple[str, int, int]] = []  # (cell type, input side of s1, output side)
    for cell in cell_modules(model):
        cell.register_forward_hook(lambda m, i, o: sides.append((m.cell_type, i[1].shape[-1], o.shape[-1])))
    stem0_side: list[int] = []
    model.stem0.register_forward_hook(lambda m, i, o: stem0_side.append(o.shape[-1]))
    paths = algo.paths(algo.draw(torch.Generator().manual_seed(1)), tau=1.0)
    logits = model(torch.randn(2, 3, 224, 224), paths)
    assert logits.shape == (2, 2) and stem0_side == [56]
    assert sides == [("normal", 28, 28), ("reduce", 28, 14), ("reduce", 14, 7)]  # 3 layers: reductions at 1 and 2
    for cell, counter in zip(cell_modules(model), counters):
        assert sum(counter.values()) == per_cell and all(v == 1 for v in counter.values())
        assert set(counter) == set(paths[cell.cell_type].pairs)


def test_imagenet_stem_widths_follow_pc_darts() -> None:
    """stem0: 3 -> 3C/2 -> 3C, stem1: 3C -> 3C (PC-DARTS's 24 / 48 at C = 16); the CIFAR stem keeps its keys."""
    space = get_space("darts")
    model = build_supernet(space, 16, 10, 8, 3, stem="imagenet")
    assert [m.out_channels for m in model.stem0 if isinstance(m, nn.Conv2d)] == [24, 48]
    assert [m.out_channels for m in model.stem1 if isinstance(m, nn.Conv2d)] == [48]
    assert [m.stride for m in model.modules() if isinstance(m, nn.Conv2d)][:3] == [(2, 2)] * 3
    cifar = build_supernet(space, 16, 10, 8, 3)
    assert {k.split(".")[0] for k in cifar.state_dict()} == {"stem", "cells", "classifier"}
