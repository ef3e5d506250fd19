"""W&B wrapper: disabled and absent are silent no-ops; the env var wins over params."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from conftest import sigkill_once_written, smoke
from rome import tracking


def test_disabled_is_noop(tmp_path: Path) -> None:
    params = smoke(tmp_path, "tracking.mode=offline")
    run = tracking.start(params, "search", ["search"])  # conftest sets WANDB_MODE=disabled: env wins
    assert not run.active and run.run_id is None
    run.log({"x": 1})
    run.finish()
    assert not (tmp_path / "wandb").exists()


def test_wandb_absent_is_noop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("no wandb")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    run = tracking.start(smoke(tmp_path, "tracking.mode=offline"), "derive", ["derive"])
    assert not run.active
    assert "wandb is not installed" in capsys.readouterr().err


def test_group_and_mode_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = smoke(tmp_path, "search.algorithm=gdas", "tracking.mode=offline")
    assert tracking.experiment_group(params) == "mnist5k-darts-gdas"
    assert tracking.experiment_group(smoke(tmp_path, "tracking.group=abl")) == "abl"
    monkeypatch.delenv("WANDB_MODE")
    assert tracking.resolve_mode(params) == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking.resolve_mode(params) == "disabled"


def test_run_id_is_kept_with_the_checkpoint(tmp_path: Path) -> None:
    first = tracking.tracking_run_id(tmp_path / "ckpt")
    assert first.isalnum() and len(first) == 8
    assert tracking.tracking_run_id(tmp_path / "ckpt") == first  # a resumed run continues the same W&B run
    assert tracking.tracking_run_id(tmp_path / "other") != first


def test_killed_search_resumes_the_same_wandb_run_offline(tmp_path: Path, prepared_smoke: Path) -> None:
    """SIGKILL after the first checkpoint, rerun: one W&B run id for both processes (id + resume),
    epoch as the step metric, the input data recorded as the run's input (offline: in its config)."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    import yaml

    pytest.importorskip("wandb")
    from rome.config import resolve
    from rome.paths import checkpoint_dir, run_record_path

    results = tmp_path / "results"
    shutil.copytree(prepared_smoke, results / "mnist5k" / "prepare")
    doc = {"preset": "smoke", "results_dir": str(results), "tracking": {"mode": "offline"},
           "search": {"epochs": 4, "steps_per_epoch": 6}}
    file = tmp_path / "p.yaml"
    file.write_text(yaml.safe_dump(doc))
    params = resolve(doc, source="test")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    env.pop("WANDB_MODE")
    # a W&B service started by an earlier in-process test exports WANDB_SERVICE; a child attached to
    # it would share the killed run's stream ("run ID ... is in use"): give each child its own
    env.pop("WANDB_SERVICE", None)
    cmd = [sys.executable, "-m", "rome.cli", "search", "--params", str(file)]
    ckpt = checkpoint_dir(params, "search") / "last.pt"
    sigkill_once_written(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), ckpt)
    run_id = (checkpoint_dir(params, "search") / tracking.RUN_ID_FILE).read_text().strip()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    record = json.loads(run_record_path(params, "search").read_text())
    assert record["wandb_run_id"] == run_id
    runs = sorted((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.split("-")[3] == run_id for r in runs)
    # offline, the run's records (config included) sit in its .wandb log until `wandb sync`
    log = b"".join(p.read_bytes() for p in runs[-1].glob("*.wandb"))
    assert b"data-mnist5k:" in log and b"inputs" in log
