"""Cell genotypes: the DARTS format, NAS-Bench-201 arch strings, genotype files, derivation rules.

Two genotype types, because the spaces keep different things:
  * ``Genotype`` (DARTS / R-DARTS S1-S4): per intermediate node two ``(op, input)`` entries;
    input 0 = older cell, 1 = previous cell, 2 + m = intermediate node m.
  * ``NB201Genotype``: per node i (1..n) one op on *every* edge j -> i, j < i (nothing dropped).

Converters (all round-trip): genotype <-> JSON dict <-> DARTS ``Genotype(normal=[...], ...)`` text
(parsed with ``ast``, never ``eval``) and NB201 <-> ``|op~0|+|op~0|op~1|+...|`` arch string.
Bad input raises a one-line ``RomeError`` naming the file, the field, the value and what was expected.

Derivation (``derive_cell``), chosen by what the search stored (``derivation_rule``):
  * ``rome``: per node the k incoming edges with the largest beta (v2), or the pair of inputs with
    the largest beta (v1); on each kept edge the op with the largest alpha, never ``none``.
  * ``darts``: DARTS's rule: edge strength = largest non-``none`` softmax(alpha) weight; the k
    strongest edges per node; on each the non-``none`` argmax.
  * ``gdas``: GDAS's released rule: the k best (op, input) pairs of a node over all non-``none``
    ops of all its edges, so two entries may share an input (the behaviour ROME's rule excludes).
  * ``nb201``: per-edge argmax over *all* ops. ``none`` stays allowed there (choice): in
    NAS-Bench-201 ``none`` is a real op of the benchmark (it removes an edge; 15,625 cells
    include it) and the NB201 reference searches (DARTS, GDAS in AutoDL-Projects) keep it.
Ties (paper silent; choice): the lowest index wins, for edges (edge order of the search) and ops
(op order of the edge). Entries of a node are listed strongest first, as DARTS's ``parse`` does.
"""

from __future__ import annotations

import ast
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from rome.artifacts import check_schema_version
from rome.errors import RomeError
from rome.spaces.ops import NB201_OPS, OPS, PARAMETER_FREE_OPS

GENOTYPE_SCHEMA_VERSION = 1
GENOTYPE_FILE = "genotype.json"
DARTS_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
CELL_TYPES = ("normal", "reduce")
DARTS_INPUTS = 2  # a DARTS cell reads the outputs of the two previous cells
ENTRIES_PER_NODE = 2  # the DARTS genotype format keeps exactly two inputs per node
NONE_OP = "none"

Entry = tuple[str, int]
AnyGenotype = Union["Genotype", "NB201Genotype"]


