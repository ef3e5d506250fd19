"""Atomic artifact writes and the provenance block every artifact carries.

A killed run never leaves a half-written output: files go to a temporary sibling first and are
renamed into place; whole artifact folders are built in a temporary folder and swapped in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rome import __version__
from rome.config import params_hash
from rome.errors import RomeError, disk_full_error, is_disk_full, is_unwritable, unwritable_error
from rome.outputs import Layout, check_replaceable
from rome.paths import run_record_path
from rome.pipeline.codedeps import code_identity


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write bytes atomically (temp file + fsync + rename); on any failure the temp file is removed
    (a full disk must not be made fuller), and a full disk is a one-line error naming the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full_error(path) from None
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomic, human-readable JSON (sorted keys keep diffs and hashes stable)."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


# limits on JSON rome reads (artifacts, genotypes; possibly from elsewhere): real ones are a few levels
# deep and well under a megabyte (a long search's run record); these are far above and far below harm
MAX_JSON_BYTES = 64 * 2**20
MAX_JSON_DEPTH = 64


def json_depth(doc: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return deepest


def parse_json_file(p: Path, what: str) -> Any:
    """The file's JSON, refused in one line when too large, too deeply nested, not UTF-8 or corrupt."""
    size = p.stat().st_size
    if size > MAX_JSON_BYTES:
        raise RomeError(f"{p}: {size} bytes; expected a {what} of at most {MAX_JSON_BYTES} bytes")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RomeError(f"{p}: corrupt JSON ({exc.msg} at line {exc.lineno}); expected a {what}") from None
    except UnicodeDecodeError:
        raise RomeError(f"{p}: not UTF-8 text; expected a {what} (JSON)") from None
    except RecursionError:
        raise RomeError(f"{p}: JSON nested deeper than {MAX_JSON_DEPTH} levels; expected a {what}") from None
    if json_depth(doc) > MAX_JSON_DEPTH:
        raise RomeError(f"{p}: JSON nested deeper than {MAX_JSON_DEPTH} levels; expected a {what}")
    return doc


def read_json(path: str | Path, what: str = "artifact") -> dict[str, Any]:
    """Read a JSON artifact with a one-line error on a missing or corrupt file, or valid JSON whose
    top level is not an object (every rome artifact is one; a list would fail later, deep inside)."""
    p = Path(path)
    if not p.is_file():
        raise RomeError(f"{p}: {what} not found (run the upstream stage first)")
    doc = parse_json_file(p, what)
    if not isinstance(doc, dict):
        raise RomeError(f"{p}: top level is a JSON {_json_kind(doc)}; expected a JSON object (a {what})")
    return doc


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "null")


def check_schema_version(doc: dict[str, Any], supported: int, path: str | Path, what: str) -> None:
    """Refuse artifacts from a newer schema than this code understands."""
    version = doc.get("schema_version")
    if not isinstance(version, int):
        raise RomeError(f"{path}: schema_version = {version!r}: expected an integer (is this a {what}?)")
    if version > supported:
        raise RomeError(f"{path}: schema_version = {version}: expected <= {supported}; written by a newer rome, upgrade")


@contextlib.contextmanager
def atomic_dir(final: str | Path, layout: Layout | None = None) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``final`` in one rename.

    ``final`` is replaced only if ``rome.outputs.check_replaceable`` allows it under ``layout`` (the
    stage's artifact layout; None for a folder rome keeps under state/), checked again at the swap. On
    any failure the temporary folder is removed and the old ``final`` left in place; a full disk, a
    read-only, immutable or busy place is one line naming ``final`` (``rome.errors``).
    """
    final = Path(final)
    check_replaceable(final, layout)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists():  # this very PID's, from a killed run whose PID was recycled to us
            shutil.rmtree(tmp)
        tmp.mkdir()
    except OSError as exc:
        raise _write_error(final, exc) from None
    try:
        yield tmp
        check_replaceable(final, layout)  # a long run: the folder may have changed meanwhile
        _swap(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if _is_write_error(exc):
            raise _write_error(final, exc) from None
        raise

def _is_write_error(exc: BaseException) -> bool:
    return is_disk_full(exc) or is_unwritable(exc)


def _write_error(final: Path, exc: BaseException) -> BaseException:
    if is_disk_full(exc):  # e.g. safetensors' save_file, which raises its own type
        return disk_full_error(final)
    if is_unwritable(exc):
        return unwritable_error(final, exc)
    return exc


def _swap(tmp: Path, final: Path) -> None:
    """``tmp`` -> ``final``; the previous ``final`` (checked to be this stage's) goes to ``.old-<PID>``
    and is deleted only once the new one is in place; if the second rename fails it is put back."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    moved = False
    if final.exists():
        os.replace(final, old)
        moved = True
    try:
        os.replace(tmp, final)
    except BaseException:
        if moved:
            os.replace(old, final)
        raise
    if moved:
        shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def git_state(cwd: str | Path | None = None) -> dict[str, Any]:
    """Code commit and whether the tree was dirty; ``None`` values outside a git checkout."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", "src", "pyproject.toml") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def provenance(params: dict[str, Any], sections: list[str], stage: str, data_sha256: str | None = None) -> dict[str, Any]:
    """The audit block: the params (only the sections the stage read), the code and the data that produced it.

    Deterministic by design (no time, host, commit or W&B id: those go to the run record, see
    ``write_run_record``), so rerunning a stage on the same inputs writes byte-identical files.
    """
    read = {k: params[k] for k in ["preset", "seed", "device", "deterministic", *sections] if k in params}
    return {
        "stage": stage,
        "params": read,
        "params_hash": params_hash(read),
        "code": {"rome_version": __version__, **code_identity(stage)},
        "data_sha256": data_sha256,
    }


RUN_RECORD_SCHEMA_VERSION = 1

# What a Slurm job was given, as the job's environment says: enough to tell from the run record
# alone which job, partition and GPUs (GRES indices) a stage ran on, with no accounting database.
SLURM_JOB_ENV = ("SLURM_JOB_ID", "SLURM_JOB_PARTITION", "SLURM_JOB_NODELIST", "SLURM_CPUS_PER_TASK",
                 "SLURM_GPUS_ON_NODE", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES")


def slurm_job() -> dict[str, str | None] | None:
    """The Slurm allocation this process runs in (None outside a Slurm job), for the run record."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    return {key: os.environ.get(key) for key in SLURM_JOB_ENV}


def write_run_record(params: dict[str, Any], stage: str, artifact: Path, wandb_run_id: str | None = None,
                     **facts: Any) -> Path:
    """The volatile facts of a stage's run, kept in state/ (never inside the artifact), one per output
    folder (``rome.paths.run_record_path``).

    When, where (host, and the Slurm job and GPUs when run by Slurm), by which commit, under which
    DVC stage and W&B run, and how long: what a reader wants to know but must not change the artifact's bytes. ``rome audit`` shows it.
    """
    from rome.reproducibility import environment  # torch: only stages that write a record need it

    record = {
        "schema_version": RUN_RECORD_SCHEMA_VERSION,
        "stage": stage,
        "artifact": str(artifact),
        "wandb_run_id": wandb_run_id,
        "created_unix": round(time.time(), 3),
        "host": socket.gethostname(),
        "git": git_state(),
        "dvc_stage": os.environ.get("DVC_STAGE"),
        "environment": environment(),
        "slurm": slurm_job(),
        **facts,
    }
    return write_json(run_record_path(params, stage, artifact), record)
