"""Published cells by name: the genotype files shipped in ``rome/genotype/published/``.

They are data (JSON genotype documents, each citing its paper and the code file it was read from),
not Python literals, so an installed rome can retrain ``darts_v2`` or ``pc_darts`` by name
(``train.genotype: pc_darts``, ``timm.create_model("rome_darts_cifar", genotype="gdas")``) and a
new cell is added by dropping a file here. A name wins over a path of the same spelling; anything
that is not a published name is read as a path.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from rome.errors import RomeError

PUBLISHED_PACKAGE = "rome.genotype"
PUBLISHED_DIR = "published"


def published_dir() -> Path:
    """The folder of the shipped genotype files (a dvc.yaml / Snakemake dependency of train)."""
    return Path(str(resources.files(PUBLISHED_PACKAGE).joinpath(PUBLISHED_DIR)))


def published_names() -> list[str]:
    """Names usable wherever a genotype is expected, e.g. ``darts_v2``."""
    return sorted(p.stem for p in published_dir().glob("*.json"))


def published_path(name: str) -> Path | None:
    """The file behind a published name, or None when ``name`` is not one."""
    path = published_dir() / f"{name}.json"
    return path if name in published_names() else None


def resolve_genotype_ref(ref: str | Path) -> Path:
    """A published name -> its shipped file; anything else is a path, returned as given."""
    named = published_path(str(ref)) if isinstance(ref, str) else None
    return named if named is not None else Path(ref)


def published_source(name: str) -> dict[str, Any]:
    """The ``source`` block of a published cell (paper, code file, published result)."""
    path = published_path(name)
    if path is None:
        raise RomeError(f"genotype = {name!r}: not a published cell; expected one of {published_names()}")
    doc = json.loads(path.read_text())
    return dict(doc.get("source") or {}) | {"space": doc.get("space"), "genotype_text": doc.get("genotype_text")}