def _fmt_entry(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"({value[0]!r}, {value[1]!r})"
    return repr(value)


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


# ----------------------------------------------------------------------------- DARTS genotype


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
        def cell(entries: tuple[Entry, ...]) -> str:
            return "[" + ", ".join(f"({o!r}, {i})" for o, i in entries) + "]"

        return (f"Genotype(normal={cell(self.normal)}, normal_concat={list(self.normal_concat)}, "
                f"reduce={cell(self.reduce)}, reduce_concat={list(self.reduce_concat)})")

    @classmethod
    def from_text(cls, text: str, source: str = "genotype") -> Genotype:
        """Parse ``Genotype(normal=[...], normal_concat=..., ...)`` (optionally ``NAME = Genotype(...)``).

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
        return cls.from_dict(fields, source)

    def n_param_free(self) -> dict[str, int]:
        """Parameter-free ops per cell type (the collapse statistic of R-DARTS / ROME Table 4)."""
        return {kind: sum(op in PARAMETER_FREE_OPS for op, _ in self.cell(kind)[0]) for kind in CELL_TYPES}


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


# ----------------------------------------------------------------------------- NAS-Bench-201 genotype


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
        return "+".join("|" + "|".join(f"{op}~{j}" for op, j in sorted(node, key=lambda e: e[1])) + "|"
                        for node in self.nodes)

    @classmethod
    def from_arch_str(cls, text: str, source: str = "genotype") -> NB201Genotype:
        s = text.strip()
        nodes = []
        for n, group in enumerate(s.split("+"), start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise RomeError(f"{source}: NB201 arch string node {n} = {group!r}: expected |op~input|...|")
            entries = []
            for item in group[1:-1].split("|"):
                op, sep, j = item.partition("~")
                if not sep or not j.isdigit():
                    raise RomeError(f"{source}: NB201 arch string node {n} item {item!r}: expected op~input")
                entries.append((op, int(j)))
            nodes.append(tuple(entries))
        return cls(tuple(nodes)).validate(source)

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [[[o, j] for o, j in node] for node in self.nodes]}

    @classmethod
    def from_dict(cls, d: Any, source: str = "genotype") -> NB201Genotype:
        if not isinstance(d, dict) or set(d) != {"nodes"} or not isinstance(d["nodes"], list):
            raise RomeError(f"{source}: genotype = {str(d)[:80]}: expected {{'nodes': [[[op, input], ...], ...]}}")
        return cls(tuple(_entries(node, f"nodes[{n}]", source) for n, node in enumerate(d["nodes"]))).validate(source)

    def n_param_free(self) -> dict[str, int]:
        """Counted under ``normal``: the NB201 cell is the network's only cell type (reductions are ResNet blocks)."""
        return {"normal": sum(op in PARAMETER_FREE_OPS for node in self.nodes for op, _ in node)}


# ----------------------------------------------------------------------------- files


def genotype_from_dict(d: dict[str, Any], source: str = "genotype") -> AnyGenotype:
    """A bare genotype mapping: DARTS fields, or ``{"nodes": ...}`` for NB201."""
    if isinstance(d, dict) and "nodes" in d:
        return NB201Genotype.from_dict(d, source)
    return Genotype.from_dict(d, source)


def parse_genotype_text(text: str, source: str = "genotype") -> AnyGenotype:
    """DARTS ``Genotype(...)`` text or an NB201 arch string (recognised by its leading ``|``)."""
    if text.strip().startswith("|"):
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
    text = p.read_text()
    if p.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RomeError(f"{p}: corrupt JSON ({exc.msg} at line {exc.lineno}); expected a genotype file") from None
        return genotype_from_document(doc, str(p))
    return parse_genotype_text(text, str(p))


def as_genotype(obj: Any) -> AnyGenotype:
    """What a network accepts: a genotype object, a genotype(.json) mapping, a file path, or genotype text."""
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
        return load_genotype(obj)
    raise RomeError(f"genotype = {obj!r:.80}: expected a Genotype, a mapping, a genotype file path or genotype text")


# ----------------------------------------------------------------------------- derivation


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def _ranked(values: Sequence[float]) -> list[int]:
    """Indices by value, largest first; ties keep the lower index first (stable sort)."""
    return [int(i) for i in np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")]


def best_op(weights: Sequence[float], ops: Sequence[str], allow_none: bool, where: str = "edge") -> int:
    """Index of the largest weight (lowest index on ties), skipping ``none`` unless allowed."""
    for i in _ranked(weights):
        if allow_none or ops[i] != NONE_OP:
            return i
    raise RomeError(f"{where}: ops = {list(ops)}: no candidate other than 'none' to derive")


@dataclass(frozen=True)
class CellSearchSpace:
    """One cell type as the search describes it: per-edge op lists and (src, dst) state indices."""

    ops: tuple[tuple[str, ...], ...]
    edges: tuple[tuple[int, int], ...]

    def nodes(self) -> list[int]:
        """Destination state indices in order of first appearance."""
        return list(dict.fromkeys(dst for _, dst in self.edges))

    def incoming(self, dst: int) -> list[int]:
        return [e for e, (_, d) in enumerate(self.edges) if d == dst]

    def pairs(self, k: Sequence[int] | None = None) -> list[tuple[int, ...]]:
        """ROME-v1 beta order (unless search.json lists ``pairs``): node by node, the k-subsets ("pairs"
        for k = 2) of its incoming edges in ``itertools.combinations`` order, as (src_a, src_b, ..., dst)."""
        k = [ENTRIES_PER_NODE] * len(self.nodes()) if k is None else list(k)
        return [(*(self.edges[e][0] for e in sub), dst)
                for dst, kn in zip(self.nodes(), k) for sub in itertools.combinations(self.incoming(dst), kn)]


def _alpha_row(alpha: np.ndarray, e: int, ops: Sequence[str], where: str) -> np.ndarray:
    """Alpha of edge e over its own op list; extra columns (padding of ragged op lists) are ignored."""
    if alpha.shape[1] < len(ops):
        raise RomeError(f"{where}: alpha has {alpha.shape[1]} columns but edge {e} has {len(ops)} ops {list(ops)}")
    return alpha[e, :len(ops)]


def derive_cell(space: CellSearchSpace, alpha: np.ndarray, rule: str, k: Sequence[int] | None = None,
                beta: np.ndarray | None = None, pairs: Sequence[tuple[int, ...]] | None = None,
                where: str = "cell") -> list[list[Entry]]:
    """Per intermediate node, the kept ``(op, src)`` entries, strongest first.

    ``rule`` is ``rome`` (with ``beta`` per edge, or per input subset ``(src_a, src_b, ..., dst)`` when
    ``pairs`` is given: ROME-v1), ``darts``,
    ``gdas`` or ``nb201`` (module docstring). ``k[n]`` = inputs kept by node n (ignored by nb201).
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim != 2 or alpha.shape[0] != len(space.edges):
        raise RomeError(f"{where}: alpha has shape {list(alpha.shape)}: expected [{len(space.edges)} edges, n_ops]")
    probs = [softmax(_alpha_row(alpha, e, ops, where)) for e, ops in enumerate(space.ops)]
    nodes = space.nodes()
    if rule != "nb201":
        if k is None or len(k) != len(nodes):
            raise RomeError(f"{where}: in_degree = {None if k is None else list(k)}: expected one entry per node "
                            f"({len(nodes)} nodes)")
        for n, dst in enumerate(nodes):
            if not 1 <= k[n] <= len(space.incoming(dst)):
                raise RomeError(f"{where}: in_degree[{n}] = {k[n]}: expected 1..{len(space.incoming(dst))} "
                                f"(the node's incoming edges)")
    if rule in ("rome",) and beta is None:
        raise RomeError(f"{where}: rule 'rome' needs beta")
    cells: list[list[Entry]] = []
    for n, dst in enumerate(nodes):
        inc = space.incoming(dst)
        if rule == "nb201":
            kept = inc
        elif rule == "rome" and pairs is not None:
            node_pairs = [p for p, sub in enumerate(pairs) if sub[-1] == dst]
            if not node_pairs:
                raise RomeError(f"{where}: pairs list no input subset for node {dst}")
            *srcs, _ = pairs[node_pairs[_ranked([beta[p] for p in node_pairs])[0]]]
            by_src = {space.edges[e][0]: e for e in inc}
            if any(src not in by_src for src in srcs):
                raise RomeError(f"{where}: pair {list(pairs[node_pairs[0]])} names an input without an edge to {dst}")
            kept = [by_src[src] for src in srcs]
        elif rule == "rome":
            kept = [inc[i] for i in _ranked([beta[e] for e in inc])[:k[n]]]
        elif rule == "darts":
            strength = [max((p for p, op in zip(probs[e], space.ops[e]) if op != NONE_OP), default=-1.0) for e in inc]
            kept = [inc[i] for i in _ranked(strength)[:k[n]]]
        elif rule == "gdas":
            cands = [(float(p), e, o) for e in inc for o, (p, op) in enumerate(zip(probs[e], space.ops[e]))
                     if op != NONE_OP]
            top = [cands[i] for i in _ranked([c[0] for c in cands])[:k[n]]]
            cells.append([(space.ops[e][o], space.edges[e][0]) for _, e, o in top])
            continue
        else:
            raise ValueError(f"unknown derivation rule {rule!r}")
        allow_none = rule == "nb201"
        cells.append([(space.ops[e][best_op(probs[e], space.ops[e], allow_none, f"{where} edge {e}")], space.edges[e][0])
                      for e in kept])
    return cells


def derivation_rule(algorithm: str, space: str, has_beta: bool) -> str:
    """Which rule fits what the search learned (module docstring)."""
    if space == "nb201":
        return "nb201"
    if has_beta:
        return "rome"
    # Without beta: GDAS keeps its own rule; ROME without topology disentanglement samples like GDAS,
    # so it is derived like GDAS too (choice); DARTS and random search use the DARTS rule.
    return "gdas" if algorithm in ("gdas", "rome") else "darts"


def cells_to_genotype(normal: list[list[Entry]], reduce: list[list[Entry]], source: str = "derived") -> Genotype:
    """Flatten per-node entries into the DARTS format; the output concatenates every intermediate node."""
    for kind, cell in (("normal", normal), ("reduce", reduce)):
        for n, entries in enumerate(cell):
            if len(entries) != ENTRIES_PER_NODE:
                raise RomeError(f"{source}: {kind} node {n} keeps {len(entries)} inputs: the DARTS genotype format "
                                f"needs exactly {ENTRIES_PER_NODE} (in_degree)")
    return Genotype(normal=[e for node in normal for e in node],
                    normal_concat=range(DARTS_INPUTS, DARTS_INPUTS + len(normal)),
                    reduce=[e for node in reduce for e in node],
                    reduce_concat=range(DARTS_INPUTS, DARTS_INPUTS + len(reduce))).validate(source)


def cells_to_nb201(cell: list[list[Entry]], source: str = "derived") -> NB201Genotype:
    return NB201Genotype(tuple(tuple(node) for node in cell)).validate(source)
