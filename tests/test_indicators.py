"""Collapse indicators and early stopping (rome.search.indicators, rome.search.early_stop): the Hessian
eigenvalue against a dense Hessian, its determinism, that indicators never change a search, the stopping
rules on synthetic series (against R-DARTS's tracker restated here), stop-then-derive through the stage,
resume with early stopping on, and the errors a user gets."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_line_error, run_rome
from safetensors.torch import load_file
from test_search_loop import params_for, search, tiny_data

from rome.config import resolve
from rome.errors import RomeError
from rome.search.early_stop import StopRule, decide, hessian_due, warmup_warning
from rome.search.indicators import (
    HESSIAN_SEED,
    architecture_indicators,
    entropy,
    hessian_eigenvalue,
    power_iteration,
    validation_loss,
)
from rome.search.loop import build_state
from rome.sections import SearchConfig

INDICATOR_KEYS = ("param_free_", "op_entropy_", "node_entropy_", "hessian_")


# ----------------------------------------------------------------------------- the eigenvalue


def _state64(tmp_path: Path, algorithm: str, space: str = "s3"):
    """A tiny supernet in float64 after one search epoch (so alpha is not at its symmetric start)."""
    layers = "search.layers=1" if space == "nb201" else "search.layers=2"
    p = params_for(tmp_path, f"search.algorithm={algorithm}", f"search.space={space}", "search.epochs=1",
                   "search.steps_per_epoch=2", f"search.init_channels={8 if algorithm == 'pc_darts' else 2}",
                   "search.batch_size=4", layers)
    result = search(p, tiny_data(n=16))
    state = result.state
    state.model.double()
    state.algorithm.arch.double()
    x, y = next(iter(state.val_batches.in_order(1)))
    return p, state, [(x.double(), y)]


@pytest.mark.parametrize(("algorithm", "space"), [("gdas", "s3"), ("rome", "s3"), ("darts", "s2"), ("pc_darts", "s2"),
                                                  ("gdas", "nb201")])
def test_power_iteration_matches_the_dense_hessian(tmp_path: Path, algorithm: str, space: str) -> None:
    """The largest eigenvalue of torch.autograd.functional.hessian of the same fixed-draw loss, f64."""
    p, state, batches = _state64(tmp_path, algorithm, space)
    algo, model, tau, draws = state.algorithm, state.model, 1.0, 2
    got = hessian_eigenvalue(model, algo, batches, draws, tau, p["seed"], iterations=5000, tol=1e-11)
    assert got is not None  # (convergence to 1e-11 may take longer than 5000 steps when the top two are close)

    # the dense Hessian of the same loss: the same draws (the generator re-seeded as the indicator does)
    generator = torch.Generator().manual_seed(p["seed"] * 10 + HESSIAN_SEED)
    samples = [algo.draw(generator) for _ in range(draws)] if algo.op_mode != "mixed" else [None]
    names = [(kind, ct) for kind in ("alpha", "beta") for ct in getattr(algo.arch, kind)]
    shapes = [getattr(algo.arch, kind)[ct].shape for kind, ct in names]
    flat = torch.cat([getattr(algo.arch, kind)[ct].detach().reshape(-1) for kind, ct in names])

    def loss_of(vec: torch.Tensor) -> torch.Tensor:
        arch: dict[str, dict[str, torch.Tensor]] = {"alpha": {}, "beta": {}}
        offset = 0
        for (kind, ct), shape in zip(names, shapes):
            n = int(np.prod(shape))
            arch[kind][ct] = vec[offset:offset + n].reshape(shape)
            offset += n
        return validation_loss(model, algo, batches, samples, tau, arch=arch)

    for w in model.parameters():
        w.requires_grad_(False)
    model.train()
    buffers = [b.clone() for b in model.buffers()]
    dense = torch.autograd.functional.hessian(loss_of, flat)
    for b, saved in zip(model.buffers(), buffers):
        b.copy_(saved)
    expected = float(torch.linalg.eigvalsh((dense + dense.T) / 2).max())  # R-DARTS: max(eigvals)
    assert dense.dtype == torch.float64 and abs(expected) > 1e-8
    assert got.value == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("spectrum", "top"), [
    ([5.0, 2.0, 1.0, 0.5, -1.0, 0.1], 5.0),
    ([-5.0, 2.0, 1.0, 0.5, -1.0, 0.1], 2.0),  # a larger negative one is not the answer
    ([3.0, -3.0, 1.0, 0.5, -1.0, 0.1], 3.0),  # a saddle: plain power iteration would never settle
    ([-3.0, -2.0, -1.0, -0.5, -0.2, -0.1], -0.1),
])
def test_power_iteration_on_a_known_matrix(spectrum: list[float], top: float) -> None:
    """The largest eigenvalue (R-DARTS's max(eigvals)), and that it says when it converged."""
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    m = q @ torch.diag(torch.tensor(spectrum, dtype=torch.float64)) @ q.T
    e = power_iteration(lambda v: m @ v, 6, torch.Generator().manual_seed(1), 5000, 1e-15, dtype=torch.float64)
    assert e.converged and e.value == pytest.approx(top, rel=1e-9, abs=1e-12) and e.iterations < 10000
    capped = power_iteration(lambda v: m @ v, 6, torch.Generator().manual_seed(1), 2, 1e-15, dtype=torch.float64)
    assert not capped.converged and capped.iterations <= 4


def test_eigenvalue_is_deterministic_and_leaves_the_network_alone(tmp_path: Path) -> None:
    """Same seed, same draws, same bits; weights, BatchNorm buffers and alpha's .grad untouched; another
    seed draws other samples (the loss is defined on the seed's fixed draws)."""
    p = params_for(tmp_path, "search.algorithm=gdas", "search.epochs=1")
    result = search(p, tiny_data())
    state = result.state
    state.algorithm.arch.alpha["normal"].grad = torch.full_like(state.algorithm.arch.alpha["normal"], 0.5)
    before = {k: v.clone() for k, v in state.model.state_dict().items()}
    grads = [None if w.grad is None else w.grad.clone() for w in state.model.parameters()]
    batches = list(state.val_batches.in_order(1))
    a = hessian_eigenvalue(state.model, state.algorithm, batches, 3, 1.0, p["seed"])
    b = hessian_eigenvalue(state.model, state.algorithm, batches, 3, 1.0, p["seed"])
    assert a == b
    after = state.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all((g is None and w.grad is None) or torch.equal(g, w.grad) for g, w in zip(grads, state.model.parameters()))
    assert all(w.requires_grad for w in state.model.parameters())
    assert torch.equal(state.algorithm.arch.alpha["normal"].grad, torch.full_like(state.algorithm.arch.alpha["normal"], 0.5))
    assert state.model.training
    c = hessian_eigenvalue(state.model, state.algorithm, batches, 3, 1.0, p["seed"] + 1)
    assert c is not None and c.value != a.value


def test_random_has_no_eigenvalue(tmp_path: Path) -> None:
    p = params_for(tmp_path, "search.algorithm=random", "search.epochs=1", "search.indicators.hessian_every=1")
    row = search(p, tiny_data()).history[0]
    assert row["hessian_eig"] is None and row["hessian_seconds"] is None
    assert row["param_free_normal"] is not None


# ----------------------------------------------------------------------------- the cheap indicators


def test_entropies_and_parameter_free_share() -> None:
    assert entropy([0.25] * 4) == pytest.approx(math.log(4))
    assert entropy([1.0, 0.0]) == 0.0
    geno = {"normal": [("skip_connect", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("none", 2)]}
    probs = {"alpha": {"normal": [[0.5, 0.5], [1.0, 0.0]]}, "beta": {"normal": [0.5, 0.5, 0.2, 0.3, 0.5]}}
    out = architecture_indicators(geno, probs, {"normal": [[0, 1], [2, 3, 4]]})
    assert out["param_free_normal"] == 0.75
    assert out["op_entropy_mean_normal"] == pytest.approx(math.log(2) / 2) and out["op_entropy_min_normal"] == 0.0
    node2 = entropy([0.2, 0.3, 0.5])
    assert out["node_entropy_mean_normal"] == pytest.approx((math.log(2) + node2) / 2)
    assert out["node_entropy_min_normal"] == pytest.approx(min(math.log(2), node2))
    no_beta = architecture_indicators(geno, {"alpha": probs["alpha"], "beta": {}}, {})
    assert no_beta["node_entropy_mean_normal"] is None


def test_indicators_never_change_the_search(tmp_path: Path) -> None:
    """With every indicator on, the weights, the architecture and every non-indicator history value are the same bits."""
    for algorithm in ("rome", "darts"):
        off = search(params_for(tmp_path, f"search.algorithm={algorithm}"), tiny_data())
        on = search(params_for(tmp_path, f"search.algorithm={algorithm}", "search.indicators.hessian_every=1"),
                    tiny_data())
        for k, v in off.state.model.state_dict().items():
            assert torch.equal(v, on.state.model.state_dict()[k]), k
        for k, v in off.state.algorithm.arch.named_tensors().items():
            assert torch.equal(v, on.state.algorithm.arch.named_tensors()[k]), k
        plain = lambda rows: [{k: v for k, v in r.items() if not k.startswith(INDICATOR_KEYS)
                               and k not in ("seconds", "peak_memory_mb")} for r in rows]
        assert plain(off.history) == plain(on.history)
        assert all(r["hessian_eig"] is None for r in off.history)
        assert all(r["hessian_eig"] is not None and r["hessian_iters"] >= 1 for r in on.history)
        assert on.history[0]["param_free_normal"] == on.history[0]["n_param_free_normal"] / 8


def test_hessian_schedule() -> None:
    assert [e for e in range(1, 11) if hessian_due(e, 10, 2)] == [1, 3, 5, 7, 9, 10]  # R-DARTS: 0, 2, ... from 0; last
    assert [e for e in range(1, 5) if hessian_due(e, 4, 1)] == [1, 2, 3, 4]
    assert not any(hessian_due(e, 4, 0) for e in range(1, 5))


# ----------------------------------------------------------------------------- the stopping rules


class RDartsTracker:
    """R-DARTS's EVLocalAvg.update / early_stop (automl/RobustDARTS src/utils.py), restated with 0-based epochs
    as their train_search.py drives it: update and early_stop at every eigenvalue epoch but the last."""

    def __init__(self, window: int, ev_freq: int, epochs: int) -> None:
        self.window, self.ev_freq, self.epochs = window, ev_freq, epochs
        self.ev: list[float] = []
        self.ev_local_avg: list[float] = []
        self.la_epochs: dict[int, int] = {}
        self.la_start_idx, self.la_end_idx = 0, window
        self.stop_search, self.stop_epoch = False, epochs - 1

    def update(self, epoch: int, ev: float) -> None:
        self.ev.append(ev)
        if len(self.ev) >= int(np.ceil(self.window / 2)) and epoch < self.epochs - 1:
            if len(self.ev) < self.window:
                self.ev_local_avg.append(np.mean(self.ev))
            else:
                self.ev_local_avg.append(np.mean(self.ev[self.la_start_idx:self.la_end_idx]))
                self.la_start_idx += 1
                self.la_end_idx += 1
            self.la_epochs[epoch] = int(epoch - int(self.ev_freq * np.floor(self.window / 2)))
        elif len(self.ev) < int(np.ceil(self.window / 2)):
            self.la_epochs[epoch] = -1

    def early_stop(self, epoch: int, factor: float, es_start_epoch: int, delta: int) -> None:
        if int(self.la_epochs[epoch] - self.ev_freq * delta) >= es_start_epoch:
            self.stop_search = self.ev_local_avg[-1] / self.ev_local_avg[-1 - delta] > factor
            if self.stop_search:
                self.stop_epoch = int(self.la_epochs[epoch] - self.ev_freq * delta)


def _rdarts(evs: dict[int, float], epochs: int, every: int, window: int = 5, delta: int = 4, factor: float = 1.3,
            start0: int = 10) -> tuple[int, int] | None:
    """(fired epoch, stop epoch), both 1-based, from R-DARTS's tracker, or None."""
    tracker = RDartsTracker(window, every, epochs)
    for epoch0 in range(epochs):
        if epoch0 % every == 0 or epoch0 == epochs - 1:
            tracker.update(epoch0, evs[epoch0 + 1])
            if epoch0 != epochs - 1:
                tracker.early_stop(epoch0, factor, start0, delta)
                if tracker.stop_search:
                    return epoch0 + 1, tracker.stop_epoch + 1
    return None


def _history(evs: dict[int, float], epochs: int, every: int) -> list[dict]:
    return [{"epoch": e, "n_param_free_normal": 0, "hessian_eig": evs[e] if hessian_due(e, epochs, every) else None}
            for e in range(1, epochs + 1)]


def test_eigenvalue_rule_equals_rdarts_tracker_on_random_series() -> None:
    """Rising, flat and noisy series at R-DARTS's settings (50 epochs, every 2) and small ones: same epoch, same choice."""
    rng = random.Random(0)
    fired = 0
    for trial in range(300):
        epochs, every = rng.choice([(50, 2), (50, 1), (20, 1), (12, 1), (30, 3)])
        window, delta, factor, start0 = rng.choice([(5, 4, 1.3, 10), (3, 2, 1.2, 2), (2, 1, 1.05, 1), (5, 2, 1.1, 4)])
        growth = rng.choice([0.0, 0.02, 0.1, 0.3])
        evs = {e: (1 + growth) ** e * rng.uniform(0.8, 1.2) for e in range(1, epochs + 1)}
        expected = _rdarts(evs, epochs, every, window, delta, factor, start0)
        rule = StopRule("eigenvalue", window, delta, factor, start0 + 1, hessian_every=every)
        got = decide(rule, _history(evs, epochs, every), epochs)
        assert (None if got is None else (got.fired_epoch, got.chosen_epoch)) == expected, (trial, evs)
        fired += got is not None
    assert 50 < fired < 290  # both outcomes are exercised


def test_eigenvalue_rule_fires_exactly_where_it_says() -> None:
    """R-DARTS's defaults, every 2 epochs: flat at 1.0, then 2.0 from epoch 25 on. The first local average (window 5)
    that sees enough 2.0s to exceed 1.3 x the one 4 averages earlier fires, and returns the epoch 12 earlier."""
    evs = {e: (1.0 if e < 25 else 2.0) for e in range(1, 51)}
    rule = StopRule("eigenvalue", hessian_every=2)
    got = decide(rule, _history(evs, 50, 2), 50)
    # eigenvalues at 1, 3, ..., 49; at 27 the window (19..27) holds 25, 27: mean 1.4 > 1.3 x 1.0
    assert got is not None and (got.fired_epoch, got.chosen_epoch) == (27, 15)
    assert got.chosen_epoch == 27 - 2 * (5 // 2) - 2 * 4
    # nothing fires on a flat series, nor before start_epoch, nor at the last epoch
    assert decide(rule, _history({e: 1.0 for e in range(1, 51)}, 50, 2), 50) is None
    late = StopRule("eigenvalue", hessian_every=2, start_epoch=16)
    assert decide(late, _history(evs, 50, 2), 50).chosen_epoch >= 16
    short = StopRule("eigenvalue", window=1, delta=1, ratio=1.5, start_epoch=1, hessian_every=1)
    assert decide(short, _history({1: 1.0, 2: 1.0, 3: 9.0}, 3, 1), 3) is None  # the rise shows at the last epoch only


def test_param_free_rule() -> None:
    hist = [{"epoch": e, "n_param_free_normal": n, "hessian_eig": None} for e, n in enumerate([0, 1, 2, 3, 4, 5], 1)]
    got = decide(StopRule("param_free"), hist, 6)
    assert (got.fired_epoch, got.chosen_epoch) == (3, 3) and "2 parameter-free" in got.reason
    assert decide(StopRule("param_free", start_epoch=4), hist, 6).fired_epoch == 4
    assert decide(StopRule("param_free", max_param_free=6), hist, 6) is None
    assert decide(StopRule("none"), hist, 6) is None


def test_warmup_warning_names_the_first_epoch_the_rule_may_keep() -> None:
    """A rule that may keep a warm-up epoch (its alpha is the random start) is warned about; one that cannot, is not."""
    assert warmup_warning(StopRule("none"), 2) is None
    assert warmup_warning(StopRule("param_free", start_epoch=3), 2) is None
    assert warmup_warning(StopRule("param_free", start_epoch=2), 0) is None
    msg = warmup_warning(StopRule("param_free", start_epoch=2), 2)
    assert "search.early_stop.start_epoch = 2" in msg and "search.arch_warmup_epochs" in msg and ">= 3" in msg
    msg = warmup_warning(StopRule("param_free"), 2)  # null: param_free's reference value is epoch 1
    assert "null" in msg and "epoch 1" in msg
    assert warmup_warning(StopRule("eigenvalue", hessian_every=1), 10) is None  # null: R-DARTS's epoch 11
    assert "epoch 11" in warmup_warning(StopRule("eigenvalue", hessian_every=1), 11)


def test_search_logs_the_warmup_warning_once(tmp_path: Path) -> None:
    from rome.search.loop import run_search

    lines: list[str] = []
    p = params_for(tmp_path, "search.epochs=3", "search.arch_warmup_epochs=1", "search.early_stop.criterion=param_free",
                   "search.early_stop.max_param_free=9")
    run_search(SearchConfig.from_params(p), p["seed"], "mnist5k", tiny_data(), None, "cpu", progress=False,
               log=lines.append)
    warned = [line for line in lines if "warning" in line]
    assert len(warned) == 1 and "search.arch_warmup_epochs" in warned[0], lines
    lines.clear()
    p = params_for(tmp_path, "search.epochs=3", "search.arch_warmup_epochs=1", "search.early_stop.criterion=param_free",
                   "search.early_stop.max_param_free=9", "search.early_stop.start_epoch=2")
    run_search(SearchConfig.from_params(p), p["seed"], "mnist5k", tiny_data(), None, "cpu", progress=False,
               log=lines.append)
    assert not [line for line in lines if "warning" in line], lines


# ----------------------------------------------------------------------------- in the search and the stage


FIRES = ("search.epochs=6", "search.indicators.hessian_every=1", "search.early_stop.criterion=eigenvalue",
         "search.early_stop.window=1", "search.early_stop.delta=1", "search.early_stop.ratio=1.0001",
         "search.early_stop.start_epoch=1")


def test_resume_with_early_stopping_equals_uninterrupted(tmp_path: Path) -> None:
    """Killed (in process) after each epoch in turn, then resumed: the same decision at the same epoch, the same bits."""
    p = params_for(tmp_path, *FIRES)
    whole = search(p, tiny_data())
    stop = whole.state.stop
    assert stop is not None and stop.criterion == "eigenvalue" and stop.fired_epoch < 6
    assert len(whole.history) == stop.fired_epoch and len(whole.state.arch_by_epoch) == stop.fired_epoch
    for cut in range(1, stop.fired_epoch + 1):
        ckpt = tmp_path / f"ckpt{cut}"
        first = search(p, tiny_data(), ckpt, max_epochs_this_run=cut)
        assert (first.state.stop is not None) == (cut >= stop.fired_epoch)
        resumed = search(p, tiny_data(), ckpt)
        assert resumed.state.stop == stop
        assert resumed.history == whole.history or [
            {k: v for k, v in r.items() if k not in ("seconds", "peak_memory_mb", "hessian_seconds")}
            for r in resumed.history] == [
            {k: v for k, v in r.items() if k not in ("seconds", "peak_memory_mb", "hessian_seconds")}
            for r in whole.history]
        for a, b in zip(resumed.state.arch_by_epoch, whole.state.arch_by_epoch):
            assert all(torch.equal(a[k], b[k]) for k in a)


def test_stop_then_derive_through_the_stages(tmp_path: Path, prepared_smoke: Path, capsys: pytest.CaptureFixture) -> None:
    """`rome search` on the smoke preset with early stopping: search.json says where it stopped and which epoch it kept,
    arch.safetensors holds that epoch's alpha, `rome derive` writes that epoch's genotype, the audit says so."""
    from rome.paths import stage_dir

    ws = tmp_path / "ws"
    ws.mkdir()
    results = ws / "results"
    shutil.copytree(prepared_smoke, results / "mnist5k" / "prepare")
    (ws / "params.yaml").write_text(
        f"preset: smoke\nresults_dir: {results}\nsearch:\n  epochs: 4\n"
        "  early_stop: {criterion: param_free, max_param_free: 1, start_epoch: 2}\n")
    rc, lines = run_rome(ws, capsys, "search")
    assert rc == 0, lines
    params = resolve({"preset": "smoke", "results_dir": str(results), "search": {
        "epochs": 4, "early_stop": {"criterion": "param_free", "max_param_free": 1, "start_epoch": 2}}})
    out = stage_dir(params, "search")
    doc = json.loads((out / "search.json").read_text())
    es = doc["early_stop"]
    assert es["criterion"] == "param_free" and es["fired_epoch"] == es["chosen_epoch"] == 2 and doc["epochs_run"] == 2
    history = json.loads((out / "history.json").read_text())["epochs"]
    assert len(history) == 2 and doc["genotype"] == history[1]["genotype"]
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    arch = load_file(str(out / "arch.safetensors"))
    assert all(torch.equal(arch[k], ckpt["arch_by_epoch"][1][k]) for k in arch)
    assert "hessian_eig" in (out / "history.csv").read_text().splitlines()[0]
    rc, lines = run_rome(ws, capsys, "derive")
    assert rc == 0, lines
    geno = json.loads((stage_dir(params, "derive") / "genotype.json").read_text())
    assert [list(e) for e in geno["genotype"]["normal"]] == history[1]["genotype"]["normal"]
    from rome.stages import audit

    text = audit.render(audit.report(out, ws / "params.yaml", [], ws / "dvc.lock"))
    assert "search stopped early (param_free) after epoch 2 of 4" in text and "epoch 2's" in text


def test_bad_early_stop_settings_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = params_for(tmp_path, "search.early_stop.criterion=eigenvalue")
    with pytest.raises(RomeError, match=r"search.early_stop.criterion = eigenvalue: .*hessian_every >= 1"):
        build_state(SearchConfig.from_params(p), p["seed"], "mnist5k", tiny_data())
    p = params_for(tmp_path, "search.early_stop.criterion=eigenvalue", "search.indicators.hessian_every=1",
                   "search.algorithm=random")
    with pytest.raises(RomeError, match="random learns no architecture"):
        build_state(SearchConfig.from_params(p), p["seed"], "mnist5k", tiny_data())
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "params.yaml").write_text("preset: smoke\nsearch:\n  early_stop: {criterion: eigenvalue, ratio: 0.75}\n")
    rc, lines = run_rome(ws, capsys, "search")
    one_line_error(rc, lines, "search", "search.early_stop.ratio", "0.75")
    (ws / "params.yaml").write_text("preset: smoke\nsearch:\n  indicators: {hessian_evry: 2}\n")
    rc, lines = run_rome(ws, capsys, "search")
    one_line_error(rc, lines, "search", "hessian_evry")
