"""Where each stage reads and writes, derived from the resolved params alone.

The next stage finds its input without being told, and dvc.yaml / the Snakemake rules spell
the same paths (a test checks the three agree). The engines also pass those paths explicitly
(``--input STAGE=DIR``, ``--out DIR``); ``input_dir`` honours them.

Two roots: ``results/`` holds only stage outputs (what DVC caches and hashes); ``state/`` beside it
holds what must survive a run but is no output: the checkpoints of an interrupted search or
retraining, and each stage's run record (timestamps, host, W&B id, timings). Keeping them out of
the outputs keeps every output a pure function of params, code and data, and DVC's run-cache on.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

STAGES = ("prepare", "search", "derive", "train", "evaluate")
RESUMABLE = ("search", "train")
_INPUTS: ContextVar[Mapping[str, Path]] = ContextVar("rome_inputs", default={})


def data_dir(params: dict[str, Any]) -> Path:
    """Prepared data depends on the dataset and data.* only (splits use data.split_seed)."""
    return Path(params["results_dir"]) / params["data"]["dataset"] / "prepare"


def run_key(params: dict[str, Any]) -> Path:
    """<dataset>/<space>/<algorithm>/seed<seed>: one search/retrain run."""
    s = params["search"]
    return Path(params["data"]["dataset"]) / s["space"] / s["algorithm"] / f"seed{params['seed']}"


def run_dir(params: dict[str, Any]) -> Path:
    """One search/retrain run: results/<dataset>/<space>/<algorithm>/seed<seed>."""
    return Path(params["results_dir"]) / run_key(params)


def stage_dir(params: dict[str, Any], stage: str) -> Path:
    """The artifact folder of a stage."""
    if stage == "prepare":
        return data_dir(params)
    if stage == "aggregate":
        # beside results/, not inside: the aggregate depends on the whole results tree
        return Path(params["results_dir"]).parent / "reports"
    if stage in STAGES:
        return run_dir(params) / stage
    raise ValueError(f"unknown stage {stage!r}")


def state_root(params: dict[str, Any]) -> Path:
    """``state/`` beside ``results/``: checkpoints and run records, never a stage output."""
    return Path(params["results_dir"]).parent / "state"


def stream_cache_dir(params: dict[str, Any]) -> Path:
    """state/stream_cache: a streamed archive's images, extracted once per index (rome.data.stream)."""
    return state_root(params) / "stream_cache"


def checkpoint_dir(params: dict[str, Any], stage: str) -> Path:
    """Where a killed search/train resumes from: state/<run>/<stage>_ckpt (not an output)."""
    if stage not in RESUMABLE:
        raise ValueError(f"stage {stage!r} has no checkpoint; expected one of {RESUMABLE}")
    return state_root(params) / run_key(params) / f"{stage}_ckpt"


def run_record_path(params: dict[str, Any], stage: str, out: str | Path | None = None) -> Path:
    """The run record of the last run that wrote ``out`` (default: the stage's derived folder).

    state/<run>/<stage>.run.json for the derived folder (prepare: state/<dataset>/..., aggregate:
    state/aggregate.run.json); any other ``--out`` folder gets its own, keyed by the sha256 of its
    resolved path (``<stage>.out-<12 hex>.run.json`` beside it), so two runs with the same params and
    different ``--out`` never overwrite each other's record.
    """
    if stage == "prepare":
        base = state_root(params) / params["data"]["dataset"] / "prepare.run.json"
    elif stage == "aggregate":
        base = state_root(params) / "aggregate.run.json"
    else:
        base = state_root(params) / run_key(params) / f"{stage}.run.json"
    if out is None or Path(out).resolve() == stage_dir(params, stage).resolve():
        return base
    key = hashlib.sha256(str(Path(out).resolve()).encode()).hexdigest()[:12]
    return base.with_name(f"{stage}.out-{key}.run.json")


@contextlib.contextmanager
def using_inputs(inputs: Mapping[str, Path]) -> Iterator[None]:
    """Within the block, ``input_dir`` returns these folders (the CLI's ``--input STAGE=DIR``)."""
    token = _INPUTS.set(dict(inputs))
    try:
        yield
    finally:
        _INPUTS.reset(token)


def input_dir(params: dict[str, Any], stage: str) -> Path:
    """The folder a stage reads ``stage``'s artifact from: the one passed with --input, else the derived one."""
    return Path(_INPUTS.get().get(stage) or stage_dir(params, stage))
