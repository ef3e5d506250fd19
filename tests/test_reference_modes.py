"""``search.mode: reference``: each baseline's behaviour against a re-statement of its authors' code.

Every expected value here is computed from the reference formulas written out in the test (GDAS's
``forward_gdas`` and scheduler, DARTS's eq. 7-8 by autograd through an explicit virtual step,
PC-DARTS's ``if epoch >= 15``), never by calling the code under test for the expectation.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from rome.config import resolve
from rome.errors import RomeError
from rome.reproducibility import seed_everything
from rome.search.algorithms import SearchAlgorithm
from rome.search.loop import SearchData, build_state, run_search
from rome.search.supernet import DartsSupernet, NB201SearchCell, build_supernet
from rome.search.unrolled import unrolled_arch_gradients
from rome.sections import SearchConfig
from rome.spaces import get_space

REPO = Path(__file__).resolve().parents[1]


def tiny_data(n: int = 32, side: int = 8, classes: int = 3) -> SearchData:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, classes, (2 * n,), generator=g)
    images = (torch.randint(0, 120, (2 * n, 1, side, side), generator=g) + 60 * labels.view(-1, 1, 1, 1)).clamp(0, 255)
    images = images.to(torch.uint8)
    return SearchData(images[:n], labels[:n], images[n:], labels[n:], (0.5,), (0.25,), classes, "sha-a")


def config(tmp: Path, *overrides: str) -> tuple[SearchConfig, dict]:
    base = ["search.epochs=2", "search.steps_per_epoch=2", "search.batch_size=8", "search.layers=3",
            "search.init_channels=4", "search.k_samples=2"]
    params = resolve({"preset": "smoke"}, [f"results_dir={tmp}", *base, *overrides], source="test")
    return SearchConfig.from_params(params), params


def run(cfg: SearchConfig, ckpt: Path | None = None, **kw):
    seed_everything(0)
    return run_search(cfg, 0, "mnist5k", tiny_data(), ckpt, "cpu", progress=False, log=lambda _m: None, **kw)


# ----------------------------------------------------------------------------- GDAS


def gdas_hardwts(alpha: torch.Tensor, gumbels: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GDAS's sampling: probs = softmax((log_softmax(alpha) + g) / tau), hardwts = one_hot - probs.detach() + probs."""
    probs = F.softmax((alpha.log_softmax(dim=1) + gumbels) / tau, dim=1)
    index = probs.max(-1, keepdim=True)[1]
    one_h = torch.zeros_like(probs).scatter_(-1, index, 1.0)
    return one_h - probs.detach() + probs, index.squeeze(-1)


