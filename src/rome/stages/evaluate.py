"""``rome evaluate``: test top-1/top-5, params (M), multiply-adds (M), latency, NAS-Bench-201 lookup.

Reads the train stage's ``model.json`` + ``model.safetensors`` and the prepared ``test`` split.
Writes ``metrics.json`` (flat numbers for DVC: top1, top5, params_m, flops_m and, for
an NB201 cell with evaluate.benchmark_table set, nb201_<dataset>_valid / _test / nb201_index) and
``evaluate.json`` (the same plus how each number was measured, and provenance). Latency is
measured, not computed, so it lives in the run record (``state/<run>/evaluate.run.json``) and W&B.

"FLOPs (M)" are multiply-adds of one image (torch FlopCounterMode's count / 2), the convention of
NAS papers. Latency: median ms of ``evaluate.latency_batches`` forwards of one batch of
``evaluate.batch_size`` test images on the current device, after 2 warm-up forwards.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from rome import tracking
from rome.artifacts import atomic_dir, provenance, sha256_file, write_json, write_run_record
from rome.data.normalize import channel_stats, normalize
from rome.data.prepared import load_prepared
from rome.errors import RomeError
from rome.outputs import LAYOUTS
from rome.paths import input_dir, stream_cache_dir
from rome.reproducibility import resolve_device, seed_everything, set_deterministic
from rome.sections import EvaluateConfig
from rome.training import network
from rome.training.checkpoint import load_weights
from rome.training.flops import multiply_adds_m, params_m
from rome.training.latency import batch_latency_ms
from rome.training.loop import StepSettings, validate_batches
from rome.training.model_artifact import MODEL_FILE, MODEL_JSON, read_model_doc
from rome.training.nb201_table import lookup

logger = logging.getLogger(__name__)

SECTIONS = ["evaluate"]
EVALUATE_SCHEMA_VERSION = 1
LATENCY_WARMUP = 2


def check_data_fits(doc: dict[str, Any], data: Any, file: Path) -> None:
    """The test split must be the kind of data the network was trained on."""
    have = {"num_classes": data.num_classes, "in_chans": data.in_channels, "resolution": data.resolution}
    for key, value in have.items():
        if doc[key] != value:
            raise RomeError(f"{file}: {key} = {doc[key]} but the prepared data ({data.path}) has {value}; "
                            f"expected the dataset the model was trained on (rerun `rome train`)")


def keep_first(batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
               kept: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches unchanged, with the first one's images kept for the latency measurement, so a
    streamed test split is decoded once, not once for accuracy and again for latency."""
    for images, labels in batches:
        if not kept:
            kept.append(images)
        yield images, labels


def run(params: dict[str, Any], out: Path, args: argparse.Namespace | None = None) -> Path:
    t0 = time.perf_counter()
    e = EvaluateConfig.from_params(params)
    device = resolve_device(params["device"])
    set_deterministic(params["deterministic"])
    seed_everything(params["seed"])
    train_dir = input_dir(params, "train")
    doc = read_model_doc(train_dir)
    model = network.build(doc["network"], doc["kwargs"])
    load_weights(model, train_dir / MODEL_FILE)
    model = model.to(device).eval()
    data = load_prepared(input_dir(params, "prepare"), stream_cache_dir(params))
    check_data_fits(doc, data, train_dir / MODEL_JSON)
    trained_on = (doc.get("provenance") or {}).get("data_sha256")
    if trained_on and trained_on != data.data_sha256:
        logger.warning(f"evaluate: warning: {data.path} holds other data than the model was trained on (sha256 differs)")

    n_test = len(data.labels("test"))
    settings = StepSettings(device=device)
    first: list[torch.Tensor] = []
    acc = validate_batches(model, keep_first(data.uint8_batches("test", e.batch_size, e.workers), first),
                           doc["mean"], doc["std"], doc["num_classes"], settings, desc="evaluate",
                           total=-(-n_test // e.batch_size))
    if not first:
        raise RomeError(f"{data.path}: the test split is empty; expected test images to evaluate on")
    batch = normalize(first[0].to(device), *channel_stats(doc["mean"], doc["std"], device))
    metrics: dict[str, Any] = {
        "top1": acc["top1"],
        "top5": acc["top5"],
        "params_m": params_m(model),
        "flops_m": multiply_adds_m(model, doc["in_chans"], doc["resolution"]),
    }
    # measured, not computed: latency differs between two runs on the same inputs, so it goes to the
    # run record (state/<run>/evaluate.run.json) and W&B, never into the artifact DVC hashes
    latency_ms = batch_latency_ms(model, batch, e.latency_batches, warmup=LATENCY_WARMUP)
    benchmark: dict[str, Any] | None = None
    if e.benchmark_table:
        arch = doc.get("nb201_arch")
        if arch:
            found = lookup(e.benchmark_table, arch, e.benchmark_dataset)
            # the row index is a pointer into the table, not a figure to compare: evaluate.json keeps it
            metrics.update({k: v for k, v in found.items() if k != "nb201_index"})
            benchmark = {"table": e.benchmark_table, "table_sha256": sha256_file(e.benchmark_table),
                         "dataset": e.benchmark_dataset, "arch": arch, **found}
        else:
            logger.warning(f"evaluate: {doc['network']} is not a NAS-Bench-201 cell; evaluate.benchmark_table ignored")

    report = {
        "schema_version": EVALUATE_SCHEMA_VERSION,
        "metrics": metrics,
        "test_loss": acc["loss"],
        "test_images": n_test,
        "topk": [1, min(5, doc["num_classes"])],
        "model": {"network": doc["network"], "weights": doc.get("weights"),
                  "genotype_file": doc.get("genotype_file"), "nb201_arch": doc.get("nb201_arch"),
                  "model_sha256": sha256_file(train_dir / MODEL_FILE),
                  "train_params_hash": (doc.get("provenance") or {}).get("params_hash")},
        "flops": {"unit": "million multiply-adds per image (torch FlopCounterMode flops / 2)",
                  "input": [1, doc["in_chans"], doc["resolution"], doc["resolution"]]},
        "benchmark": benchmark,
    }
    latency = {"latency_ms": latency_ms, "unit": "ms per batch, median", "batch_size": int(batch.shape[0]),
               "repeats": e.latency_batches, "warmup": LATENCY_WARMUP, "device": str(device)}
    prov = provenance(params, SECTIONS, "evaluate", data.data_sha256)
    with tracking.start(params, "evaluate", SECTIONS, prov) as tracker:
        tracker.use_artifact(train_dir / MODEL_FILE, tracking.artifact_name(params, "model"), "model")
        report["provenance"] = prov
        with atomic_dir(out, LAYOUTS["evaluate"]) as tmp:
            write_json(tmp / "metrics.json", metrics)
            write_json(tmp / "evaluate.json", report)
        tracker.summary({**metrics, "latency_ms": latency_ms})
        write_run_record(params, "evaluate", out, tracker.run_id, seconds=round(time.perf_counter() - t0, 3), latency=latency)
    extra = "".join(f" {k} {v:.2f}" for k, v in metrics.items() if k.startswith("nb201_"))
    logger.info(f"evaluate: top1 {metrics['top1']:.2f} top5 {metrics['top5']:.2f} params {metrics['params_m']:.3f}M "
                f"flops {metrics['flops_m']:.2f}M latency {latency_ms:.1f}ms{extra} "
                f"in {time.perf_counter() - t0:.1f}s")
    return out
