"""Search across processes (rome.distributed, gloo on the CPU): N ranks sharing the K draws take the
steps one process takes; rank 0 alone writes; a killed torchrun search resumes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from safetensors.torch import load_file

from rome.distributed import ProcessGroup
from rome.reproducibility import seed_everything
from rome.search.checkpoint import CHECKPOINT_FILE
from rome.search.loop import SearchData, run_search
from rome.sections import SearchConfig
from test_search_loop import params_for, tiny_data

# Relative tolerance of N processes vs one: the K draws' gradients are summed in another order
# (per rank, then across ranks), and BatchNorm statistics are recomputed for the replay, so values
# differ by float32 rounding (~1e-7 relative) that a few optimiser steps carry along.
RTOL, ATOL = 1e-5, 1e-6
# These tests pin NCHW: oneDNN's NHWC kernels pick their blocking by batch size and round differently,
# so with the default layout (auto: NHWC on this CPU) N processes match one only to ~1e-5 after 3 steps
# and ~1e-3 after a smoke search through torchrun (docs/data.md). What is tested here is the data-
# parallel arithmetic, which the layout does not change.
NCHW = "search.channels_last=false"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uniform_data() -> SearchData:
    """Every image the same (one label): a slice of a batch then has the batch's statistics, so
    data parallelism must compute exactly what one process computes on the whole batch."""
    one = tiny_data(n=1)
    n = 32
    return SearchData(one.train_images.expand(n, -1, -1, -1).contiguous(), one.train_labels.expand(n).contiguous(),
                      one.train_images.expand(n, -1, -1, -1).contiguous(), one.train_labels.expand(n).contiguous(),
                      one.mean, one.std, one.num_classes, one.manifest_sha256)


def final_state(params: dict, group: ProcessGroup, uniform: bool = False) -> dict[str, torch.Tensor]:
    """alpha/beta, weights and BatchNorm buffers after the search, plus the last history row's losses."""
    seed_everything(params["seed"])
    data = uniform_data() if uniform else tiny_data()
    result = run_search(SearchConfig.from_params(params), params["seed"], params["data"]["dataset"], data,
                        None, "cpu", progress=False, log=lambda _m: None, group=group)
    state = {f"arch.{k}": v.detach().clone() for k, v in result.state.algorithm.arch.named_tensors().items()}
    state.update({f"model.{k}": v.detach().clone() for k, v in result.state.model.state_dict().items()})
    last = result.history[-1]
    state.update({f"history.{k}": torch.tensor(float(last[k]), dtype=torch.float64)
                  for k in ("train_loss", "train_acc", "arch_loss", "val_loss", "val_acc") if last[k] is not None})
    return state


def _worker(rank: int, world: int, port: int, params: dict, out: str, uniform: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(final_state(params, ProcessGroup(rank, world), uniform), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def spawned(params: dict, world: int, tmp: Path, uniform: bool = False) -> list[dict[str, torch.Tensor]]:
    mp.spawn(_worker, args=(world, free_port(), params, str(tmp / "state"), uniform), nprocs=world, join=True)
    return [torch.load(tmp / f"state.{r}") for r in range(world)]


# alpha/beta take Adam steps (lr 3e-4): a component whose gradient is near zero turns rounding into
# absolute change (Adam divides by sqrt(v) + 1e-8). 1e-5 per step, as in the data-parallel test
# below; measured after 2 epochs of 3 steps: ~5e-8 typically, 1.3e-5 on two edges for rome K=3 seed 0 (NCHW;
# since the FactorizedReduce change rounds differently), still 30x below Adam's 3e-4 per step.
ARCH_ATOL_PER_STEP = 1e-5


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], arch_steps: int = 0) -> None:
    assert a.keys() == b.keys()
    for k in a:
        atol = ARCH_ATOL_PER_STEP * arch_steps if k.startswith("arch.") and arch_steps else ATOL
        torch.testing.assert_close(b[k].double(), a[k].double(), rtol=RTOL, atol=atol, msg=lambda m: f"{k}: {m}")


@pytest.mark.parametrize("algorithm,k", [("rome", 4), ("rome", 3), ("gdas", 1)])
def test_two_processes_take_the_one_process_steps(tmp_path: Path, algorithm: str, k: int) -> None:
    params = params_for(tmp_path, f"search.algorithm={algorithm}", f"search.k_samples={k}",
                        "search.steps_per_epoch=3", NCHW)
    one = final_state(params, ProcessGroup())
    ranks = spawned(params, 2, tmp_path)
    for rank_state in ranks:
        assert_close(one, rank_state, arch_steps=params["search"]["epochs"] * 3)
    # every rank holds bit-identical state (the same reduced gradients, the same replayed buffers)
    for k_ in ranks[0]:
        assert torch.equal(ranks[0][k_], ranks[1][k_]), k_