@pytest.mark.parametrize("unselected", [True, False])
def test_gdas_nb201_cell_equals_forward_gdas(unselected: bool) -> None:
    """Reference NB201 node: sum over edges and ops of hardwts[i] * op_i(x) if i == argmax else hardwts[i]."""
    torch.manual_seed(0)
    space = get_space("nb201")
    algo = SearchAlgorithm("gdas", space, unselected_weights=unselected, generator=torch.Generator().manual_seed(1))
    cell = NB201SearchCell(space, 4).double()
    sample = algo.draw(torch.Generator().manual_seed(2))
    sample.op_noise["normal"][0] = torch.tensor([50.0, 0.0, 0.0, 0.0, 0.0])  # edge 0 samples `none`
    sample.op_noise["normal"][5] = torch.tensor([0.0, 0.0, 0.0, 50.0, 0.0])  # edge 5 a convolution
    tau, x, probe = 3.0, torch.randn(2, 4, 5, 5, dtype=torch.float64), torch.randn(2, 4, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        algo.arch.alpha["normal"].copy_(torch.randn(6, 5))
    algo.arch.double()

    ours = cell(x, algo.paths(sample, tau)["normal"])
    (ours * probe).sum().backward()
    g_alpha = algo.arch.alpha["normal"].grad.clone()
    g_w = [None if p.grad is None else p.grad.clone() for p in cell.parameters()]
    cell.zero_grad()

    alpha = algo.arch.alpha["normal"].detach().clone().requires_grad_()
    hardwts, index = gdas_hardwts(alpha, sample.op_noise["normal"].double(), tau)
    nodes = [x]
    for dst in space.dst_nodes:
        total = 0
        for e, (src, d) in enumerate(space.edges):
            if d != dst:
                continue
            for i, op in enumerate(cell.edge_ops[e]):
                if i == int(index[e]):
                    total = total + hardwts[e, i] * op(nodes[src])
                elif unselected:  # GDAS's cell adds the unselected weights; without them only the chosen op
                    total = total + hardwts[e, i]
        nodes.append(total)
    (nodes[-1] * probe).sum().backward()

    assert torch.equal(ours, nodes[-1])
    torch.testing.assert_close(g_alpha, alpha.grad, rtol=1e-10, atol=1e-12)
    for a, b in zip(g_w, (p.grad for p in cell.parameters())):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert any(a is not None for a in g_w)
    # a sampled `none` gets a gradient only with GDAS's unselected weights
    assert bool(g_alpha[0].abs().sum() > 0) is unselected


def test_gdas_reference_network_has_lastact_and_bare_pools(tmp_path: Path) -> None:
    cfg, _ = config(tmp_path, "search.algorithm=gdas", "search.mode=reference")
    captured = {}
    state = build_state(cfg, 0, "mnist5k", tiny_data())
    model = state.model
    model.cells[-1].register_forward_hook(lambda _m, _i, out: captured.__setitem__("s1", out))
    x = torch.randn(4, 1, 8, 8)
    logits = model(x, state.algorithm.genotype_paths())
    s1 = captured["s1"]
    # GDAS: lastact = BatchNorm2d (affine, batch statistics in training) + ReLU, then global pooling, then linear
    normed = (s1 - s1.mean(dim=(0, 2, 3), keepdim=True)) / torch.sqrt(s1.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + 1e-5)
    expected = model.classifier(torch.relu(normed).mean(dim=(2, 3)))
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    # GDAS's search pools have no BatchNorm after them: a pool op's output is the bare pool's
    ops = model.cells[0].edge_ops[0]
    names = state.space.ops("normal", 0)
    y = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(ops[names.index("max_pool_3x3")](y), F.max_pool2d(y, 3, 1, 1))
    controlled = build_state(config(tmp_path, "search.algorithm=gdas")[0], 0, "mnist5k", tiny_data()).model
    assert controlled.lastact is None
    assert not torch.allclose(controlled.cells[0].edge_ops[0][names.index("max_pool_3x3")](y), F.max_pool2d(y, 3, 1, 1))


@pytest.mark.parametrize(("mode", "behaviour", "weights_first"), [
    ("reference", "{}", True), ("controlled", "{}", False),
    ("reference", "{weights_first: false}", False), ("controlled", "{weights_first: true}", True),
])
def test_gdas_step_order_weights_before_architecture(tmp_path: Path, mode: str, behaviour: str,
                                                     weights_first: bool) -> None:
    """Reference: the architecture gradient is taken on the val batch with the weights AFTER this batch's SGD step;
    ``search.behaviour.weights_first`` sets that one switch in either mode."""
    cfg, _ = config(tmp_path, "search.algorithm=gdas", f"search.mode={mode}", f"search.behaviour={behaviour}")
    seed_everything(0)
    state = build_state(cfg, 0, "mnist5k", tiny_data())
    seed_everything(0)
    twin = build_state(cfg, 0, "mnist5k", tiny_data())
    xt, xv = next(twin.train_batches)[0], next(twin.val_batches)[0]
    seen: list[tuple[str, torch.Tensor]] = []

    def record(_m, args):
        x = args[0]
        which = "train" if torch.equal(x, xt) else "val" if torch.equal(x, xv) else "?"
        seen.append((which, state.model.classifier.weight.detach().clone()))

    w0 = state.model.classifier.weight.detach().clone()
    state.model.register_forward_pre_hook(record)
    state.iteration(5.0)
    w1 = state.model.classifier.weight.detach()
    assert [s for s, _ in seen] == (["train", "val"] if weights_first else ["val", "train"])
    arch_weights = dict(seen)["val"]
    assert torch.equal(arch_weights, w1 if weights_first else w0) and not torch.equal(w0, w1)


def gdas_cosine(base: float, eta_min: float, epoch: int, epochs: int) -> float:
    """GDAS's CosineAnnealingLR.get_lr (warm-up 0): reads the integer epoch only, whatever the iteration."""
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2


@pytest.mark.parametrize(("algorithm", "mode", "shift"), [
    ("gdas", "reference", 0), ("gdas", "controlled", 0), ("darts", "reference", 1), ("pc_darts", "reference", 1),
    ("darts", "controlled", 0),
])
def test_learning_rate_and_tau_per_iteration(tmp_path: Path, algorithm: str, mode: str, shift: int) -> None:
    """lr seen by the weight optimiser at every iteration: GDAS's scheduler (updated every iteration, integer-epoch
    cosine); DARTS / PC-DARTS step torch's cosine at the START of each epoch (epoch e at the rate of e + 1)."""
    epochs, steps = 4, 2
    cfg, _ = config(tmp_path, f"search.algorithm={algorithm}", f"search.mode={mode}", f"search.epochs={epochs}",
                    f"search.steps_per_epoch={steps}", "search.arch_warmup_epochs=0")
    seen: list[float] = []
    original = torch.optim.SGD.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *a, **k)

    torch.optim.SGD.step = spy
    try:
        result = run(cfg)
    finally:
        torch.optim.SGD.step = original
    expected = [gdas_cosine(cfg.w_lr, cfg.w_lr_min, min(e + shift, epochs), epochs) for e in range(epochs) for _ in range(steps)]
    assert seen == pytest.approx(expected, rel=1e-9)
    # tau: GDAS sets tau_max - (tau_max - tau_min) * epoch / (epochs - 1) once per epoch
    taus = [h["tau"] for h in result.history]
    assert taus == pytest.approx([cfg.tau_max - (cfg.tau_max - cfg.tau_min) * e / (epochs - 1) for e in range(epochs)])


