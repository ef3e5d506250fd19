"""Weights & Biases, offline-safe: one small wrapper every stage uses.

Mode comes from ``WANDB_MODE`` when set, else ``tracking.mode`` (shipped: offline, so nothing
waits for a server and no login is asked). ``disabled`` — or wandb missing from the
environment — gives a tracker whose calls do nothing, so stages never depend on W&B.
Runs land in ``wandb/`` beside ``results/``; push them later with ``wandb sync wandb/wandb/offline-run-*``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from rome.config import params_hash

logger = logging.getLogger(__name__)


_CURRENT_RUN_ID: str | None = None


def current_run_id() -> str | None:
    """The active W&B run id (recorded in every artifact's provenance), None when not tracking."""
    return _CURRENT_RUN_ID


class Tracker:
    """No-op base: the interface stages call whether or not W&B is active."""

    run_id: str | None = None
    active = False

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None: ...

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int | None = None) -> None: ...

    def log_images(self, key: str, paths: list[Path], step: int | None = None) -> None: ...

    def log_artifact(self, path: Path, name: str, kind: str) -> None: ...

    def summary(self, values: dict[str, Any]) -> None: ...

    def finish(self) -> None: ...

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


class WandbTracker(Tracker):
    active = True

    def __init__(self, run: Any, wandb: Any) -> None:
        global _CURRENT_RUN_ID
        self._run, self._wandb = run, wandb
        self.run_id = _CURRENT_RUN_ID = run.id

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self._run.log(metrics, step=step)

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int | None = None) -> None:
        self._run.log({key: self._wandb.Table(columns=columns, data=rows)}, step=step)

    def log_images(self, key: str, paths: list[Path], step: int | None = None) -> None:
        self._run.log({key: [self._wandb.Image(str(p), caption=Path(p).stem) for p in paths]}, step=step)

    def log_artifact(self, path: Path, name: str, kind: str) -> None:
        art = self._wandb.Artifact(name, type=kind)
        (art.add_dir if Path(path).is_dir() else art.add_file)(str(path))
        self._run.log_artifact(art)

    def summary(self, values: dict[str, Any]) -> None:
        self._run.summary.update(values)

    def finish(self) -> None:
        global _CURRENT_RUN_ID
        if self._run is not None:
            self._run.finish()
            self._run = None
            _CURRENT_RUN_ID = None


def resolve_mode(params: dict[str, Any]) -> str:
    return os.environ.get("WANDB_MODE") or params["tracking"]["mode"]


def experiment_group(params: dict[str, Any]) -> str:
    t, s = params["tracking"], params["search"]
    return t["group"] or f"{params['data']['dataset']}-{s['space']}-{s['algorithm']}"


def start(params: dict[str, Any], stage: str, sections: list[str], provenance: dict[str, Any] | None = None) -> Tracker:
    """Open a run: config = the stage's resolved params + code commit + data manifest hash."""
    mode = resolve_mode(params)
    if mode == "disabled":
        return Tracker()
    try:
        import wandb
    except ImportError:
        logger.warning("tracking: wandb is not installed; continuing without tracking")
        return Tracker()
    read = {k: params[k] for k in ["preset", "seed", *sections] if k in params}
    config = {**read, "params_hash": params_hash(read)}
    if provenance:
        config["code_commit"] = provenance.get("code", {}).get("commit")
        config["data_manifest_sha256"] = provenance.get("data_manifest_sha256")
    # beside (not inside) results/, so DVC folders never see W&B files change
    wandb_dir = Path(os.environ.get("WANDB_DIR") or Path(params["results_dir"]).resolve().parent / "wandb")
    wandb_dir.mkdir(parents=True, exist_ok=True)
    t = params["tracking"]
    run = wandb.init(project=t["project"], entity=t["entity"], group=experiment_group(params), job_type=stage,
                     name=f"{stage}-{params['data']['dataset']}-seed{params['seed']}", config=config, mode=mode,
                     dir=str(wandb_dir), settings=wandb.Settings(silent=True, console="off"), reinit="create_new")
    return WandbTracker(run, wandb)
