"""Reference mode's hyper-parameters and GDAS's clipping over alpha (issue 22).

The expected values are the registry's facts (``REFERENCE_HPARAMS`` of each algorithm module: the authors'
numbers with file and line), compared with what ``rome.config.resolve`` gives; the clipping test restates
AutoDL-Projects' weight step and computes the expected clip factor by autograd on a copy of the network,
never by calling the step under test for the expectation.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rome.algorithms import darts, gdas, get_algorithm, pc_darts
from rome.algorithms.registry import HPARAM_SPACES
from rome.config import load_preset, resolve
from rome.reproducibility import seed_everything
from rome.algorithms.hyperparameters import (
    hyperparameter_origins,
    provenance_block,
    reference_changes,
    reference_overrides,
)
from rome.search.loop import SearchData, build_state
from rome.sections import SearchConfig

# the paper preset's optimiser values: reference mode must replace the ones that differ from the authors'
PAPER = {**load_preset("default")["search"], **load_preset("paper")["search"]}
CASES = [("gdas", "nb201", gdas.REFERENCE_HPARAMS["nb201"]), ("gdas", "s2", gdas.REFERENCE_HPARAMS["darts"]),
         ("gdas", "darts", gdas.REFERENCE_HPARAMS["darts"]), ("darts", "s3", darts.REFERENCE_HPARAMS["darts"]),
         ("darts", "nb201", darts.REFERENCE_HPARAMS["nb201"]), ("pc_darts", "darts", pc_darts.REFERENCE_HPARAMS["darts"]),
         ("pc_darts", "nb201", pc_darts.REFERENCE_HPARAMS["nb201"])]


def resolved(*sets: str, file: dict | None = None) -> dict:
    return resolve({"preset": "paper", **(file or {})}, list(sets), source="test")


@pytest.mark.parametrize(("algorithm", "space", "facts"), CASES)
def test_reference_mode_resolves_the_authors_values(algorithm: str, space: str, facts) -> None:
    params = resolved("search.mode=reference", f"search.algorithm={algorithm}", f"search.space={space}")
    for key, fact in facts.applied.items():
        assert params["search"][key] == fact.value, (algorithm, space, key)
    controlled = resolved(f"search.algorithm={algorithm}", f"search.space={space}")
    assert all(controlled["search"][k] == PAPER[k] for k in facts.applied)
    # every value named by the log line is one reference mode changed from the preset's
    line = reference_changes(params)
    changed = {k for k, f in facts.applied.items() if f.value != PAPER[k]}
    assert line is not None and "\n" not in line
    assert set(re.findall(r"search\.(\w+) \S+ -> ", line)) == changed


@pytest.mark.parametrize(("algorithm", "space", "facts"), CASES)
def test_a_value_the_user_set_wins_over_reference(algorithm: str, space: str, facts) -> None:
    sets = ["search.mode=reference", f"search.algorithm={algorithm}", f"search.space={space}"]
    params = resolved(*sets, "search.w_lr=0.0123", "search.a_lr=0.0005")
    assert params["search"]["w_lr"] == 0.0123 and params["search"]["a_lr"] == 0.0005
    # the params file counts as the user's too, even where its value equals the preset's
    from_file = resolved(*sets, file={"search": {"w_weight_decay": PAPER["w_weight_decay"], "grad_clip": 3.0}})
    assert from_file["search"]["w_weight_decay"] == PAPER["w_weight_decay"] and from_file["search"]["grad_clip"] == 3.0
    origins = hyperparameter_origins(params)
    assert origins["search.w_lr"] == {"value": 0.0123, "origin": "params"}
    assert origins["search.w_momentum"]["origin"] == f"reference:{facts.applied['w_momentum'].source}"
    assert "kept the user's search.w_lr = 0.0123" in reference_changes(params)
    for key, fact in facts.applied.items():
        if key not in ("w_lr", "a_lr"):
            assert params["search"][key] == fact.value


def test_reference_overrides_per_key_and_nothing_for_rome_or_controlled() -> None:
    params = resolved("search.mode=reference", "search.algorithm=pc_darts")
    over = reference_overrides(params)
    assert over["search.w_lr"] == (0.1, "reference:yuhuixu1993/PC-DARTS@8c434ef:train_search.py:25")
    assert over["search.a_lr"] == (0.0006, "reference:yuhuixu1993/PC-DARTS@8c434ef:train_search.py:43")
    block = provenance_block(params)
    assert block["recorded_not_applied"]["batch_size"]["value"] == 256
    assert block["recorded_not_applied"]["arch_warmup_epochs"]["value"] == 15
    for sets in (["search.mode=reference", "search.algorithm=rome"], ["search.algorithm=gdas"]):
        p = resolved(*sets)
        assert reference_overrides(p) == {} and provenance_block(p) is None and reference_changes(p) is None


def test_every_fact_names_a_commit_a_file_and_a_line() -> None:
    source = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{7}:[\w./-]+:\d+(-\d+)?( \(.*\))?$")
    for name in ("gdas", "darts", "pc_darts"):
        spec = get_algorithm(name)
        assert set(spec.reference_hparams) == set(HPARAM_SPACES)
        for facts in spec.reference_hparams.values():
            for key, fact in {**facts.applied, **facts.recorded}.items():
                assert source.match(fact.source), (name, key, fact.source)
            assert set(facts.applied) <= set(PAPER)  # every applied key is a search.* key
    # the values the issue names, as the authors' files have them
    assert gdas.REFERENCE_HPARAMS["nb201"].applied["w_lr"].value == 0.025
    assert gdas.REFERENCE_HPARAMS["nb201"].applied["w_weight_decay"].value == 0.0005
    assert pc_darts.REFERENCE_HPARAMS["darts"].recorded["batch_size"].value == 256
    assert pc_darts.REFERENCE_HPARAMS["darts"].applied["w_lr"].value == 0.1


# ----------------------------------------------------------------------------- clipping


def tiny_data(n: int = 32, side: int = 8, classes: int = 3) -> SearchData:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, classes, (2 * n,), generator=g)
    images = (torch.randint(0, 120, (2 * n, 1, side, side), generator=g) + 60 * labels.view(-1, 1, 1, 1)).clamp(0, 255)
    return SearchData(images[:n].to(torch.uint8), labels[:n], images[n:].to(torch.uint8), labels[n:], (0.5,), (0.25,),
                      classes, "sha-a")


def clip_state(tmp: Path, *sets: str):
    params = resolve({"preset": "smoke"}, [f"results_dir={tmp}", "search.epochs=2", "search.steps_per_epoch=2",
                                           "search.batch_size=8", "search.layers=3", "search.init_channels=4",
                                           "search.algorithm=gdas", "search.mode=reference", "search.space=nb201",
                                           "search.grad_clip=0.05", *sets], source="test")
    seed_everything(0)
    return build_state(SearchConfig.from_params(params), 0, "mnist5k", tiny_data())


@pytest.mark.parametrize("clip_with_alpha", [True, False])
def test_gdas_reference_clips_over_weights_and_stale_alpha_gradient(tmp_path: Path, clip_with_alpha: bool) -> None:
    """AutoDL-Projects, exps/NAS-Bench-201-algos/GDAS.py, search_func (lines 50-55), the weight step:

        w_optimizer.zero_grad()                                  # zeroes get_weights() only, not arch_parameters
        base_loss.backward()                                     # gradients into the weights AND arch_parameters
        torch.nn.utils.clip_grad_norm_(network.parameters(), 5)  # network.parameters() includes arch_parameters

    so at the clip alpha's gradient is the previous architecture step's (a_optimizer.zero_grad() runs only in
    the architecture step, after this) plus the weight batch's. Reference GDAS clips over the weights and that
    sum; with ``clip_with_alpha: false`` (the controlled loop's clip) over the weights alone."""
    state = clip_state(tmp_path, f"search.behaviour={{clip_with_alpha: {str(clip_with_alpha).lower()}}}")
    assert state.parts.clip_with_alpha is clip_with_alpha and state.parts.weights_first
    tau = 5.0
    state.iteration(tau)  # iteration 1: weight step, then the architecture step leaves alpha's gradient set
    alphas = list(state.algorithm.arch.parameters())
    # at this toy size alpha's gradient is ~1e-4 of the weights' norm, within float32 noise of the factor;
    # scaled up (as a loop that never zeroes it would let it grow) the stale part decides the factor
    for p in alphas:
        p.grad.mul_(1e4)
    stale = [p.grad.detach().clone() for p in alphas]
    assert all(s.abs().sum() > 0 for s in stale)

    # iteration 2's weight batch and draw, read from copies of the streams
    x, y = copy.deepcopy(state.train_batches).__next__()
    sample = state.algorithm.draw(torch.Generator().set_state(state.parts.sample_gen.get_state()))
    model = copy.deepcopy(state.model)
    weights = list(model.parameters())
    loss = F.cross_entropy(model(x, state.algorithm.paths(sample, tau)), y)
    grads = torch.autograd.grad(loss, weights + alphas, allow_unused=True)
    g_w = [torch.zeros_like(p) if g is None else g for p, g in zip(weights, grads[:len(weights)])]
    g_a = [s + (0 if g is None else g) for s, g in zip(stale, grads[len(weights):])]
    norm_w = torch.sqrt(sum((g ** 2).sum() for g in g_w))
    norm_all = torch.sqrt(norm_w ** 2 + sum((g ** 2).sum() for g in g_a))
    clip = state.parts.grad_clip
    assert norm_w > clip  # the batch's gradient exceeds the clip, so the factor matters
    factor = clip / ((norm_all if clip_with_alpha else norm_w) + 1e-6)  # torch's clip_grad_norm_ formula

    seen: list[list[torch.Tensor]] = []
    # the weights' gradients as the SGD step receives them, i.e. after the clip
    state.parts.w_opt.register_step_pre_hook(
        lambda _opt, _a, _k: seen.append([torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
                                      for p in state.model.parameters()]))
    state.iteration(tau)
    clipped = seen[0]  # weights first: the first SGD step of the iteration is the weight step
    for got, g in zip(clipped, g_w):
        torch.testing.assert_close(got, g * factor, rtol=1e-4, atol=1e-7)
    # the two clip factors differ by the alpha part: with alpha the weights get the smaller step
    assert norm_all > 1.5 * norm_w  # so the two factors differ far beyond the tolerance above


def test_only_gdas_reference_clips_with_alpha(tmp_path: Path) -> None:
    """DARTS and PC-DARTS clip ``model.parameters()``, which excludes their alphas (plain Variables,
    quark0/darts model_search.py:117-118, PC-DARTS model_search.py:173-176): no clip_with_alpha."""
    from rome.search.modes import resolve_behaviour
    from rome.spaces import get_space

    for algorithm, expected in (("gdas", True), ("darts", False), ("pc_darts", False), ("rome", False)):
        for mode in ("reference", "controlled"):
            params = resolve({"preset": "smoke"}, [f"search.algorithm={algorithm}", f"search.mode={mode}"])
            cfg = SearchConfig.from_params(params)
            assert resolve_behaviour(cfg, get_space(cfg.space, cfg.nodes)).clip_with_alpha is (expected and mode == "reference")
