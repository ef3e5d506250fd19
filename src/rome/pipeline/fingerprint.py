"""What Snakemake must compare to know a job is stale: the resolved params a stage reads and the
content hash of its code. The rules put both into ``params:``, so Snakemake's ``params`` rerun
trigger fires exactly when DVC would call the stage changed (presets included: these are the
*resolved* values, whatever layer set them). An output Snakemake did not make (``dvc repro``) has
no Snakemake metadata to compare: ``write_stamp`` gives each job a stamp input whose mtime outdates
an output whose own recorded provenance differs."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
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


def recorded_matches(folder: Path, params: dict[str, Any], stage: str) -> bool:
    """Whether the artifact in ``folder`` records the params and code the current ones would give:
    its document's provenance holds the same values for every key the stage tracks, and the same
    code hash. Whoever made it (Snakemake, DVC, a shell) does not matter; no document: no match."""
    from rome.outputs import LAYOUTS, stage_document

    doc = stage_document(Path(folder), LAYOUTS[stage])
    if doc is None:
        return False
    prov = doc["provenance"]
    recorded = prov.get("params") if isinstance(prov.get("params"), dict) else {}
    tracked = tracked_params(params, stage)
    same_params = params_hash({k: recorded.get(k) for k in tracked}) == params_hash(tracked)
    code = prov.get("code") if isinstance(prov.get("code"), dict) else {}
    return same_params and str(code.get("hash", ""))[:16] == code_digest(stage)


def write_stamp(path: Path, params: dict[str, Any], stage: str, folder: Path) -> Path:
    """A rule's provenance stamp, an input of the rule: what makes Snakemake rerun a job whose output
    another engine (DVC) or an earlier run made with other params or code.

    Its content (the params and code digests) is rewritten only when it changes; its mtime says
    whether the existing output is current: far in the past when the output's recorded provenance
    matches (the stamp never outdates it), now when it differs or cannot be read (Snakemake's mtime
    rule then reruns the job, with or without its own metadata for the output).
    """
    path = Path(path)
    text = json.dumps({"stage": stage, "params": params_digest(params, stage), "code": code_digest(stage)},
                      sort_keys=True) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if Path(folder).exists() and not recorded_matches(folder, params, stage):
        newest = max((p.stat().st_mtime for p in [Path(folder), *Path(folder).rglob("*")]), default=0.0)
        stamp_time = max(time.time(), newest + 1)
    else:
        stamp_time = 0.0
    os.utime(path, (stamp_time, stamp_time))
    return path