def test_gdas_reference_uses_nesterov(tmp_path: Path) -> None:
    ref = build_state(config(tmp_path, "search.algorithm=gdas", "search.mode=reference")[0], 0, "mnist5k", tiny_data())
    ctl = build_state(config(tmp_path, "search.algorithm=gdas")[0], 0, "mnist5k", tiny_data())
    assert ref.parts.w_opt.param_groups[0]["nesterov"] and not ctl.parts.w_opt.param_groups[0]["nesterov"]


def test_single_switches_on_top_of_a_mode(tmp_path: Path) -> None:
    """``search.behaviour``: the reference mode minus one switch, or the controlled loop plus one, changes
    that switch and leaves every other one as the mode says (the behaviour tests above check what each does)."""
    def behaviour(*sets: str):
        return build_state(config(tmp_path, "search.algorithm=gdas", *sets)[0], 0, "mnist5k", tiny_data())

    ref = behaviour("search.mode=reference")
    minus = behaviour("search.mode=reference", "search.behaviour={nesterov: false, lastact: false}")
    assert not minus.parts.w_opt.param_groups[0]["nesterov"] and minus.model.lastact is None
    assert minus.behaviour == dataclasses.replace(ref.behaviour, nesterov=False, lastact=False)
    plus = behaviour("search.behaviour={pool_bn: false, nesterov: true}")
    names = plus.space.ops("normal", 0)
    y = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(plus.model.cells[0].edge_ops[0][names.index("max_pool_3x3")](y), F.max_pool2d(y, 3, 1, 1))
    assert plus.parts.w_opt.param_groups[0]["nesterov"] and not plus.behaviour.weights_first and plus.model.lastact is None


@pytest.mark.parametrize(("sets", "message"), [
    (["search.behaviour={unselected_weights: true}"], "search.behaviour.unselected_weights = true: a sampled NAS-Bench-201"),
    (["search.space=nb201", "search.behaviour={lastact: false}"], "search.behaviour.lastact = false: the NAS-Bench-201 supernet"),
    (["search.space=nb201", "search.algorithm=darts", "search.behaviour={unselected_weights: true}"],
     "search.behaviour.unselected_weights = true"),
])
def test_a_switch_the_network_lacks_is_refused(tmp_path: Path, sets: list[str], message: str) -> None:
    cfg, _ = config(tmp_path, "search.algorithm=gdas", *sets)
    with pytest.raises(RomeError, match=re.escape(message)):
        build_state(cfg, 0, "mnist5k", tiny_data())


