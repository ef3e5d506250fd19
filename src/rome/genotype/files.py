"""Genotype files and documents: genotype.json (schema-versioned), text files, and whatever a network accepts.

This is the derive stage's artifact contract (file names, schema version, writer of the document,
readers); ``rome train`` and ``rome.models`` read genotypes through it.

Every reader fails with one line naming the file, the field, the value and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rome.artifacts import MAX_JSON_BYTES, check_schema_version, parse_json_file
from rome.errors import RomeError
from rome.genotype.named import published_names, resolve_genotype_ref
from rome.genotype.text import is_arch_str
from rome.genotype.types import AnyGenotype, Genotype, NB201Genotype

GENOTYPE_SCHEMA_VERSION = 1
GENOTYPE_FILE = "genotype.json"
GENOTYPE_TEXT_FILE = "genotype.txt"  # the DARTS Genotype(...) text or the NB201 arch string, one line


def genotype_from_dict(d: dict[str, Any], source: str = "genotype") -> AnyGenotype:
    """A bare genotype mapping: DARTS fields, or ``{"nodes": ...}`` for NB201."""
    if isinstance(d, dict) and "nodes" in d:
        return NB201Genotype.from_dict(d, source)
    return Genotype.from_dict(d, source)


def parse_genotype_text(text: str, source: str = "genotype") -> AnyGenotype:
    """DARTS ``Genotype(...)`` text or an NB201 arch string (recognised by its leading ``|``)."""
    if is_arch_str(text):
        return NB201Genotype.from_arch_str(text, source)
    return Genotype.from_text(text, source)


def genotype_to_text(genotype: AnyGenotype) -> str:
    return genotype.to_arch_str() if isinstance(genotype, NB201Genotype) else genotype.to_text()


def genotype_document(genotype: AnyGenotype, space: str | None = None, **extra: Any) -> dict[str, Any]:
    """The genotype.json body: schema version, space, genotype, its text forms and op counts (+ ``extra``)."""
    nb201 = isinstance(genotype, NB201Genotype)
    doc = {
        "schema_version": GENOTYPE_SCHEMA_VERSION,
        "space": space if space is not None else ("nb201" if nb201 else None),
        "format": "nb201" if nb201 else "darts",
        "genotype": genotype.to_dict(),
        "genotype_text": genotype_to_text(genotype),
        "nb201_arch": genotype.to_arch_str() if nb201 else None,
        "n_param_free": genotype.n_param_free(),
    }
    doc.update(extra)
    return doc


def genotype_from_document(doc: Any, source: str = "genotype.json") -> AnyGenotype:
    """Read a genotype.json body (checks its schema version; the structured ``genotype`` field wins)."""
    if not isinstance(doc, dict):
        raise RomeError(f"{source}: expected a JSON object with schema_version and genotype")
    if "schema_version" not in doc:  # a bare genotype mapping
        return genotype_from_dict(doc, source)
    check_schema_version(doc, GENOTYPE_SCHEMA_VERSION, source, "genotype file")
    if isinstance(doc.get("genotype"), dict):
        return genotype_from_dict(doc["genotype"], source)
    if isinstance(doc.get("nb201_arch"), str):
        return NB201Genotype.from_arch_str(doc["nb201_arch"], source)
    raise RomeError(f"{source}: genotype = {doc.get('genotype')!r}: expected a mapping (DARTS fields or NB201 nodes)")


def load_genotype(path: str | Path) -> AnyGenotype:
    """A genotype from genotype.json, or from a text file with ``Genotype(...)`` or an NB201 arch string."""
    p = Path(path)
    if not p.is_file():
        raise RomeError(f"{p}: genotype file not found; expected a genotype.json or a text file with Genotype(...)")
    if p.stat().st_size > MAX_JSON_BYTES:
        raise RomeError(f"{p}: {p.stat().st_size} bytes; expected a genotype file of at most {MAX_JSON_BYTES} bytes")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RomeError(f"{p}: not UTF-8 text; expected a genotype file") from None
    if p.suffix == ".json" or text.lstrip().startswith("{"):
        return genotype_from_document(parse_json_file(p, "genotype file"), str(p))
    return parse_genotype_text(text, str(p))


def as_genotype(obj: Any) -> AnyGenotype:
    """What a network accepts: a genotype object, a genotype(.json) mapping, a published cell's name
    (``darts_v2``, rome.genotype.named), a file path, or genotype text."""
    if isinstance(obj, (Genotype, NB201Genotype)):
        return obj
    if isinstance(obj, dict):
        return genotype_from_document(obj, "genotype")
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # DARTS's own namedtuple
        return Genotype.from_dict(dict(obj._asdict()), "genotype")
    if isinstance(obj, (str, Path)):
        s = str(obj).strip()
        if isinstance(obj, str) and (s.startswith("|") or "Genotype(" in s):
            return parse_genotype_text(s)
        return load_genotype(resolve_genotype_ref(s if isinstance(obj, str) else obj))
    raise RomeError(f"genotype = {obj!r:.80}: expected a Genotype, a mapping, a published cell name "
                    f"({', '.join(published_names())}), a genotype file path or genotype text")
