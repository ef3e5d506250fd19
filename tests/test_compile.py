"""train.compile: the drop-path ramp compiles once, a compiled run trains as an eager one does, and
the two resume each other's checkpoints (issue 23)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from test_train import params_for, rows, run_train

from rome.genotype import published_path
from rome.models.cells import drop_op_path
from rome.training import network


def _network(drop_path_rate: float = 0.0) -> torch.nn.Module:
    src = network.load_source(published_path("darts_v2"))
    kw = {"genotype": src.genotype.to_dict(), "num_classes": 10, "in_chans": 3, "layers": 3, "init_channels": 4,
          "auxiliary": True, "drop_path_rate": drop_path_rate}
    return network.build("rome_darts_cifar", kw).train()


def _graphs_over_ramp(graph_input: bool) -> int:
    """How many graphs dynamo builds while the DARTS ramp walks four probabilities."""
    model, graphs = _network(), []

    def counting_backend(gm: torch.fx.GraphModule, _inputs: list) -> object:
        graphs.append(gm)
        return gm.forward
    model.compile_drop_path(graph_input)
    forward = torch.compile(model, backend=counting_backend)
    for p in (0.0, 0.05, 0.1, 0.15):
        network.set_drop_path(model, p)
        logits, aux = forward(torch.randn(2, 3, 8, 8))
        (logits.sum() + aux.sum()).backward()
    return len(graphs)


def test_drop_path_ramp_compiles_one_graph() -> None:
    """As a float the probability is a constant of the graph: one graph per epoch of the ramp (what
    kept ``auto`` from compiling before); as the buffer, one graph for the whole run."""
    assert _graphs_over_ramp(graph_input=False) == 4
    assert _graphs_over_ramp(graph_input=True) == 1


def test_buffer_follows_every_way_of_setting_the_probability() -> None:
    model = _network(drop_path_rate=0.2)
    assert model.drop_path_prob == 0.2 and model.drop_path_input.item() == pytest.approx(0.2)  # float32
    network.set_drop_path(model, 0.1)
    assert model.drop_path_input.item() == pytest.approx(0.1)
    model.drop_path_prob = 0.05  # the attribute timm-style code sets
    assert model.drop_path_input.item() == pytest.approx(0.05)
    assert "drop_path_input" not in model.state_dict()  # checkpoints are what they were
    assert model.cell_drop_prob() == 0.05
    model.compile_drop_path(True)
    assert model.cell_drop_prob() is model.drop_path_input


def test_graph_drop_path_has_eager_distribution() -> None:
    """The tensor path drops whole samples with probability p and rescales the kept ones by 1/(1-p), as
    timm's drop_path does; at p = 0 it returns its input unchanged."""
    h = torch.randn(4, 3, 2, 2)
    assert torch.equal(drop_op_path(h, torch.tensor(0.0)), h)
    torch.manual_seed(0)
    ones = torch.ones(20000, 2, 1, 1)
    out = drop_op_path(ones, torch.tensor(0.3))
    per_sample = out[:, 0, 0, 0]
    assert torch.equal(out[:, 0], out[:, 1])  # one decision per sample
    kept = per_sample != 0
    assert torch.allclose(per_sample[kept], torch.full_like(per_sample[kept], 1 / 0.7))
    assert abs(kept.double().mean().item() - 0.7) < 0.015  # 4.6 standard errors
    assert abs(per_sample.double().mean().item() - 1.0) < 0.03  # the expectation is kept


def test_compiled_run_matches_eager_and_checkpoints_are_shared(tmp_path, prepared_smoke) -> None:
    """Smoke size, drop_path 0 (with drop-path the compiled graph draws its masks from its own random
    stream: same distribution, other draws). One epoch compiled, then extended eagerly from the
    compiled run's checkpoint, against two eager epochs: the same curves and weights within float
    rounding (the compiled kernels fuse and sum in another order)."""
    same = ("train.drop_path=0", "train.epochs=1")
    eager = run_train(params_for(tmp_path / "eager", prepared_smoke, *same))
    compiled = run_train(params_for(tmp_path / "compiled", prepared_smoke, *same, "train.compile=true"))
    extended = run_train(params_for(tmp_path / "compiled", prepared_smoke, "train.drop_path=0", "train.epochs=2"))
    straight = run_train(params_for(tmp_path / "eager", prepared_smoke, "train.drop_path=0", "train.epochs=2"))

    def close(a: list[dict[str, str]], b: list[dict[str, str]]) -> None:
        assert len(a) == len(b)
        for ra, rb in zip(a, b):
            for key in ("train_loss", "eval_loss", "eval_top1"):
                torch.testing.assert_close(float(rb[key]), float(ra[key]), rtol=1e-4, atol=1e-4, msg=key)
    close(rows(eager / "summary.csv"), rows(compiled / "summary.csv"))
    close(rows(straight / "summary.csv"), rows(extended / "summary.csv"))
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(extended / "model.safetensors"))
    assert a.keys() == b.keys()  # no ``_orig_mod.`` prefix: the network's own state_dict
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
