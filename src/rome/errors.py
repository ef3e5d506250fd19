"""The one exception type users see: the CLI prints its message as a single line and exits 2.

A full disk is bad input of a kind too (the place to write): ``is_disk_full`` recognises it
whatever type a library raised it as, ``disk_full_error`` says so in one line naming the path; a
read-only, immutable or busy place likewise (``is_unwritable`` / ``unwritable_error``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class RomeError(Exception):
    """Bad input (params, data, genotype, checkpoint): message names the file/key, value and expectation."""


class DiskFullError(RomeError):
    """No space left where rome writes; an artifact folder being built names itself instead of its temp file."""


NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, also when a library (safetensors, torch) wrapped it in its own exception type."""
    if isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS):
        return True
    text = str(exc)
    return "No space left on device" in text or "os error 28" in text or "Disk quota exceeded" in text


def disk_full_error(path: str | Path) -> DiskFullError:
    return DiskFullError(f"{path}: no space left on device; free space there or write elsewhere "
                     f"(--out DIR, or results_dir)")


# A place rome cannot write: read-only mount, immutable file (chattr +i), no permission, a mount point.
UNWRITABLE_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM, errno.EBUSY)


def is_unwritable(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in UNWRITABLE_ERRNOS


def unwritable_error(path: str | Path, exc: BaseException) -> RomeError:
    """One line naming the folder and what the system said (``os.strerror``), e.g. Read-only file system."""
    code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EIO
    where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename and str(exc.filename) != str(path) else ""
    return RomeError(f"{path}: cannot write there: {os.strerror(code)} [{errno.errorcode.get(code, code)}]{where}; "
                     f"nothing was replaced; make it writable or write elsewhere (--out DIR, or results_dir)")
