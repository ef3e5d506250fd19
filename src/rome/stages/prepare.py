"""``rome prepare``: raw source -> fixed stratified splits -> data.safetensors + manifest.json, or, for a
streamed imagefolder (``data.storage``), index.csv + manifest.json (rome.data.stream)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from rome.artifacts import atomic_dir, provenance, sha256_file, write_json, write_run_record, write_text
from rome.data.prepared import DATA_FILE, INDEX_FILE, MANIFEST_FILE, MANIFEST_SCHEMA_VERSION, STREAM_SCHEMA_VERSION
from rome.data.resize import resize_uint8
from rome.data.sources import RawDataset, load_source
from rome.errors import RomeError
from rome.outputs import LAYOUTS
from rome.paths import stream_cache_dir
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


def split_counts(classes: list[str], labels: dict[str, np.ndarray]) -> dict[str, Any]:
    counts = {}
    for split in SPLITS:
        per_class = np.bincount(labels[split], minlength=len(classes)).tolist()
        counts[split] = {"total": int(len(labels[split])), "per_class": dict(zip(classes, per_class))}
    return counts


def stream_stats(scan: Any, folder: Path, train_idx: np.ndarray, resolution: int,
                 seed: int, max_pixels: int) -> tuple[list[float], list[float], int]:
    """Mean/std of the train split from a class-stratified sample of at most ``STATS_SAMPLE`` images,
    read from ``folder`` (the source folder, or an archive's extraction) and decoded one at a time at
    the prepared resolution (float64 sums: memory does not grow with the set)."""
    from rome.data.sources import decode_image
    from rome.data.splits import stratified_subset
    from rome.data.stream import STATS_SAMPLE

    pick = train_idx[stratified_subset(scan.labels["train"][train_idx], STATS_SAMPLE, np.random.default_rng(seed))]
    c = scan.channels
    total, squares, n = np.zeros(c), np.zeros(c), 0
    for i in pick:
        file = folder / scan.paths["train"][i]
        arr, _ = decode_image(file.read_bytes(), str(file), max_pixels)
        arr = np.repeat(arr, 3, axis=0) if c == 3 and arr.shape[0] == 1 else arr
        x = resize_uint8(arr[None], resolution)[0].double().div(255.0).reshape(c, -1).numpy()
        total += x.sum(1)
        squares += (x * x).sum(1)
        n += x.shape[1]
    mean = total / n
    std = np.sqrt(np.maximum((squares - n * mean * mean) / max(n - 1, 1), 0)).clip(1e-6)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std], len(pick)


def resolve_storage(data: DataConfig, scan: Any | None) -> str:
    """``data.storage`` -> memory / stream; auto streams an imagefolder above AUTO_STREAM_BYTES decoded."""
    from rome.data.stream import AUTO_STREAM_BYTES

    if data.storage != "auto":
        return data.storage
    if scan is None:
        return "memory"
    pixels = data.resize ** 2 if data.resize else max(h * w for h, w in scan.sizes)  # the largest, if mixed
    n = sum(len(v) for v in scan.labels.values())
    return "stream" if n * scan.channels * pixels > AUTO_STREAM_BYTES else "memory"


def run_stream(params: dict[str, Any], data: DataConfig, out: Path, scan: Any | None, t0: float) -> Path:
    """The index artifact: the in-memory path's splits of the same files, recorded by path and sha256."""
    from rome.data.stream import COMPLETE, index_text, scan_imagefolder

    if not data.root:
        raise RomeError("data.root = null: the imagefolder dataset needs a directory or .tar.gz archive")
    root = Path(data.root)
    kind = "archive" if root.is_file() else "folder"
    cache_root = stream_cache_dir(params)
    if kind == "archive":  # the one pass over the archive also fills the workers' extraction cache
        with atomic_dir(cache_root / ".scan") as tmp:
            scan = scan_imagefolder(root, cache=tmp, max_pixels=data.max_pixels)
    elif scan is None:
        scan = scan_imagefolder(root, max_pixels=data.max_pixels)
    resolution = scan.resolution(data.resize, root)
    test = scan.labels.get("test")
    index_map = make_splits(scan.labels["train"], test, data.test_fraction, data.subset, data.split_seed)
    labels = {split: scan.labels[src][idx] for split, (src, idx) in index_map.items()}
    folder = cache_root / ".scan" if kind == "archive" else root
    mean, std, n_stats = stream_stats(scan, folder, index_map["train"][1], resolution, data.split_seed,
                                        data.max_pixels)
    manifest = {
        "schema_version": STREAM_SCHEMA_VERSION,
        "storage": "stream",
        "dataset": data.dataset,
        "source": {"description": f"imagefolder {data.root} (streamed)", "root": data.root, "kind": kind,
                   "n_images": int(sum(len(v) for v in scan.labels.values())), "has_test_split": test is not None},
        "classes": scan.classes,
        "shape": {"channels": scan.channels, "height": resolution, "width": resolution},
        "counts": split_counts(scan.classes, labels),
        "split_sources": {s: src for s, (src, _) in index_map.items()},
        "normalization": {"mean": mean, "std": std, "computed_on": f"train (class-stratified sample of {n_stats})"},
    }
    with atomic_dir(out, LAYOUTS["prepare"]) as tmp:
        write_text(tmp / INDEX_FILE, index_text(scan, index_map))
        manifest["outputs_sha256"] = {INDEX_FILE: sha256_file(tmp / INDEX_FILE)}
        manifest["provenance"] = provenance(params, SECTIONS, "prepare")
        write_json(tmp / MANIFEST_FILE, manifest)
    if kind == "archive":
        key = manifest["outputs_sha256"][INDEX_FILE]
        (cache_root / ".scan" / COMPLETE).write_text(key + "\n")
        shutil.rmtree(cache_root / key[:16], ignore_errors=True)
        os.replace(cache_root / ".scan", cache_root / key[:16])
    seconds = time.perf_counter() - t0
    write_run_record(params, "prepare", out, seconds=round(seconds, 3), storage="stream")
    sizes = ", ".join(f"{s}={manifest['counts'][s]['total']}" for s in SPLITS)
    logger.info(f"prepare: {data.dataset} streamed index of {root} {manifest['shape']} {sizes} in {seconds:.1f}s")
    return out


def run(params: dict[str, Any], out: Path, args: argparse.Namespace | None = None) -> Path:
    data = DataConfig.from_params(params)
    t0 = time.perf_counter()
    if data.storage == "stream" and data.dataset != "imagefolder":
        raise RomeError(f"data.storage = 'stream': data.dataset = {data.dataset!r} is read whole by its loader; "
                        "expected imagefolder (or data.storage: memory / auto)")
    scan = None
    if data.storage == "auto" and data.dataset == "imagefolder" and data.root:
        from rome.data.stream import scan_imagefolder

        # headers and hashes only: what auto decides by. An archive is not extracted on this pass although
        # a streamed one then needs a second: extraction would make every archive kept in memory write and
        # delete all its members again, which the in-memory path never needs (README, "Large datasets")
        scan = scan_imagefolder(Path(data.root), max_pixels=data.max_pixels)
    if resolve_storage(data, scan) == "stream":
        return run_stream(params, data, out, scan, t0)
    raw = load_source(data)
    index_map = make_splits(raw.train_labels, raw.test_labels, data.test_fraction, data.subset, data.split_seed)
    tensors: dict[str, torch.Tensor] = {}
    for split, (source, idx) in index_map.items():
        images = raw.train_images if source == "train" else raw.test_images
        labels = raw.train_labels if source == "train" else raw.test_labels
        tensors[f"{split}/images"] = resize_uint8(images[idx], data.resize)
        tensors[f"{split}/labels"] = torch.from_numpy(labels[idx].astype(np.int64)).contiguous()
    manifest = build_manifest(raw, tensors, params, index_map)
    with atomic_dir(out, LAYOUTS["prepare"]) as tmp:
        save_file(tensors, str(tmp / DATA_FILE), metadata={"schema_version": str(MANIFEST_SCHEMA_VERSION)})
        manifest["outputs_sha256"] = {DATA_FILE: sha256_file(tmp / DATA_FILE)}
        manifest["provenance"] = provenance(params, SECTIONS, "prepare")
        write_json(tmp / MANIFEST_FILE, manifest)
    seconds = time.perf_counter() - t0
    write_run_record(params, "prepare", out, seconds=round(seconds, 3))
    sizes = ", ".join(f"{s}={manifest['counts'][s]['total']}" for s in SPLITS)
    logger.info(f"prepare: {raw.name} {manifest['shape']} {sizes} in {seconds:.1f}s")
    return out
