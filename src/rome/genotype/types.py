"""The two genotype types, their JSON dict form and the rules of a valid cell.

Two types, because the spaces keep different things:
  * ``Genotype`` (DARTS / R-DARTS S1-S4): per intermediate node two ``(op, input)`` entries;
    input 0 = older cell, 1 = previous cell, 2 + m = intermediate node m.
  * ``NB201Genotype``: per node i (1..n) one op on *every* edge j -> i, j < i (nothing dropped).

Bad input raises a one-line ``RomeError`` naming the source, the field, the value and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from rome.errors import RomeError
from rome.genotype.text import (
    DARTS_FIELDS,
    Entry,
    format_arch_str,
    format_darts_text,
    parse_arch_str,
    parse_darts_text,
)
from rome.genotype.text import format_entry as _fmt_entry
from rome.spaces.ops import NB201_OPS, OPS, PARAMETER_FREE_OPS

CELL_TYPES = ("normal", "reduce")
DARTS_INPUTS = 2  # a DARTS cell reads the outputs of the two previous cells
ENTRIES_PER_NODE = 2  # the DARTS genotype format keeps exactly two inputs per node
NONE_OP = "none"

AnyGenotype = Union["Genotype", "NB201Genotype"]


def count_param_free(ops: Iterable[str]) -> int:
    """How many of ``ops`` have no parameters (the collapse statistic of R-DARTS / ROME Table 4)."""
    return sum(op in PARAMETER_FREE_OPS for op in ops)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _entries(value: Any, field: str, source: str) -> tuple[Entry, ...]:
    """A list of (op, input) pairs, type-checked only (the cell rules are checked by ``validate``)."""
    if not isinstance(value, (list, tuple)):
        raise RomeError(f"{source}: {field} = {value!r}: expected a list of (op_name, input_index) pairs")
    out = []
    for i, item in enumerate(value):
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str) and _is_int(item[1])):
            raise RomeError(f"{source}: {field}[{i}] = {_fmt_entry(item)}: expected a pair (op_name, input_index)")
        out.append((item[0], int(item[1])))
    return tuple(out)


def _concat(value: Any, field: str, source: str) -> tuple[int, ...]:
    if isinstance(value, range):
        value = list(value)
    if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
        raise RomeError(f"{source}: {field} = {value!r}: expected a list of node indices, e.g. [2, 3, 4, 5]")
    return tuple(int(v) for v in value)



@dataclass(frozen=True)
class Genotype:
    """A DARTS-format genotype: two ``(op, input)`` entries per intermediate node, per cell type."""

    normal: tuple[Entry, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Entry, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:  # accept lists / ranges, store hashable tuples
        object.__setattr__(self, "normal", tuple((str(o), int(i)) for o, i in self.normal))
        object.__setattr__(self, "reduce", tuple((str(o), int(i)) for o, i in self.reduce))
        object.__setattr__(self, "normal_concat", tuple(int(v) for v in self.normal_concat))
        object.__setattr__(self, "reduce_concat", tuple(int(v) for v in self.reduce_concat))

    def cell(self, kind: str) -> tuple[tuple[Entry, ...], tuple[int, ...]]:
        """(entries, concat) of the ``normal`` or ``reduce`` cell."""
        if kind not in CELL_TYPES:
            raise ValueError(f"cell type {kind!r}: expected one of {CELL_TYPES}")
        return getattr(self, kind), getattr(self, f"{kind}_concat")

    def steps(self, kind: str = "normal") -> int:
        return len(getattr(self, kind)) // ENTRIES_PER_NODE

    def validate(self, source: str = "genotype", nodes: int | None = None) -> Genotype:
        """Known ops, two entries per node, inputs < 2 + node, concat in range; returns self."""
        for kind in CELL_TYPES:
            entries, concat = self.cell(kind)
            if not entries or len(entries) % ENTRIES_PER_NODE:
                raise RomeError(f"{source}: {kind} has {len(entries)} entries: expected a positive even number "
                                f"({ENTRIES_PER_NODE} per intermediate node)")
            steps = len(entries) // ENTRIES_PER_NODE
            if nodes is not None and steps != nodes:
                raise RomeError(f"{source}: {kind} has {len(entries)} entries: expected {ENTRIES_PER_NODE * nodes} "
                                f"({ENTRIES_PER_NODE} for each of {nodes} nodes)")
            for i, (op, inp) in enumerate(entries):
                if op not in OPS:
                    raise RomeError(f"{source}: {kind}[{i}] = {_fmt_entry((op, inp))}: unknown op; "
                                    f"expected one of {sorted(OPS)}")
                node = i // ENTRIES_PER_NODE
                if not 0 <= inp < DARTS_INPUTS + node:
                    raise RomeError(f"{source}: {kind}[{i}] = {_fmt_entry((op, inp))}: input index out of range; "
                                    f"expected 0..{DARTS_INPUTS + node - 1} for node {node}")
            n_states = DARTS_INPUTS + steps
            if not concat or len(set(concat)) != len(concat) or not all(0 <= c < n_states for c in concat):
                raise RomeError(f"{source}: {kind}_concat = {list(concat)}: expected distinct node indices in "
                                f"0..{n_states - 1}, e.g. {list(range(DARTS_INPUTS, n_states))}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"normal": [[o, i] for o, i in self.normal], "normal_concat": list(self.normal_concat),
                "reduce": [[o, i] for o, i in self.reduce], "reduce_concat": list(self.reduce_concat)}

    @classmethod
    def from_dict(cls, d: Any, source: str = "genotype") -> Genotype:
        if not isinstance(d, dict):
            raise RomeError(f"{source}: genotype = {d!r}: expected a mapping with keys {list(DARTS_FIELDS)}")
        missing = [k for k in DARTS_FIELDS if k not in d]
        if missing:
            raise RomeError(f"{source}: genotype lacks {missing[0]!r}: expected keys {list(DARTS_FIELDS)}")
        extra = sorted(set(d) - set(DARTS_FIELDS))
        if extra:
            raise RomeError(f"{source}: genotype.{extra[0]}: unknown key; expected only {list(DARTS_FIELDS)}")
        return cls(normal=_entries(d["normal"], "normal", source),
                   normal_concat=_concat(d["normal_concat"], "normal_concat", source),
                   reduce=_entries(d["reduce"], "reduce", source),
                   reduce_concat=_concat(d["reduce_concat"], "reduce_concat", source)).validate(source)

    def to_text(self) -> str:
        """The DARTS ``Genotype(...)`` text, as DARTS's own code prints it (concat as lists)."""
        return format_darts_text(self.normal, self.normal_concat, self.reduce, self.reduce_concat)

    @classmethod
    def from_text(cls, text: str, source: str = "genotype") -> Genotype:
        """Parse ``Genotype(normal=[...], normal_concat=..., ...)`` (optionally ``NAME = Genotype(...)``)."""
        return cls.from_dict(parse_darts_text(text, source), source)

    def n_param_free(self) -> dict[str, int]:
        """Parameter-free ops per cell type (the collapse statistic of R-DARTS / ROME Table 4)."""
        return {kind: count_param_free(op for op, _ in self.cell(kind)[0]) for kind in CELL_TYPES}



