"""Genotype text forms as plain structures: DARTS ``Genotype(...)`` text and NB201 arch strings.

Syntax only (string <-> fields / per-node entries); what makes a valid cell is checked by the
genotype types (``rome.genotype.types``). The DARTS text is parsed with ``ast``, never ``eval``.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from rome.errors import RomeError

DARTS_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")

Entry = tuple[str, int]


def format_entry(value: Any) -> str:
    """``('op', 1)`` for an (op, input) pair, ``repr`` for anything else (error messages)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"({value[0]!r}, {value[1]!r})"
    return repr(value)


def format_darts_text(normal: Sequence[Entry], normal_concat: Sequence[int], reduce: Sequence[Entry],
                      reduce_concat: Sequence[int]) -> str:
    """The DARTS ``Genotype(...)`` text, as DARTS's own code prints it (concat as lists)."""
    def cell(entries: Sequence[Entry]) -> str:
        return "[" + ", ".join(f"({o!r}, {i})" for o, i in entries) + "]"

    return (f"Genotype(normal={cell(normal)}, normal_concat={list(normal_concat)}, "
            f"reduce={cell(reduce)}, reduce_concat={list(reduce_concat)})")


def parse_darts_text(text: str, source: str = "genotype") -> dict[str, Any]:
    """The fields of ``Genotype(normal=[...], normal_concat=..., ...)`` (optionally ``NAME = Genotype(...)``).

    Only literals are evaluated (``ast.literal_eval``); ``range(a, b)`` is accepted for the concat
    fields because DARTS's search logs print them that way.
    """
    try:
        tree = ast.parse(text.strip(), mode="exec")
    except SyntaxError as exc:
        raise RomeError(f"{source}: not a DARTS Genotype(...) text nor an NB201 arch string "
                        f"(syntax error at line {exc.lineno})") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.Expr, ast.Assign)):
        raise RomeError(f"{source}: expected exactly one Genotype(...) expression, found {len(tree.body)} statements")
    call = tree.body[0].value
    name = getattr(call, "func", None)
    fname = name.id if isinstance(name, ast.Name) else name.attr if isinstance(name, ast.Attribute) else None
    if not isinstance(call, ast.Call) or fname != "Genotype":
        raise RomeError(f"{source}: expected a Genotype(normal=[...], normal_concat=[...], reduce=[...], "
                        f"reduce_concat=[...]) call")
    if len(call.args) > len(DARTS_FIELDS):
        raise RomeError(f"{source}: Genotype(...) has {len(call.args)} positional fields; expected {list(DARTS_FIELDS)}")
    fields: dict[str, Any] = {}
    for key, node in [*zip(DARTS_FIELDS, call.args), *((k.arg, k.value) for k in call.keywords)]:
        if key not in DARTS_FIELDS:
            raise RomeError(f"{source}: Genotype({key}=...): unknown field; expected {list(DARTS_FIELDS)}")
        fields[key] = _literal(node, key, source)
    return fields


def _literal(node: ast.AST, field: str, source: str) -> Any:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and 1 <= len(node.args) <= 3):
        try:
            return list(range(*(ast.literal_eval(a) for a in node.args)))
        except (ValueError, TypeError):
            pass
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise RomeError(f"{source}: Genotype {field} = {ast.unparse(node)[:80]}: expected a literal list") from None


def format_arch_str(nodes: Sequence[Sequence[Entry]]) -> str:
    """``|op~0|+|op~0|op~1|+...|``: per node its entries, sources ascending."""
    return "+".join("|" + "|".join(f"{op}~{j}" for op, j in sorted(node, key=lambda e: e[1])) + "|" for node in nodes)


def parse_arch_str(text: str, source: str = "genotype") -> tuple[tuple[Entry, ...], ...]:
    """Per node the ``(op, input)`` entries of an NB201 arch string (syntax only)."""
    nodes = []
    for n, group in enumerate(text.strip().split("+"), start=1):
        if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
            raise RomeError(f"{source}: NB201 arch string node {n} = {group!r}: expected |op~input|...|")
        entries = []
        for item in group[1:-1].split("|"):
            op, sep, j = item.partition("~")
            if not sep or not j.isdigit():
                raise RomeError(f"{source}: NB201 arch string node {n} item {item!r}: expected op~input")
            entries.append((op, int(j)))
        nodes.append(tuple(entries))
    return tuple(nodes)


def is_arch_str(text: str) -> bool:
    """NB201 arch strings start with ``|``; anything else is read as DARTS text."""
    return text.strip().startswith("|")
