"""Run records name the Slurm allocation a stage ran in (job, partition, GPUs), and nothing outside Slurm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import smoke
from rome.artifacts import SLURM_JOB_ENV, write_run_record


def test_run_record_names_the_slurm_job_and_its_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = smoke(tmp_path / "results")
    for key in SLURM_JOB_ENV:
        monkeypatch.delenv(key, raising=False)
    outside = json.loads(write_run_record(params, "search", tmp_path / "a").read_text())
    assert outside["slurm"] is None

    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_JOB_PARTITION", "gpu")
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "1")
    monkeypatch.setenv("SLURM_STEP_GPUS", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    path = write_run_record(params, "search", tmp_path / "a")
    # keyed by the output folder (issue 19): --out a, not the derived folder, gets its own record beside it
    assert path.parent == tmp_path / "state" / "mnist5k" / "darts" / "rome" / "seed0"
    assert path.name.startswith("search.out-") and path.name.endswith(".run.json")
    slurm = json.loads(path.read_text())["slurm"]
    assert slurm == {**dict.fromkeys(SLURM_JOB_ENV), "SLURM_JOB_ID": "42", "SLURM_JOB_PARTITION": "gpu",
                     "SLURM_GPUS_ON_NODE": "1", "SLURM_STEP_GPUS": "1", "CUDA_VISIBLE_DEVICES": "0"}
