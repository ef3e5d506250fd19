"""``rome search --estimate``: the search's cost on this device, measured through its own step.

The state is built exactly as ``run_search`` builds it (``build_state``: same supernet, algorithm,
optimisers, batches, device), and each timed iteration is ``SearchState.iteration``, i.e. the one
``rome.search.step.search_step`` the loop runs; the per-epoch end (validation of the argmax network
on search_val, the genotype and the probabilities) is timed as the loop runs it. Nothing is written:
no checkpoint, no artifact, no run record, no W&B run.

Projection: iterations x epochs x median s/iteration + epochs x the epoch end + the start-up
(what the first, cold iteration and epoch end cost beyond warm ones: seconds that dominate a
smoke run and vanish in a paper-scale one). Architecture
warm-up epochs (``search.arch_warmup_epochs``, reference PC-DARTS) are timed separately, with the
architecture step off, as the loop runs them. With ``search.indicators.hessian_every`` on, one
eigenvalue computation is timed (once: it is the costly part) and spread over the epoch ends at the
share of epochs that compute it.
"""

from __future__ import annotations

import torch

from rome.estimate import StageEstimate, capacity_mb, device_name, peak_memory_mb, reset_peak, time_calls
from rome.search.early_stop import hessian_due
from rome.search.loop import SearchData, build_state, epoch_indicators, evaluate, steps_per_epoch
from rome.search.sampling import linear_tau
from rome.sections import SearchConfig

EVAL_TIMED_BATCHES = 2  # validation batches per timed epoch end; scaled to the whole pass


def estimate_search(config: SearchConfig, seed: int, dataset: str, data: SearchData,
                    device: torch.device) -> StageEstimate:
    """Time the search's iteration and epoch end on ``device``; project the whole search."""
    state = build_state(config, seed, dataset, data, device)
    try:
        reset_peak(device)
        tau = linear_tau(0, config.epochs, config.tau_max, config.tau_min)
        warm_epochs = min(state.behaviour.arch_warmup_epochs, config.epochs)
        state.parts.arch_active = True
        step = time_calls(lambda: state.iteration(tau), device)
        per_iter = step.median
        if warm_epochs:
            state.parts.arch_active = False
            per_warm = time_calls(lambda: state.iteration(tau), device).median
            per_iter = (per_warm * warm_epochs + per_iter * (config.epochs - warm_epochs)) / config.epochs
        val_total = -(-len(data.val_labels) // config.batch_size)
        val_batches = min(val_total, config.steps_per_epoch) if config.steps_per_epoch is not None else val_total
        timed = min(val_batches, EVAL_TIMED_BATCHES)

        def epoch_end() -> None:
            evaluate(state, state.algorithm.eval_paths(), timed)
            state.algorithm.genotype()
            state.algorithm.probabilities()

        end = time_calls(epoch_end, device, warmup=1, repeats=3)
        eval_seconds = end.median * val_batches / max(timed, 1)
        every = int(config.indicators.get("hessian_every", 0))
        due = sum(hessian_due(e, config.epochs, every) for e in range(1, config.epochs + 1))
        if due and state.algorithm.learns_arch:  # the eigenvalue: timed once, on the epoch ends that compute it
            geno, probs = state.algorithm.genotype(), state.algorithm.probabilities()
            hessian = time_calls(lambda: epoch_indicators(state, geno, probs, tau, 0), device, warmup=0, repeats=1)
            eval_seconds += hessian.median * due / config.epochs
        steps = steps_per_epoch(state)
        capacity, what = capacity_mb(device)
        return StageEstimate("search", per_iter, step.startup + end.startup, steps * config.epochs, eval_seconds, config.epochs,
                             peak_memory_mb(device), capacity, what, device_name(device))
    finally:
        state.train_batches.close()
        state.val_batches.close()