def test_an_unknown_switch_is_a_one_line_params_error(tmp_path: Path) -> None:
    with pytest.raises(RomeError, match="search.behaviour.*nesterof"):
        config(tmp_path, "search.behaviour={nesterof: true}")


def test_every_switch_of_the_schema_is_a_behaviour_field() -> None:
    """The schema is the one list of ``search.behaviour`` keys; each must name a ``SearchBehaviour`` switch
    (else ``dataclasses.replace`` would fail deep inside a run), and the mode-level fields are not switches."""
    from rome.config import schema
    from rome.search.modes import SearchBehaviour

    keys = set(schema()["properties"]["search"]["properties"]["behaviour"]["properties"])
    fields = {f.name for f in dataclasses.fields(SearchBehaviour)}
    assert keys == fields - {"mode", "unrolled", "arch_warmup_epochs"}


# ----------------------------------------------------------------------------- DARTS second order


def explicit_unrolled(model, algo, train, val, eta, momentum, wd, bufs) -> list[torch.Tensor]:
    """d/dalpha L_val(w'(alpha), alpha) with w' = w - eta (momentum buf + dL_train/dw + wd w), by autograd
    through the virtual step (create_graph): the exact hypergradient that DARTS's eq. 7-8 approximates."""
    names = [n for n, _ in model.named_parameters()]
    ws = [p for _, p in model.named_parameters()]
    arch = list(algo.arch.parameters())
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    paths = algo.paths(None, 1.0)
    loss_t = F.cross_entropy(functional_call(model, buffers, (train[0], paths)), train[1])
    g = torch.autograd.grad(loss_t, ws, create_graph=True)
    w_new = {n: w - eta * (momentum * b + gw + wd * w) for n, w, gw, b in zip(names, ws, g, bufs)}
    loss_v = F.cross_entropy(functional_call(model, {**w_new, **buffers}, (val[0], algo.paths(None, 1.0))), val[1])
    return list(torch.autograd.grad(loss_v, arch))


def darts_finite_difference(model, algo, train, val, eta, momentum, wd, bufs, r) -> list[torch.Tensor]:
    """DARTS's eq. 7-8: dL_val/dalpha (w') - eta (dL_train/dalpha (w+) - dL_train/dalpha (w-)) / 2R,
    w+- = w +- R dL_val/dw' (w'), R = r / ||dL_val/dw'||, built from explicit parameter dictionaries."""
    names = [n for n, _ in model.named_parameters()]
    ws = [p.detach() for _, p in model.named_parameters()]
    arch = list(algo.arch.parameters())
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    with torch.no_grad():
        paths = algo.paths(None, 1.0)
    wl = [w.clone().requires_grad_() for w in ws]
    loss_t = F.cross_entropy(functional_call(model, {**dict(zip(names, wl)), **buffers}, (train[0], paths)), train[1])
    g = torch.autograd.grad(loss_t, wl)
    w_new = [(w - eta * (momentum * b + gw + wd * w)).requires_grad_() for w, gw, b in zip(ws, g, bufs)]
    loss_v = F.cross_entropy(functional_call(model, {**dict(zip(names, w_new)), **buffers}, (val[0], algo.paths(None, 1.0))),
                             val[1])
    grads = torch.autograd.grad(loss_v, arch + w_new)
    d_alpha, v = grads[:len(arch)], grads[len(arch):]
    R = r / torch.sqrt(sum((x * x).sum() for x in v))

    def at(sign: float) -> tuple[torch.Tensor, ...]:
        moved = {n: w + sign * R * x for n, w, x in zip(names, ws, v)}
        loss = F.cross_entropy(functional_call(model, {**moved, **buffers}, (train[0], algo.paths(None, 1.0))), train[1])
        return torch.autograd.grad(loss, arch)

    return [d - eta * (p - m) / (2 * R) for d, p, m in zip(d_alpha, at(1.0), at(-1.0))]


