"""Loading weights with one-line errors, and resuming a killed retrain from timm's CheckpointSaver files.

Resume is exact at epoch granularity: CheckpointSaver keeps model, optimizer and EMA state of the
last finished epoch, and the loop reseeds every RNG from (seed, epoch) at each epoch start, so no
RNG state needs to travel in the checkpoint (which timm's weights-only loader could not read).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from timm.models import load_checkpoint, resume_checkpoint
from timm.utils import CheckpointSaver
from timm.utils.checkpoint_saver import load_checkpoint_metadata

from rome.artifacts import read_json, write_bytes, write_json
from rome.config import params_hash
from rome.errors import RomeError
from rome.nested_diff import leaf_differences

LAST_FILE = "last.pth.tar"
IDENTITY_FILE = "run.json"
IDENTITY_SCHEMA_VERSION = 1


def first_mismatch(expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor]) -> str | None:
    """Describe the first key/shape that differs between a network's state dict and a loaded one."""
    for key, value in expected.items():
        if key not in got:
            return f"key {key!r} {tuple(value.shape)} missing from the file"
        if tuple(got[key].shape) != tuple(value.shape):
            return f"key {key!r} has shape {tuple(got[key].shape)}, the network expects {tuple(value.shape)}"
    for key, value in got.items():
        if key not in expected:
            return f"key {key!r} {tuple(value.shape)} is not in the network"
    return None


def check_matches(model: torch.nn.Module, state: Mapping[str, torch.Tensor], file: Path, what: str) -> None:
    problem = first_mismatch(model.state_dict(), state)
    if problem is not None:
        raise RomeError(f"{file}: {what} does not match the network: {problem}")


def load_weights(model: torch.nn.Module, file: str | Path) -> None:
    """Load a model.safetensors, refusing (one line) a file written for another network."""
    file = Path(file)
    if not file.is_file():
        raise RomeError(f"{file}: model weights not found (run `rome train` first)")
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise RomeError(f"{file}: cannot read safetensors weights ({exc})") from None
    check_matches(model, state, file, "model.safetensors")
    model.load_state_dict(state)


class Saver(CheckpointSaver):
    """timm's CheckpointSaver, but each file is serialised in memory and written with
    ``rome.artifacts.write_bytes``: a full disk gives one line naming the file and leaves no
    partial temp file behind (torch.save straight to disk reports only "unexpected pos")."""

    def _save(self, save_path: str, epoch: int, metric: float | None = None) -> None:
        buf = io.BytesIO()
        super()._save(buf, epoch, metric)  # timm hands save_path to torch.save, which takes a buffer too
        write_bytes(save_path, buf.getvalue())


def _read_resume_file(file: Path) -> dict[str, Any]:
    """timm's reader, which loads with ``torch.load(weights_only=True)``: a resume file is untrusted
    data (tensors, containers, numbers), never unpickled; anything else is refused in one line."""
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol notes: the refusal below says it all
            warnings.simplefilter("ignore")
            ckpt = load_checkpoint_metadata(str(file))
    except Exception as exc:  # torch raises several types for truncated / foreign files
        raise RomeError(f"{file}: cannot read the resume checkpoint ({type(exc).__name__}); "
                        f"delete the folder or run `rome train --fresh`") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "epoch" not in ckpt:
        raise RomeError(f"{file}: not a CheckpointSaver checkpoint (no state_dict/epoch); "
                        f"delete it or run `rome train --fresh`")
    return ckpt


def resume(ckpt_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
           ema: torch.nn.Module | None, saver: CheckpointSaver) -> int:
    """Restore the last finished epoch; return the epoch to start at (0 when there is nothing to resume)."""
    file = ckpt_dir / LAST_FILE
    if not file.is_file():
        return 0
    ckpt = _read_resume_file(file)
    check_matches(model, ckpt["state_dict"], file, "resume checkpoint state_dict")
    if ema is not None:
        if "state_dict_ema" not in ckpt:
            raise RomeError(f"{file}: no state_dict_ema but train.ema is on; run `rome train --fresh`")
        check_matches(ema.module, ckpt["state_dict_ema"], file, "resume checkpoint state_dict_ema")
    start = resume_checkpoint(model, str(file), optimizer=optimizer, log_info=False)
    if ema is not None:
        load_checkpoint(ema.module, str(file), use_ema=True)
    if "saver" in ckpt:
        saver.load_state_dict(ckpt["saver"])
    return int(start if start is not None else ckpt["epoch"] + 1)


def identity(values: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint must share with the current run to be resumed (everything but train.epochs)."""
    return {"schema_version": IDENTITY_SCHEMA_VERSION, "hash": params_hash(values), "values": values}


def _first_difference(old: Any, new: Any) -> str:
    key, was, now = (leaf_differences(old, new) or [("", old, new)])[0]
    return f"{key} = {was!r} in the checkpoint, {now!r} now"


COMPLETE_FILE = "complete.json"


def mark_complete(ckpt_dir: Path, epochs: int) -> None:
    """Written once the run's artifact exists: such a checkpoint may be extended (more epochs) but
    is never needed again for anything else, so params that no longer match discard it."""
    write_json(ckpt_dir / COMPLETE_FILE, {"epochs": epochs})


def check_identity(ckpt_dir: Path, current: dict[str, Any]) -> bool:
    """Refuse to resume a checkpoint folder written with other params, genotype or data.

    Returns True when the folder belongs to a *finished* run with other params: the caller
    discards it (its results are in the train artifact), so a changed retraining param re-runs
    cleanly under DVC. An *interrupted* run with other params is refused, never overwritten.
    """
    file = ckpt_dir / IDENTITY_FILE
    if not (ckpt_dir / LAST_FILE).is_file():
        return False
    if not file.is_file():
        raise RomeError(f"{file}: missing beside {LAST_FILE}, so the checkpoint cannot be matched to these "
                        f"params; run `rome train --fresh` to discard it")
    saved = read_json(file, "train checkpoint identity")
    if saved.get("hash") != current["hash"]:
        if (ckpt_dir / COMPLETE_FILE).is_file():
            return True
        diff = _first_difference(saved.get("values"), current["values"])
        raise RomeError(f"{ckpt_dir / LAST_FILE}: written by a different run ({diff}); "
                        f"run `rome train --fresh` to discard it, or restore the params")
    return False


def write_identity(ckpt_dir: Path, current: dict[str, Any]) -> None:
    write_json(ckpt_dir / IDENTITY_FILE, current)
