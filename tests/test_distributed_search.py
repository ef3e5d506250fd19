"""Search across processes (rome.distributed, gloo on the CPU): N ranks sharing the K draws take the
steps one process takes; rank 0 alone writes; a killed torchrun search resumes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rome.distributed import ProcessGroup
from rome.reproducibility import seed_everything
from rome.search.loop import run_search
from rome.sections import SearchConfig
from test_search_loop import params_for, tiny_data

# Relative tolerance of N processes vs one: the K draws' gradients are summed in another order
# (per rank, then across ranks), and BatchNorm statistics are recomputed for the replay, so values
# differ by float32 rounding (~1e-7 relative) that a few optimiser steps carry along.
RTOL, ATOL = 1e-5, 1e-6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def final_state(params: dict, group: ProcessGroup) -> dict[str, torch.Tensor]:
    """alpha/beta, weights and BatchNorm buffers after the search, plus the last history row's losses."""
    seed_everything(params["seed"])
    result = run_search(SearchConfig.from_params(params), params["seed"], params["data"]["dataset"], tiny_data(),
                        None, "cpu", progress=False, log=lambda _m: None, group=group)
    state = {f"arch.{k}": v.detach().clone() for k, v in result.state.algorithm.arch.named_tensors().items()}
    state.update({f"model.{k}": v.detach().clone() for k, v in result.state.model.state_dict().items()})
    last = result.history[-1]
    state.update({f"history.{k}": torch.tensor(float(last[k]), dtype=torch.float64)
                  for k in ("train_loss", "train_acc", "arch_loss", "val_loss", "val_acc") if last[k] is not None})
    return state


def _worker(rank: int, world: int, port: int, params: dict, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(final_state(params, ProcessGroup(rank, world)), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def spawned(params: dict, world: int, tmp: Path) -> list[dict[str, torch.Tensor]]:
    mp.spawn(_worker, args=(world, free_port(), params, str(tmp / "state")), nprocs=world, join=True)
    return [torch.load(tmp / f"state.{r}") for r in range(world)]


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k].double(), a[k].double(), rtol=RTOL, atol=ATOL, msg=lambda m: f"{k}: {m}")


@pytest.mark.parametrize("algorithm,k", [("rome", 4), ("rome", 3)])
def test_two_processes_take_the_one_process_steps(tmp_path: Path, algorithm: str, k: int) -> None:
    params = params_for(tmp_path, f"search.algorithm={algorithm}", f"search.k_samples={k}",
                        "search.steps_per_epoch=3")
    one = final_state(params, ProcessGroup())
    ranks = spawned(params, 2, tmp_path)
    for rank_state in ranks:
        assert_close(one, rank_state)
    # every rank holds bit-identical state (the same reduced gradients, the same replayed buffers)
    for k_ in ranks[0]:
        assert torch.equal(ranks[0][k_], ranks[1][k_]), k_