def test_darts_unrolled_gradient_equals_the_exact_hypergradient() -> None:
    torch.manual_seed(0)
    space = get_space("darts", 2)
    algo = SearchAlgorithm("darts", space, generator=torch.Generator().manual_seed(1), init_std=0.5)
    algo.arch.double()
    model = DartsSupernet(space, 4, 3, 3, in_channels=1).double()
    gen = torch.Generator().manual_seed(3)
    train = (torch.randn(6, 1, 6, 6, generator=gen, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2]))
    val = (torch.randn(6, 1, 6, 6, generator=gen, dtype=torch.float64), torch.tensor([2, 1, 0, 2, 1, 0]))
    eta, momentum, wd = 0.2, 0.9, 3e-3
    w_opt = torch.optim.SGD(model.parameters(), lr=eta, momentum=momentum, weight_decay=wd)
    F.cross_entropy(model(train[0], algo.paths(None, 1.0)), train[1]).backward()
    w_opt.step()  # a momentum buffer now exists: the virtual step must use it
    w_opt.zero_grad()
    bufs = [w_opt.state[p]["momentum_buffer"].clone() for p in model.parameters()]

    # with a vanishing finite-difference step the estimate is the exact hypergradient
    expected = explicit_unrolled(model, algo, train, val, eta, momentum, wd, bufs)
    unrolled_arch_gradients(model, algo, train, val, w_opt, None, 1.0, r=1e-6)
    for a, b in zip(algo.arch.parameters(), expected):
        torch.testing.assert_close(a.grad, b, rtol=1e-6, atol=1e-9)
    # at DARTS's r = 0.01: DARTS's own finite difference (eq. 8), written out
    unrolled_arch_gradients(model, algo, train, val, w_opt, None, 1.0)
    got = [a.grad for a in algo.arch.parameters()]
    for a, b in zip(got, darts_finite_difference(model, algo, train, val, eta, momentum, wd, bufs, 0.01)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    # and it is not the first-order gradient
    first = torch.autograd.grad(F.cross_entropy(model(val[0], algo.paths(None, 1.0)), val[1]), list(algo.arch.parameters()))
    assert max(float((a - f).abs().max()) for a, f in zip(got, first)) > 1e-4


def test_darts_reference_step_takes_the_unrolled_gradient_first(tmp_path: Path) -> None:
    """One reference iteration: alpha's gradient is the unrolled one, computed on the weights before the SGD step."""
    cfg, _ = config(tmp_path, "search.algorithm=darts", "search.mode=reference")
    seed_everything(0)
    state = build_state(cfg, 0, "mnist5k", tiny_data())
    seed_everything(0)
    twin = build_state(cfg, 0, "mnist5k", tiny_data())
    train, val = next(twin.train_batches), next(twin.val_batches)
    unrolled_arch_gradients(twin.model, twin.algorithm, train, val, twin.parts.w_opt, None, 5.0)
    state.iteration(5.0)
    for a, b in zip(state.algorithm.arch.parameters(), twin.algorithm.arch.parameters()):
        assert torch.equal(a.grad, b.grad)


def test_unrolled_is_a_param_of_either_mode_and_refused_for_sampling_algorithms(tmp_path: Path) -> None:
    assert build_state(config(tmp_path, "search.algorithm=darts", "search.unrolled=true")[0], 0, "mnist5k",
                       tiny_data()).parts.unrolled
    assert not build_state(config(tmp_path, "search.algorithm=darts", "search.mode=reference", "search.unrolled=false")[0],
                           0, "mnist5k", tiny_data()).parts.unrolled
    with pytest.raises(RomeError, match="search.unrolled = true: .*'gdas'"):
        build_state(config(tmp_path, "search.algorithm=gdas", "search.unrolled=true")[0], 0, "mnist5k", tiny_data())


# ----------------------------------------------------------------------------- PC-DARTS


@pytest.mark.parametrize(("mode", "warmup"), [("reference", 1), ("controlled", 0)])
def test_pc_darts_warmup_epochs_take_no_architecture_step(tmp_path: Path, mode: str, warmup: int) -> None:
    """PC-DARTS: ``if epoch >= 15: architect.step(...)`` (15 of 50); here round(0.3 x 3) = 1 of 3 epochs."""
    cfg, _ = config(tmp_path, "search.algorithm=pc_darts", f"search.mode={mode}", "search.epochs=3")
    init = {k: v.clone() for k, v in build_state(cfg, 0, "mnist5k", tiny_data()).algorithm.arch.named_tensors().items()}
    after1 = run(cfg, max_epochs_this_run=1).state.algorithm.arch.named_tensors()
    after2 = run(cfg, max_epochs_this_run=2).state.algorithm.arch.named_tensors()
    assert all(torch.equal(init[k], after1[k]) for k in init) is (warmup == 1)
    assert not any(torch.equal(after1[k], after2[k]) for k in init)


# ----------------------------------------------------------------------------- ROME and the CLI


def test_reference_mode_does_not_change_rome(tmp_path: Path) -> None:
    a = run(config(tmp_path, "search.algorithm=rome")[0]).state.algorithm.arch.named_tensors()
    b = run(config(tmp_path, "search.algorithm=rome", "search.mode=reference")[0]).state.algorithm.arch.named_tensors()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_searches_in_reference_mode_and_records_it(tmp_path: Path) -> None:
    import json

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rome.cli", *args, "--set", "preset=smoke",
                               "--set", f"results_dir={tmp_path}", "--set", "tracking.mode=disabled",
                               "--set", "search.mode=reference"], capture_output=True, text=True, cwd=REPO)

    assert cli("prepare").returncode == 0
    for algorithm in ("gdas", "darts", "pc_darts"):
        out = cli("search", "--set", f"search.algorithm={algorithm}")
        assert out.returncode == 0, out.stderr[-2000:]
        meta = json.loads((Path(out.stdout.strip().splitlines()[-1]) / "search.json").read_text())
        assert meta["provenance"]["params"]["search"]["mode"] == "reference", algorithm
        # the resolved optimiser values and their origins (rome.algorithms.hyperparameters), and the one log line
        resolved = meta["provenance"]["hyperparameters"]["resolved"]
        assert resolved["search.w_lr"]["origin"].startswith("reference:") and resolved["search.w_lr"]["value"] == \
            meta["provenance"]["params"]["search"]["w_lr"]
        assert f"search: reference mode for {algorithm} on darts changed search.w_lr" in out.stderr


