"""``rome prepare``: raw source -> fixed stratified splits -> data.safetensors + manifest.json."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from rome.artifacts import atomic_dir, provenance, sha256_file, write_json, write_run_record
from rome.data.prepared import DATA_FILE, MANIFEST_FILE, MANIFEST_SCHEMA_VERSION
from rome.data.resize import resize_uint8
from rome.data.sources import RawDataset, load_source
from rome.sections import DataConfig
from rome.data.splits import SPLITS, make_splits

logger = logging.getLogger(__name__)

SECTIONS = ["data"]


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean/std in [0, 1] units, computed on the retraining split."""
    x = images.double().div(255.0)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return [round(v, 6) for v in mean.tolist()], [round(v, 6) for v in std.tolist()]


def _hash_inputs(raw: RawDataset, limit: int = 64) -> dict[str, str]:
    """sha256 of the raw input files, keyed by their path below the inputs' common folder (not the
    absolute path, which differs between machines and would change the manifest's bytes)."""
    files = [Path(f) for f in raw.input_files[:limit]]
    if not files:
        return {}
    root = Path(os.path.commonpath([str(f.parent) for f in files]))
    return {f.relative_to(root).as_posix(): sha256_file(f) for f in files}


def build_manifest(raw: RawDataset, tensors: dict[str, torch.Tensor], params: dict[str, Any],
                   index_map: dict[str, tuple[str, np.ndarray]]) -> dict[str, Any]:
    counts = {}
    for split in SPLITS:
        labels = tensors[f"{split}/labels"]
        per_class = torch.bincount(labels, minlength=len(raw.classes)).tolist()
        counts[split] = {"total": int(len(labels)), "per_class": dict(zip(raw.classes, per_class))}
    images = tensors["train/images"]
    mean, std = channel_stats(images)
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "dataset": raw.name,
        "source": {"description": raw.description, "inputs_sha256": _hash_inputs(raw),
                   "n_input_files": len(raw.input_files), "has_test_split": raw.test_images is not None},
        "classes": raw.classes,
        "shape": {"channels": int(images.shape[1]), "height": int(images.shape[2]), "width": int(images.shape[3])},
        "counts": counts,
        "split_sources": {s: src for s, (src, _) in index_map.items()},
        "normalization": {"mean": mean, "std": std, "computed_on": "train"},
    }


def run(params: dict[str, Any], out: Path, args: argparse.Namespace | None = None) -> Path:
    data = DataConfig.from_params(params)
    t0 = time.perf_counter()
    raw = load_source(data)
    index_map = make_splits(raw.train_labels, raw.test_labels, data.test_fraction, data.subset, data.split_seed)
    tensors: dict[str, torch.Tensor] = {}
    for split, (source, idx) in index_map.items():
        images = raw.train_images if source == "train" else raw.test_images
        labels = raw.train_labels if source == "train" else raw.test_labels
        tensors[f"{split}/images"] = resize_uint8(images[idx], data.resize)
        tensors[f"{split}/labels"] = torch.from_numpy(labels[idx].astype(np.int64)).contiguous()
    manifest = build_manifest(raw, tensors, params, index_map)
    with atomic_dir(out) as tmp:
        save_file(tensors, str(tmp / DATA_FILE), metadata={"schema_version": str(MANIFEST_SCHEMA_VERSION)})
        manifest["outputs_sha256"] = {DATA_FILE: sha256_file(tmp / DATA_FILE)}
        manifest["provenance"] = provenance(params, SECTIONS, "prepare")
        write_json(tmp / MANIFEST_FILE, manifest)
    seconds = time.perf_counter() - t0
    write_run_record(params, "prepare", out, seconds=round(seconds, 3))
    sizes = ", ".join(f"{s}={manifest['counts'][s]['total']}" for s in SPLITS)
    logger.info(f"prepare: {raw.name} {manifest['shape']} {sizes} in {seconds:.1f}s")
    return out
