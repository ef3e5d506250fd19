"""Temporary files and folders of killed runs, removed at the next run of the same stage.

Atomic writes (``rome.artifacts``) leave ``.<name>.tmp-<PID>`` (and ``.<name>.old-<PID>`` while a
folder is swapped) when a run is killed mid-write; nothing else ever removes them. Only entries
whose process is gone are removed (or that carry this process's own PID: a recycled PID, since
this run has written nothing yet), so a live writer's temp file is never touched.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path

import psutil

LITTER = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)$")


def _owner_gone(pid: int) -> bool:
    return pid == os.getpid() or not psutil.pid_exists(pid)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _sweep(candidates: list[Path], name: str | None) -> list[Path]:
    removed = []
    for path in sorted(candidates):
        m = LITTER.match(path.name)
        if m and (name is None or m["name"] == name) and _owner_gone(int(m["pid"])):
            _remove(path)
            removed.append(path)
    return removed


def sweep_inside(folder: Path) -> list[Path]:
    """``.<file>.tmp-<PID>`` inside ``folder`` (a checkpoint folder written file by file)."""
    return _sweep(list(folder.iterdir()), None) if folder.is_dir() else []


def sweep(folder: Path) -> list[Path]:
    """Litter of ``folder`` beside it (``.<folder>.tmp-<PID>``, ``.old-<PID>``) and inside it."""
    folder = Path(folder)
    beside = list(folder.parent.glob(f".{glob.escape(folder.name)}.*")) if folder.parent.is_dir() else []
    return _sweep(beside, folder.name) + sweep_inside(folder)

