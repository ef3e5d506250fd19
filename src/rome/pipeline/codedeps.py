"""Each stage's code dependencies, derived from what it imports (never maintained by hand).

A stage runs ``rome.cli`` and ``rome.stages.<stage>``; its code is the closure of the ``rome``
modules those import, statically: every ``import`` / ``from ... import`` anywhere in a module
(function-level imports included: they may run), each package's ``__init__`` on the way, plus the
package data files the code reads (the params schema, through ``rome.config``). The closure can
only over-approximate what runs; ``tests/test_codedeps.py`` checks it against the modules a real
run loads, and that dvc.yaml / the Snakemake rules list exactly this.
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import cache
from pathlib import Path

PACKAGE = "rome"
SRC = Path(__file__).resolve().parents[2]  # .../src
ENTRY = "rome.cli"
# non-Python files read by a module's code, keyed by the module that reads them
DATA_FILES = {"rome.config": ("rome/schema/params.schema.yaml",),
              "rome.tables.definition": ("rome/schema/table.schema.yaml",)}
# packages a module loads through importlib.resources (their __init__ runs), keyed likewise
RESOURCE_PACKAGES = {"rome.config": ("rome.schema", "rome.presets")}


def module_file(name: str) -> Path | None:
    """The source file of a ``rome`` module or package, None if ``name`` is not one."""
    base = SRC.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(name: str, tree: ast.AST, is_package: bool) -> set[str]:
    """Names of ``rome`` modules a module's source imports (packages and submodules)."""
    found: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] == PACKAGE and module_file(m) is not None}


def _with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


@cache
def module_closure(root: str) -> frozenset[str]:
    """Every ``rome`` module importing ``root`` can execute (parent packages included)."""
    seen: set[str] = set()
    todo = sorted(_with_parents(root))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        file = module_file(name)
        if file is None:
            continue
        tree = ast.parse(file.read_text(), filename=str(file))
        for dep in (*_imported(name, tree, file.name == "__init__.py"), *RESOURCE_PACKAGES.get(name, ())):
            todo += sorted(_with_parents(dep) - seen)
    return frozenset(m for m in seen if module_file(m) is not None)


def stage_modules(stage: str) -> frozenset[str]:
    """Modules ``rome <stage>`` can run: the CLI's closure and the stage module's."""
    return module_closure(ENTRY) | module_closure(f"{PACKAGE}.stages.{stage}")


def stage_code_files(stage: str) -> list[str]:
    """Repository-relative source and package-data files of a stage, sorted (``src/rome/...``)."""
    files = set()
    for name in stage_modules(stage):
        file = module_file(name)
        assert file is not None
        files.add(file.relative_to(SRC.parent).as_posix())
        files |= {f"src/{data}" for data in DATA_FILES.get(name, ())}
    return sorted(files)


def code_identity(stage: str) -> dict[str, object]:
    """The code a stage runs, by content: sha256 of each file of its closure, and of the lot.

    Content, not the commit: a commit that leaves a stage's files alone must leave its output
    byte-identical (and DVC/Snakemake must not rerun it); ``rome audit`` compares file by file.
    """
    root = SRC.parent
    files = {path: hashlib.sha256((root / path).read_bytes()).hexdigest() for path in stage_code_files(stage)}
    blob = json.dumps(files, sort_keys=True, separators=(",", ":")).encode()
    return {"files": files, "hash": hashlib.sha256(blob).hexdigest()}