@dataclass(frozen=True)
class NB201Genotype:
    """NAS-Bench-201 cell: ``nodes[i-1]`` = the ``(op, j)`` of every edge j -> i, j = 0..i-1."""

    nodes: tuple[tuple[Entry, ...], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(tuple((str(o), int(j)) for o, j in node) for node in self.nodes))

    def validate(self, source: str = "genotype") -> NB201Genotype:
        if not self.nodes:
            raise RomeError(f"{source}: NB201 cell has no nodes: expected e.g. |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
        for n, node in enumerate(self.nodes, start=1):
            for k, (op, j) in enumerate(node):
                if op not in NB201_OPS:
                    raise RomeError(f"{source}: node {n} entry {k} = {_fmt_entry((op, j))}: unknown op; "
                                    f"expected one of {sorted(NB201_OPS)}")
                if not 0 <= j < n:
                    raise RomeError(f"{source}: node {n} entry {k} = {_fmt_entry((op, j))}: input index out of range; "
                                    f"expected 0..{n - 1}")
            inputs = sorted(j for _, j in node)
            if inputs != list(range(n)):
                raise RomeError(f"{source}: node {n} has inputs {inputs}: expected one edge from each of "
                                f"{list(range(n))} (NB201 keeps every edge)")
        return self

    def edges(self) -> list[tuple[int, int, str]]:
        """(src, dst, op) for every edge, node by node, sources ascending."""
        return [(j, n, op) for n, node in enumerate(self.nodes, start=1) for op, j in sorted(node, key=lambda e: e[1])]

    def to_arch_str(self) -> str:
        return format_arch_str(self.nodes)

    @classmethod
    def from_arch_str(cls, text: str, source: str = "genotype") -> NB201Genotype:
        return cls(parse_arch_str(text, source)).validate(source)

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [[[o, j] for o, j in node] for node in self.nodes]}

    @classmethod
    def from_dict(cls, d: Any, source: str = "genotype") -> NB201Genotype:
        if not isinstance(d, dict) or set(d) != {"nodes"} or not isinstance(d["nodes"], list):
            raise RomeError(f"{source}: genotype = {str(d)[:80]}: expected {{'nodes': [[[op, input], ...], ...]}}")
        return cls(tuple(_entries(node, f"nodes[{n}]", source) for n, node in enumerate(d["nodes"]))).validate(source)

    def n_param_free(self) -> dict[str, int]:
        """Counted under ``normal``: the NB201 cell is the network's only cell type (reductions are ResNet blocks)."""
        return {"normal": count_param_free(op for node in self.nodes for op, _ in node)}
