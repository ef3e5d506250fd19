"""Temporary files and folders of killed runs, removed at the next run of the same stage, if provably rome's.

Atomic writes (``rome.artifacts``) leave ``.<name>.tmp-<PID>`` (and ``.<name>.old-<PID>`` while a
folder is swapped) when a run is killed mid-write. A name alone proves nothing (a user may keep a
file called ``.search.old-123``), so the proof is the lock record (``rome.locks``): a run holds the
lock of every folder it writes, and the lock's marker records its PID. When the next run takes over
the marker of a dead holder, entries of *that* PID beside and inside *that* folder are its litter
and are removed; anything else, whatever its name, is left alone.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from collections.abc import Collection
from pathlib import Path

import psutil

LITTER = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)$")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _sweep(candidates: list[Path], name: str | None, pids: Collection[int]) -> list[Path]:
    removed = []
    for path in sorted(candidates):
        m = LITTER.match(path.name)
        if not m or (name is not None and m["name"] != name):
            continue
        pid = int(m["pid"])
        if pid in pids and pid != os.getpid() and not psutil.pid_exists(pid):
            _remove(path)
            removed.append(path)
    return removed


def sweep_inside(folder: Path, pids: Collection[int]) -> list[Path]:
    """``.<file>.tmp-<PID>`` inside ``folder`` (a checkpoint folder written file by file), PID in ``pids``."""
    return _sweep(list(folder.iterdir()), None, pids) if folder.is_dir() and not folder.is_symlink() else []


def sweep(folder: Path, pids: Collection[int]) -> list[Path]:
    """Litter of ``folder`` beside it (``.<folder>.tmp-<PID>``, ``.old-<PID>``) and inside it, made by
    the processes ``pids`` (the dead holders of the folder's lock: the proof that rome made them)."""
    folder = Path(folder)
    if not pids:
        return []
    beside = list(folder.parent.glob(f".{glob.escape(folder.name)}.*")) if folder.parent.is_dir() else []
    return _sweep(beside, folder.name, pids) + sweep_inside(folder, pids)