@pytest.mark.parametrize("algorithm,k", [("rome", 2), ("gdas", 1)])
def test_data_parallel_step_is_the_one_process_step(tmp_path: Path, algorithm: str, k: int) -> None:
    """search.parallel = batch: every rank runs the K draws on its half of the batch. With images
    whose halves have the batch's statistics (all the same), one step equals one process's step on
    the whole batch: the weights to float rounding. alpha/beta move by one Adam step (lr 3e-4), in
    which components with a gradient near zero turn rounding into absolute change: ~1e-6 on one CPU,
    2.9e-6 on another (other oneDNN kernels, other rounding). 1e-5 stays 30x below one step (3e-4),
    so a wrong or missing gradient still fails."""
    params = params_for(tmp_path, f"search.algorithm={algorithm}", f"search.k_samples={k}", "search.epochs=1",
                        "search.steps_per_epoch=1", "search.parallel=batch", "search.augment=none", NCHW)
    one = final_state(params, ProcessGroup(), uniform=True)
    ranks = spawned(params, 2, tmp_path, uniform=True)
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    for key, value in one.items():
        if "running_var" in key or key.startswith("history"):
            continue  # BatchNorm's unbiased variance uses n/(n-1) of the slice; validation reads it
        atol = ARCH_ATOL_PER_STEP if key.startswith("arch") else ATOL  # one Adam step
        torch.testing.assert_close(ranks[0][key].double(), value.double(), rtol=RTOL, atol=atol, msg=key)


# ----------------------------------------------------------------------------- torchrun, end to end


def _torchrun(params_file: Path, nproc: int, env: dict[str, str]) -> subprocess.Popen:
    """``torchrun --nproc_per_node=nproc rome search``."""
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           "-m", "rome.cli", "search", "--params", str(params_file)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            )


def kill_tree_once_written(proc: subprocess.Popen, path: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    ended_first = proc.poll() is not None
    # torchrun and every rank (torchrun starts its workers in sessions of their own), as a node failure would
    for p in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    _, err = proc.communicate()
    assert not ended_first, f"the run ended before {path} was written: {err[-3000:]}"


@pytest.mark.slow
def test_torchrun_search_writes_once_resumes_and_matches_one_process(tmp_path: Path, prepared_smoke: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    search_params = {"epochs": 3, "steps_per_epoch": 4, "k_samples": 3, "channels_last": False}  # NCHW (above)
    files = {}
    for name in ("two", "one"):
        results = tmp_path / name / "results"
        shutil.copytree(prepared_smoke, results / "mnist5k" / "prepare")
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(yaml.safe_dump({"preset": "smoke", "results_dir": str(results), "search": search_params}))
    rel = Path("mnist5k") / "darts" / "rome" / "seed0"
    ckpt = tmp_path / "two" / "state" / rel / "search_ckpt" / CHECKPOINT_FILE
    kill_tree_once_written(_torchrun(files["two"], 2, env), ckpt)
    epoch_at_kill = torch.load(ckpt, weights_only=False)["epoch"]
    assert 1 <= epoch_at_kill < search_params["epochs"]

    # the resumed run through search.nproc: `rome search` re-executes itself under torchrun --standalone
    resumed = subprocess.Popen([sys.executable, "-m", "rome.cli", "search", "--params", str(files["two"]),
                                "--set", "search.nproc=2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    one = subprocess.Popen([sys.executable, "-m", "rome.cli", "search", "--params", str(files["one"])],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r_out, r_err = resumed.communicate(timeout=600)
    o_out, o_err = one.communicate(timeout=600)
    assert resumed.returncode == 0, r_err
    assert one.returncode == 0, o_err
    assert f"resuming {ckpt} after epoch {epoch_at_kill}/3" in r_err
    assert r_err.count("resuming") == 1  # logged by rank 0 only
    assert "K = 3 draws per step over 2 processes" in r_err
    out_two = tmp_path / "two" / "results" / rel / "search"
    out_one = tmp_path / "one" / "results" / rel / "search"
    # rank 0 alone prints the artifact folder, and writes it once (no temp folder of another rank left)
    assert r_out.strip().splitlines() == [str(out_two)]
    assert not ckpt.parent.exists()
    assert sorted(p.name for p in out_two.parent.iterdir()) == sorted(p.name for p in out_one.parent.iterdir())
    a, b = load_file(str(out_one / "arch.safetensors")), load_file(str(out_two / "arch.safetensors"))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=RTOL, atol=ATOL)
    ha = json.loads((out_one / "history.json").read_text())["epochs"]
    hb = json.loads((out_two / "history.json").read_text())["epochs"]
    for row_a, row_b in zip(ha, hb, strict=True):
        for key in ("train_loss", "arch_loss", "val_loss"):
            assert row_b[key] == pytest.approx(row_a[key], rel=RTOL, abs=ATOL), key


def test_other_stages_refuse_to_run_under_torchrun(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                   tmp_path: Path) -> None:
    from rome.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["derive", "--set", f"results_dir={tmp_path}", "--set", "preset=smoke"]) == 2
    err = capsys.readouterr().err
    assert "WORLD_SIZE = 2: rome derive runs in one process" in err and "\n" not in err.strip()