def test_benchmark_reference_configs_differ_from_the_cpu_sweeps_only_in_mode() -> None:
    from benchmarks import collapse, nb201, pipeline

    for name, module in (("nb201", nb201), ("collapse", collapse)):
        ref = pipeline.resolved(REPO / "benchmarks" / "configs" / f"{name}_reference.yaml")
        base = pipeline.resolved(module.CONFIGS["cpu"])
        assert ref["search"]["mode"] == "reference" and base["search"]["mode"] == "controlled"
        assert {k: v for k, v in ref["search"].items() if k != "mode"} == {k: v for k, v in base["search"].items() if k != "mode"}
        assert ref["data"] == base["data"] and ref["results_dir"] != base["results_dir"]
        assert set(ref["sweep"]["algorithms"]) == {"gdas", "darts", "pc_darts"}


@pytest.mark.parametrize("algorithm", ["darts", "pc_darts", "gdas"])
def test_reference_mode_resumes_bit_identically(tmp_path: Path, algorithm: str) -> None:
    """The shifted schedule, the warm-up and the step order survive a kill: resumed == uninterrupted."""
    cfg, _ = config(tmp_path, f"search.algorithm={algorithm}", "search.mode=reference", "search.epochs=3")
    whole = run(cfg).state.algorithm.arch.named_tensors()
    ckpt = tmp_path / "ckpt"
    assert not run(cfg, max_epochs_this_run=1, ckpt=ckpt).complete
    resumed = run(cfg, ckpt=ckpt).state.algorithm.arch.named_tensors()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
