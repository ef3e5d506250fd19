"""The search artifact: the files ``rome search`` writes and ``rome derive`` reads, and how to read them.

One folder, written atomically: ``arch.safetensors`` (``alpha_<cell>`` [edges x ops], ``beta_<cell>``
[edges], or [input subsets] for ROME-v1), ``search.json`` (the contract with derive: schema_version,
space, algorithm, variant, ``ops`` per cell type and edge, ``edges`` as [src, dst] state indices,
``in_degree``, optional ``pairs`` for ROME-v1, tau_final, final metrics, provenance),
``history.json`` / ``history.csv`` (one row per epoch), ``probabilities.csv`` (long format for DVC
plots), ``metrics.json`` and ``checkpoint.pt`` (the finished run's last checkpoint). The stages talk
through these names and this reader only, the way ``rome.data.prepared`` serves the prepared data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file
from safetensors.torch import save as save_safetensors

from rome.artifacts import check_schema_version, read_json, write_bytes, write_json, write_text
from rome.csv_text import csv_text
from rome.errors import RomeError
from rome.spaces import space_names

SEARCH_SCHEMA_VERSION = 1
ARCH_FILE = "arch.safetensors"
SEARCH_FILE = "search.json"
HISTORY_JSON, HISTORY_CSV = "history.json", "history.csv"
PROBABILITIES_CSV = "probabilities.csv"
METRICS_FILE = "metrics.json"
CURVES_PNG, ALPHA_PNG = "curves.png", "alpha.png"  # pictures for a reader (rome.curves), DVC image plots
CHECKPOINT_FILE = "checkpoint.pt"  # the finished run's checkpoint, moved out of the resumable folder
HISTORY_COLUMNS = ("epoch", "tau", "lr", "train_loss", "train_acc", "arch_loss", "val_loss", "val_acc",
                   "n_param_free_normal")
# measured, not computed: they differ between two runs of the same inputs, so they go to the run
# record (state/<run>/search.run.json) and W&B, never into the artifact
VOLATILE = ("peak_memory_mb", "seconds", "hessian_seconds")
PROBABILITY_COLUMNS = ("epoch", "series", "cell_type", "param", "edge", "op", "p")


def history_columns(cell_types: Sequence[str]) -> tuple[str, ...]:
    """history.csv's columns: the loop's scalars, then the collapse indicators (rome.search.indicators)."""
    from rome.search.indicators import indicator_columns

    return (*HISTORY_COLUMNS, *indicator_columns(cell_types))


def write_search_artifact(folder: Path, doc: dict[str, Any], tensors: dict[str, torch.Tensor],
                          history: Sequence[dict[str, Any]], probability_rows: Sequence[dict[str, Any]],
                          metrics: dict[str, Any]) -> None:
    """Every file but the checkpoint copy into ``folder`` (the caller's atomic temporary folder)."""
    write_bytes(folder / ARCH_FILE, save_safetensors(tensors, metadata={"schema_version": str(SEARCH_SCHEMA_VERSION)}))
    write_json(folder / SEARCH_FILE, {"schema_version": SEARCH_SCHEMA_VERSION, **doc})
    write_json(folder / HISTORY_JSON, {"schema_version": SEARCH_SCHEMA_VERSION, "epochs": list(history)})
    write_text(folder / HISTORY_CSV, csv_text(history, history_columns(doc["cell_types"])))
    write_text(folder / PROBABILITIES_CSV, csv_text(probability_rows, PROBABILITY_COLUMNS))
    write_json(folder / METRICS_FILE, metrics)


def read_search(search_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """search.json (schema-checked) and the architecture tensors as float64 arrays."""
    meta_file, arch_file = search_dir / SEARCH_FILE, search_dir / ARCH_FILE
    meta = read_json(meta_file, "search summary")
    check_schema_version(meta, SEARCH_SCHEMA_VERSION, meta_file, "search summary")
    if meta.get("space") not in space_names():
        raise RomeError(f"{meta_file}: space = {meta.get('space')!r}: expected one of {list(space_names())}")
    if not arch_file.is_file():
        raise RomeError(f"{arch_file}: architecture parameters not found (run `rome search` first)")
    try:
        tensors = {k: v.astype(np.float64) for k, v in load_file(str(arch_file)).items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise RomeError(f"{arch_file}: cannot read architecture parameters ({exc})") from None
    return meta, tensors
