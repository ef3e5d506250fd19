"""Where each stage writes, derived from the resolved params alone.

The next stage finds its input without being told, and dvc.yaml / the Snakemake rules spell
the same paths (a test checks the three agree).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STAGES = ("prepare", "search", "derive", "train", "evaluate")
CHECKPOINT_DIRS = {"search": "search_ckpt", "train": "train_ckpt"}


def data_dir(params: dict[str, Any]) -> Path:
    """Prepared data depends on the dataset and data.* only (splits use data.split_seed)."""
    return Path(params["results_dir"]) / params["data"]["dataset"] / "prepare"


def run_dir(params: dict[str, Any]) -> Path:
    """One search/retrain run: results/<dataset>/<space>/<algorithm>/seed<seed>."""
    s = params["search"]
    return Path(params["results_dir"]) / params["data"]["dataset"] / s["space"] / s["algorithm"] / f"seed{params['seed']}"


def stage_dir(params: dict[str, Any], stage: str) -> Path:
    """The artifact folder of a stage."""
    if stage == "prepare":
        return data_dir(params)
    if stage == "aggregate":
        # beside results/, not inside: the aggregate depends on the whole results tree
        return Path(params["results_dir"]).parent / "reports"
    if stage in CHECKPOINT_DIRS:
        return run_dir(params) / stage
    if stage in STAGES:
        return run_dir(params) / stage
    raise ValueError(f"unknown stage {stage!r}")


def checkpoint_dir(params: dict[str, Any], stage: str) -> Path:
    """Persistent (not atomically replaced) folder a killed stage resumes from."""
    return run_dir(params) / CHECKPOINT_DIRS[stage]
