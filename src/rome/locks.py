"""One writer per output folder: a second ``rome <stage>`` on the same folder refuses, or waits.

Two runs writing one folder race (one deletes the other's checkpoint temp file, a finishing run
empties the checkpoint folder the other resumes from), so ``rome.cli`` holds, around each stage, a
lock per folder the stage writes: its artifact folder and, for search and train, its checkpoint
folder. The lock is filelock's ``MarkerSoftFileLock``: a marker file ``.<folder>.lock`` beside the
folder, created exclusively and recording the holder's PID, host and process start. A marker whose
process is gone (on this host) is taken over; one held by a live process, or by a process on
another host (which this host cannot prove dead), refuses in one line naming PID and host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from filelock import MarkerSoftFileLock, Timeout

from rome.errors import RomeError, is_unwritable, unwritable_error
from rome.paths import RESUMABLE, checkpoint_dir

logger = logging.getLogger(__name__)


def lock_path(folder: Path) -> Path:
    """Beside the folder, not inside: artifact folders are replaced whole by one rename."""
    return folder.parent / f".{folder.name}.lock"


def stage_folders(params: dict[str, Any], stage: str, out: Path) -> list[Path]:
    """The folders ``stage`` writes: its artifact folder, plus its checkpoint folder if it has one."""
    folders = [Path(out)]
    if stage in RESUMABLE:
        folders.append(checkpoint_dir(params, stage))
    return folders


def describe_holder(lock: MarkerSoftFileLock, settle_s: float = 2.0) -> str:
    """Name the holder; polls briefly because a holder creates the marker before it writes its record."""
    deadline = time.monotonic() + settle_s
    owner = lock.owner
    while owner is None and time.monotonic() < deadline:
        time.sleep(0.05)
        owner = lock.owner
    if owner is None:
        return "a process that left no readable record"
    return f"PID {owner.pid} on host {owner.hostname}"


def _dead_holder(owner: Any) -> int | None:
    """The PID of the marker read just before our acquire succeeded over it: a dead process of this host
    (filelock takes over no other), the proof ``rome.litter`` needs that its leftovers are rome's."""
    if owner is None or owner.pid == os.getpid():
        return None
    return int(owner.pid)


@contextlib.contextmanager
def _hold_one(folder: Path, wait: bool, dead: dict[Path, set[int]]) -> Iterator[None]:
    path = lock_path(folder)
    lock = MarkerSoftFileLock(str(path))
    previous = lock.owner
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)  # takes over the marker of a dead holder on this host
    except Timeout:
        holder = describe_holder(lock)
        if not wait:
            raise RomeError(f"{folder}: in use by another rome run ({holder}; lock {path}); let it finish, "
                            f"rerun with --wait, or delete the lock if that process is gone") from None
        logger.info(f"rome: {folder} is in use by {holder}; waiting for it (--wait)")
        previous = None  # a live holder that finished: it cleaned up after itself
        lock.acquire(poll_interval=1.0)
    except OSError as exc:  # after Timeout, which is an OSError too
        if is_unwritable(exc):  # the lock is the first write: a read-only/immutable place fails here
            raise unwritable_error(folder, exc) from None
        raise
    if (pid := _dead_holder(previous)) is not None:
        dead.setdefault(folder, set()).add(pid)
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def hold(folders: Iterable[Path], wait: bool = False) -> Iterator[dict[Path, set[int]]]:
    """Hold the lock of every folder, taken in sorted order so two runs never deadlock; yields, per
    (absolute) folder, the PIDs of dead holders whose markers were taken over (``rome.litter``)."""
    dead: dict[Path, set[int]] = {}
    with contextlib.ExitStack() as stack:
        for folder in sorted({Path(f).absolute() for f in folders}):
            stack.enter_context(_hold_one(folder, wait, dead))
        yield dead
