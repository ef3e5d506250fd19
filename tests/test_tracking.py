"""W&B wrapper: disabled and absent are silent no-ops; the env var wins over params."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from conftest import smoke
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
