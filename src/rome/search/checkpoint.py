"""Search checkpoints: atomic save, one-line errors for corrupt files and checkpoints of another config.

The fingerprint is everything that shapes the trajectory (the whole ``search`` section except
``workers`` and ``nproc`` (N processes take one process's steps), the seed, the dataset and its manifest hash): a checkpoint whose fingerprint differs
is refused and left untouched, never silently overwritten or resumed. ``search.stem`` enters resolved
(``auto`` -> the stem the data got) and only when it is not the CIFAR stem, the one every checkpoint made
before the key existed used: those fingerprints, and so their resumes, stay as they were.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch

from rome.artifacts import write_bytes
from rome.errors import RomeError
from rome.sections import SearchConfig

# 2: RNG states as tensors / lists, so weights_only loading reads the file (1 held numpy objects)
CHECKPOINT_SCHEMA_VERSION = 2
CHECKPOINT_FILE = "last.pt"
NOT_FINGERPRINTED = ("workers", "nproc", "stem")
LEGACY_STEM = "cifar"


def fingerprint(config: SearchConfig, seed: int, dataset: str, data_manifest_sha256: str | None,
                stem: str = LEGACY_STEM) -> dict[str, Any]:
    """The config a checkpoint belongs to, as flat ``key -> value`` pairs named like params keys
    (``stem``: the resolved ``search.stem``)."""
    fp: dict[str, Any] = {f"search.{k}": v for k, v in sorted(config.as_dict().items()) if k not in NOT_FINGERPRINTED}
    if stem != LEGACY_STEM:
        fp["search.stem"] = stem
    fp["seed"] = seed
    fp["data.dataset"] = dataset
    fp["dataset manifest sha256"] = data_manifest_sha256
    return fp


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Serialise in memory, then write atomically: a kill leaves the previous checkpoint intact."""
    buf = io.BytesIO()
    torch.save({"schema_version": CHECKPOINT_SCHEMA_VERSION, **state}, buf)
    return write_bytes(path, buf.getvalue())


FRESH_HINT = "rerun with `rome search --fresh` to discard it and start the search again"


def read_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> Any:
    """The file's content through ``torch.load(weights_only=True)``: tensors, containers and numbers
    only. A checkpoint is untrusted input (it may come from elsewhere): it is never unpickled, so a
    file that needs arbitrary objects (a crafted one, or one an older rome wrote) is refused."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the refusal below says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types; each means the same to the user
        why = "Weights only load failed" in str(exc) and "holds objects other than tensors, lists and numbers, never unpickled"
        raise RomeError(f"{path}: corrupt checkpoint ({why or type(exc).__name__}); {FRESH_HINT}") from None


def load_checkpoint(path: Path, expected: dict[str, Any], map_location: torch.device | str = "cpu") -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it exists and matches ``expected``; ``None`` when there is none."""
    if not path.is_file():
        return None
    hint = "delete the checkpoint folder (`rome search --fresh`) or restore the params"
    state = read_checkpoint(path)
    if not isinstance(state, dict) or "fingerprint" not in state:
        raise RomeError(f"{path}: not a rome search checkpoint; {FRESH_HINT}")
    if state.get("schema_version", 0) < CHECKPOINT_SCHEMA_VERSION:
        raise RomeError(f"{path}: schema_version = {state.get('schema_version')}: expected {CHECKPOINT_SCHEMA_VERSION}; "
                        f"written by an older rome, {FRESH_HINT}")
    if state.get("schema_version", 0) > CHECKPOINT_SCHEMA_VERSION:
        raise RomeError(f"{path}: schema_version = {state.get('schema_version')}: expected <= {CHECKPOINT_SCHEMA_VERSION}; written by a newer rome")
    found = state["fingerprint"]
    for key in sorted(set(expected) | set(found)):
        if found.get(key) != expected.get(key):
            raise RomeError(f"{path}: checkpoint was made with {key}={found.get(key)!r}, params say {expected.get(key)!r}; {hint}")
    return state
