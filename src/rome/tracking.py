"""Weights & Biases, offline-safe: one small wrapper every stage uses.

Mode precedence (``resolve_mode``): ``tracking.mode`` when ``tracking.force_mode: true``; else
``WANDB_MODE`` when set; else ``tracking.mode`` (shipped: offline, so nothing waits for a server and
no login is asked). ``disabled`` — or wandb missing from the environment — gives a tracker whose
calls do nothing, so stages never depend on W&B. An online init that does not succeed within
``INIT_TIMEOUT_S`` (no network, bad key) falls back to offline with a one-line warning.
Runs land in ``wandb/`` beside ``results/``; push them later with ``wandb sync wandb/wandb/offline-run-*``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from rome.config import params_hash

logger = logging.getLogger(__name__)


# metrics whose W&B summary is their best epoch rather than their last
SUMMARY_MAX = {"search": ("val_acc",), "train": ("test/top1", "test/top5")}



class Tracker:
    """No-op base: the interface stages call whether or not W&B is active."""

    run_id: str | None = None
    active = False

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None: ...

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int | None = None) -> None: ...

    def log_images(self, key: str, paths: list[Path], step: int | None = None) -> None: ...

    def log_artifact(self, path: Path, name: str, kind: str) -> None: ...

    def use_artifact(self, path: Path, name: str, kind: str) -> None: ...

    def summary(self, values: dict[str, Any]) -> None: ...

    def finish(self) -> None: ...

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


class WandbTracker(Tracker):
    active = True

    def __init__(self, run: Any, wandb: Any) -> None:
        self._run, self._wandb = run, wandb
        self.run_id = run.id

    # ``step`` is W&B's own counter; rome logs ``epoch`` as the step metric instead (define_metric
    # in ``start``), so a resumed run that redoes an epoch never trips W&B's monotonic-step rule.
    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self._run.log({**metrics, **({"epoch": step} if step is not None else {})})

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int | None = None) -> None:
        self.log({key: self._wandb.Table(columns=columns, data=rows)}, step=step)

    def log_images(self, key: str, paths: list[Path], step: int | None = None) -> None:
        self.log({key: [self._wandb.Image(str(p), caption=Path(p).stem) for p in paths]}, step=step)

    def _artifact(self, path: Path, name: str, kind: str) -> Any:
        art = self._wandb.Artifact(name, type=kind)
        (art.add_dir if Path(path).is_dir() else art.add_file)(str(path))
        return art

    def log_artifact(self, path: Path, name: str, kind: str) -> None:
        self._run.log_artifact(self._artifact(path, name, kind))

    def use_artifact(self, path: Path, name: str, kind: str) -> None:
        """Declare an input artifact, so W&B's lineage graph links data -> search -> genotype -> model.

        W&B refuses ``use_artifact`` in offline mode; there the input's name and content digest
        go into the run's config (``inputs``) instead, so the link is still recorded.
        """
        art = self._artifact(path, name, kind)
        if self._run.offline:
            self._run.config.update({"inputs": {**self._run.config.get("inputs", {}), kind: f"{name}:{art.digest}"}},
                                   allow_val_change=True)
            return
        self._run.use_artifact(art)

    def summary(self, values: dict[str, Any]) -> None:
        self._run.summary.update(values)

    def finish(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None


def resolve_mode(params: dict[str, Any]) -> str:
    """``tracking.force_mode: true`` lets the params win over ``WANDB_MODE`` (e.g. ``disabled`` for a
    run that must not track whatever the shell exports); otherwise the environment wins."""
    t = params["tracking"]
    if t.get("force_mode"):
        return t["mode"]
    return os.environ.get("WANDB_MODE") or t["mode"]


INIT_TIMEOUT_S = 8.0  # an online init either answers within seconds or is not going to (no network)


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def init_bounded(wandb: Any, mode: str, **kwargs: Any) -> Any | None:
    """``wandb.init`` that never holds a stage up: online gets ``INIT_TIMEOUT_S`` (wandb's default
    is 90 s, then a traceback), then the run continues offline, its data kept for ``wandb sync``;
    if even offline fails, the stage runs untracked. Returns the run, or None for no tracking."""
    try:
        timeout = float(os.environ.get("WANDB_INIT_TIMEOUT") or INIT_TIMEOUT_S)
    except ValueError:
        timeout = INIT_TIMEOUT_S
    os.environ.setdefault("WANDB_SILENT", "true")  # Settings(silent=True) comes too late for the login line
    settings = wandb.Settings(silent=True, console="off", init_timeout=timeout)
    try:
        return wandb.init(mode=mode, settings=settings, **kwargs)
    except Exception as exc:  # noqa: BLE001 - CommError, UsageError, timeouts: tracking must not stop a stage
        if mode == "offline":
            logger.warning(f"tracking: warning: W&B offline init failed ({_one_line(exc)}); continuing without tracking")
            return None
        failure = exc
    try:
        wandb.teardown()  # the failed attempt still holds its run id in wandb's service ("run ID in use")
        run = wandb.init(mode="offline", settings=settings, **kwargs)
    except Exception as exc:  # noqa: BLE001
        logger.warning(f"tracking: warning: W&B {mode} init failed ({_one_line(failure)}) and offline too "
              f"({_one_line(exc)}); continuing without tracking")
        return None
    logger.warning(f"tracking: warning: W&B {mode} init failed within {timeout:g} s ({_one_line(failure)}); continuing "
          f"offline, upload later with `wandb sync {getattr(run.settings, 'sync_dir', None) or kwargs.get('dir')}`")
    return run


def experiment_group(params: dict[str, Any]) -> str:
    t, s = params["tracking"], params["search"]
    return t["group"] or f"{params['data']['dataset']}-{s['space']}-{s['algorithm']}"


def artifact_name(params: dict[str, Any], kind: str) -> str:
    """W&B artifact names: one per run of the sweep (data: one per dataset)."""
    if kind == "dataset":
        return f"data-{params['data']['dataset']}"
    return f"{kind}-{experiment_group(params)}-seed{params['seed']}"


def new_run_id() -> str:
    """A W&B-style run id (8 lowercase letters and digits), kept with a checkpoint to resume the run."""
    import secrets
    import string

    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def start(params: dict[str, Any], stage: str, sections: list[str], provenance: dict[str, Any] | None = None,
          run_id: str | None = None) -> Tracker:
    """Open a run: config = the stage's resolved params + code and data hashes.

    ``run_id`` (kept in the stage's checkpoint folder) makes a resumed search or retraining continue
    the same W&B run (``resume="allow"``) instead of starting another. ``epoch`` is the step metric.
    """
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
        config["code_hash"] = (provenance.get("code") or {}).get("hash")
        config["data_sha256"] = provenance.get("data_sha256")
    # beside (not inside) results/, so DVC folders never see W&B files change
    wandb_dir = Path(os.environ.get("WANDB_DIR") or Path(params["results_dir"]).resolve().parent / "wandb")
    wandb_dir.mkdir(parents=True, exist_ok=True)
    t = params["tracking"]
    run = init_bounded(wandb, mode, project=t["project"], entity=t["entity"], group=experiment_group(params),
                       job_type=stage, name=f"{stage}-{params['data']['dataset']}-seed{params['seed']}",
                       config=config, dir=str(wandb_dir), reinit="create_new",
                       id=run_id, resume="allow" if run_id else None)
    if run is None:
        return Tracker()
    run.define_metric("epoch")
    run.define_metric("*", step_metric="epoch")
    for key in SUMMARY_MAX.get(stage, ()):
        run.define_metric(key, step_metric="epoch", summary="max")
    return WandbTracker(run, wandb)


RUN_ID_FILE = "wandb_run_id"


def tracking_run_id(checkpoint_dir: Path) -> str:
    """The W&B run id of a resumable stage, kept beside its checkpoint: a killed run that resumes
    from that checkpoint continues the same W&B run; a fresh run (no checkpoint folder) gets a new id."""
    file = Path(checkpoint_dir) / RUN_ID_FILE
    if file.is_file():
        text = file.read_text().strip()
        if text.isalnum():
            return text
    run_id = new_run_id()
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(run_id + "\n")
    return run_id
