"""Which existing folder a stage may replace with its artifact, and which it must refuse.

``--out`` is the user's to choose, so the folder it names may hold anything: a stage replaces it
only when it is empty or holds this stage's own artifact (its document, with a schema version and a
provenance block naming the stage) and nothing the stage does not write. Anything else (a thesis,
params.yaml, another stage's artifact), and always the working folder, its ancestors, the home
folder, ``/`` and the repository root, is refused in one line before any work starts, and checked
again at the swap (``rome.artifacts.atomic_dir``): a rome stage never deletes what it did not write.
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rome.errors import RomeError

# Snakemake touches this file inside every directory() output it made; DVC adds nothing.
ENGINE_FILES = (".snakemake_timestamp",)
SHOWN = 3  # foreign names named in the refusal
MAX_DOCUMENT_BYTES = 64 << 20  # a stage document is kilobytes; a huge file of that name is not one


@dataclass(frozen=True)
class Layout:
    """What a stage writes in its folder: ``document`` (JSON naming the stage in ``provenance.stage``,
    None for a folder without one) and every relative path it may write (fnmatch patterns).

    ``shared``: the stage writes its files into a folder it shares with others (``aggregate`` into
    reports/), so other names are left alone and only its own names must belong to its artifact."""

    stage: str
    document: str | None
    patterns: tuple[str, ...]
    shared: bool = False


def _declared(stage: str, *extra: str) -> tuple[str, ...]:
    """The stage's declared outputs (the stage table that dvc.yaml and Snakemake use) plus what lives
    inside them or beside them undeclared: one list, so a new output is never taken for a foreign file."""
    from rome.pipeline.spec import STAGES

    return tuple(dict.fromkeys([*(o.path for o in STAGES[stage].outputs), *extra]))


LAYOUTS: dict[str, Layout] = {layout.stage: layout for layout in (
    Layout("prepare", "manifest.json", _declared("prepare", "index.csv")),
    Layout("search", "search.json", _declared("search")),
    Layout("derive", "genotype.json", _declared("derive", "cells/*.png")),
    Layout("train", "model.json", _declared("train")),
    Layout("evaluate", "evaluate.json", _declared("evaluate")),
    Layout("aggregate", "aggregate.json", _declared("aggregate", "plots", "plots/*.csv"), shared=True),
    Layout("aggregate plots", None, ("search_history.csv", "train_summary.csv")),
)}


def stage_document(folder: Path, layout: Layout) -> dict[str, Any] | None:
    """The stage's document in ``folder`` if it is one (JSON object, integer schema_version, provenance
    naming the stage), else None. Never raises: a file of that name that is no such document is foreign."""
    if layout.document is None:
        return None
    path = folder / layout.document
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_DOCUMENT_BYTES:
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("schema_version"), int):
        return None
    prov = doc.get("provenance")
    return doc if isinstance(prov, dict) and prov.get("stage") == layout.stage.split()[0] else None


def _relative_names(folder: Path) -> list[str]:
    names = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        names += [(rel / n).as_posix() for n in sorted(dirs) + sorted(files)]
    return names


def _owned(name: str, layout: Layout) -> bool:
    return name in ENGINE_FILES or any(fnmatch.fnmatchcase(name, p) for p in layout.patterns)


def protected_reason(folder: Path) -> str | None:
    """Why ``folder`` may never be replaced whatever it holds (None: it may, if its content allows)."""
    target = folder.resolve()
    cwd = Path.cwd().resolve()
    if target == Path(target.anchor):
        return "it is the file system root"
    if target == cwd:
        return "it is the working folder"
    for start in (cwd, Path(__file__).resolve().parent):
        repo = next((p for p in (start, *start.parents) if (p / ".git").exists()), None)
        if repo is not None and target == repo:
            return "it is a repository root"
    if target in cwd.parents:
        return "it is an ancestor of the working folder"
    if target == Path.home().resolve():
        return "it is the home folder"
    return None


def check_replaceable(folder: str | Path, layout: Layout | None) -> None:
    """Refuse, in one line, to replace ``folder`` unless it is missing, empty or this stage's artifact.

    ``layout`` None: a folder rome keeps under state/ (the stream cache), no user ever names it, so
    only the kind and place are checked."""
    folder = Path(folder)
    what = layout.stage if layout is not None else "rome"
    if folder.is_symlink():
        raise RomeError(f"{folder}: is a symbolic link (to {os.readlink(folder)}); rome {what} writes a folder "
                        f"of its own there and replaces nothing it did not write; give --out a real folder")
    if not folder.exists():
        return
    if not folder.is_dir():
        raise RomeError(f"{folder}: is an existing file, not a folder; rome {what} never replaces a file it did "
                        f"not write; give --out a new or empty folder")
    reason = protected_reason(folder)
    if reason is not None:
        raise RomeError(f"{folder}: {reason}; rome {what} replaces its output folder whole, so it never writes "
                        f"there; give --out a new or empty folder")
    if layout is None:
        return
    names = _relative_names(folder)
    if not names:
        return
    if layout.shared:
        # files only: an engine creates the (empty) folders of its declared outputs before the job runs
        names = [n for n in names if _owned(n, layout) and not (folder / n).is_dir()]
        if not names:
            return
        foreign: list[str] = [] if stage_document(folder, layout) is not None else names
    else:
        foreign = [n for n in names if not _owned(n, layout)]
        if not foreign and layout.document is not None and stage_document(folder, layout) is None:
            foreign = names  # this stage's file names, but no document of it: not provably ours
    if foreign:
        shown = ", ".join(foreign[:SHOWN]) + (f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else "")
        held = f"{layout.document} of rome {layout.stage}" if layout.document else f"only rome {layout.stage} files"
        raise RomeError(f"{folder}: holds {shown}, which rome {layout.stage} did not write (a folder is replaced only "
                        f"when empty or holding {held}); nothing touched; give --out a new or empty folder")
