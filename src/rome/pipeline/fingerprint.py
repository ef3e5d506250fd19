"""What Snakemake must compare to know a job is stale: the resolved params a stage reads and the
content hash of its code. The rules put both into ``params:``, so Snakemake's ``params`` rerun
trigger fires exactly when DVC would call the stage changed (presets included: these are the
*resolved* values, whatever layer set them)."""

from __future__ import annotations

import copy
from typing import Any

from rome.config import params_hash
from rome.pipeline.codedeps import code_identity
from rome.pipeline.spec import STAGES


def run_params(params: dict[str, Any], dataset: str, space: str | None = None, algorithm: str | None = None,
               seed: int | None = None) -> dict[str, Any]:
    """The resolved params of one job of the sweep (what its ``--set`` flags pin)."""
    out = copy.deepcopy(params)
    out["data"]["dataset"] = dataset
    if space is not None:
        out["search"]["space"] = space
    if algorithm is not None:
        out["search"]["algorithm"] = algorithm
    if seed is not None:
        out["seed"] = int(seed)
    return out


def tracked_params(params: dict[str, Any], stage: str) -> dict[str, Any]:
    """The values a stage's DVC ``params`` name: its top-level keys and sections, resolved."""
    spec = STAGES[stage]
    return {k: params[k] for k in (*spec.top_level, *spec.sections)}


def params_digest(params: dict[str, Any], stage: str) -> str:
    return params_hash(tracked_params(params, stage))[:16]


def code_digest(stage: str) -> str:
    return str(code_identity(stage)["hash"])[:16]
