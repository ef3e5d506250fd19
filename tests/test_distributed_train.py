"""Retraining across processes (DDP, gloo on the CPU): 2 processes with SyncBatchNorm follow the
one-process loss curve for the same global batch; a torchrun retraining killed mid-epoch resumes;
rank 0 alone writes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import smoke
from rome.paths import checkpoint_dir, stage_dir
from test_distributed_search import free_port, kill_tree_once_written

DARTS_V2 = Path(__file__).resolve().parents[1] / "src" / "rome" / "genotype" / "published" / "darts_v2.json"
# With SyncBatchNorm, the same global batches and per-image seeded crops, 2 processes compute what
# one computes except for the order of float32 sums (gradients averaged over ranks, BatchNorm
# statistics summed over ranks): the loss curves agree to ~1e-7 relative; 1e-5 leaves room for the
# few optimiser steps that carry the rounding along. Drop path, cutout and mixup are off: each rank
# draws their per-batch randomness from its own stream (as timm), so with them on the curves differ
# by sampling noise, not rounding.
RTOL = 1e-5
# NCHW: NHWC kernels round differently for each per-rank batch size (tests/test_distributed_search.py)
TRAIN = ["train.channels_last=false", "train.drop_path=0", "train.random_erasing=0", "train.mixup=0", "train.epochs=3",
         "train.steps_per_epoch=4", f"train.genotype={DARTS_V2}"]


def _cli(params_file: Path, nproc: int, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    sets = [a for o in (*TRAIN, *overrides) for a in ("--set", o)]
    rome = ["-m", "rome.cli", "train", "--params", str(params_file), *sets]
    cmd = ([sys.executable, *rome] if nproc == 1 else
           [str(Path(sys.executable).with_name("torchrun")), f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
            f"--master_port={free_port()}", *rome])
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _setup(root: Path, prepared: Path, *overrides: str) -> tuple[Path, dict]:
    params = smoke(root / "results", *TRAIN, *overrides)
    link = stage_dir(params, "prepare")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(prepared, target_is_directory=True)
    file = root / "params.yaml"
    file.write_text(json.dumps({"preset": "smoke", "results_dir": str(root / "results")}))
    return file, params


def _rows(file: Path) -> list[dict[str, float]]:
    with open(file, newline="") as fh:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]


@pytest.mark.slow
def test_two_processes_follow_one_and_resume_after_a_kill(tmp_path: Path, prepared_smoke: Path) -> None:
    one_file, one_params = _setup(tmp_path / "one", prepared_smoke, "train.sync_bn=true")
    two_file, two_params = _setup(tmp_path / "two", prepared_smoke, "train.sync_bn=true")
    one = _cli(one_file, 1, "train.sync_bn=true")
    last = checkpoint_dir(two_params, "train") / "last.pth.tar"
    kill_tree_once_written(_cli(two_file, 2, "train.sync_bn=true"), last)  # inside epoch 2
    resumed = _cli(two_file, 2, "train.sync_bn=true")
    o_out, o_err = one.communicate(timeout=600)
    r_out, r_err = resumed.communicate(timeout=600)
    assert one.returncode == 0, o_err
    assert resumed.returncode == 0, r_err
    assert "train: resuming" in r_err and r_err.count("train: resuming") == 1  # rank 0 logs
    out_one, out_two = stage_dir(one_params, "train"), stage_dir(two_params, "train")
    assert r_out.strip().splitlines() == [str(out_two)]  # rank 0 alone prints (and writes) the artifact
    a, b = _rows(out_one / "summary.csv"), _rows(out_two / "summary.csv")
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b] == [0, 1, 2]
    for ra, rb in zip(a, b):
        for key in ("train_loss", "eval_loss", "lr"):
            assert rb[key] == pytest.approx(ra[key], rel=RTOL), (ra["epoch"], key)
    wa, wb = load_file(str(out_one / "model.safetensors")), load_file(str(out_two / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wb[key].double(), wa[key].double(), rtol=RTOL, atol=1e-6)
