"""The train stage's model artifact: file names, schema versions and the reader ``rome evaluate`` uses.

``model.safetensors`` (the deployable weights, no auxiliary head), ``model.json`` (how to rebuild the
network: timm name and kwargs, input shape, normalisation, classes, genotype and provenance),
``metrics.json`` and ``summary.csv`` (timm's per-epoch summary).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rome.artifacts import check_schema_version, read_json
from rome.errors import RomeError

MODEL_SCHEMA_VERSION = 1
METRICS_SCHEMA_VERSION = 1
MODEL_FILE, MODEL_JSON = "model.safetensors", "model.json"
SUMMARY_FILE, METRICS_FILE = "summary.csv", "metrics.json"
MODEL_FIELDS = ("network", "kwargs", "num_classes", "in_chans", "resolution", "mean", "std")


def read_model_doc(train_dir: Path) -> dict[str, Any]:
    """model.json of a train folder, schema-checked, with every field evaluate needs (else one line)."""
    file = train_dir / MODEL_JSON
    doc = read_json(file, "model description")
    check_schema_version(doc, MODEL_SCHEMA_VERSION, file, "model description")
    missing = [f for f in MODEL_FIELDS if f not in doc]
    if missing:
        raise RomeError(f"{file}: missing field(s) {missing}; expected a model.json written by `rome train`")
    return doc
