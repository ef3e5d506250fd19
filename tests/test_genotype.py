"""Genotype types, converters (round trips), published genotypes, derivation rules and bad input."""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from rome.errors import RomeError
from rome.genotype import (
    CellSearchSpace,
    Genotype,
    NB201Genotype,
    as_genotype,
    cells_to_genotype,
    derivation_rule,
    derive_cell,
    genotype_document,
    genotype_from_document,
    load_genotype,
    parse_genotype_text,
)

REPO = Path(__file__).resolve().parents[1]
DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
NB201_ARCH = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
DARTS_OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5"]


def darts_edges(nodes: int = 4) -> list[tuple[int, int]]:
    return [(src, 2 + m) for m in range(nodes) for src in range(2 + m)]


def space(ops: list[str] | list[list[str]], nodes: int = 4) -> CellSearchSpace:
    edges = darts_edges(nodes)
    per_edge = ops if ops and isinstance(ops[0], list) else [ops] * len(edges)
    return CellSearchSpace(tuple(tuple(o) for o in per_edge), tuple(edges))


# ----------------------------------------------------------------------------- published genotype + round trips


def test_darts_v2_file_is_the_published_cell():
    g = load_genotype(REPO / "src" / "rome" / "genotype" / "published" / "darts_v2.json")
    assert g == Genotype.from_text(DARTS_V2_TEXT)
    # the DARTS-V2 normal cell as nas-spaces.md spells it
    assert g.normal[6:] == (("skip_connect", 0), ("dil_conv_3x3", 2))
    assert g.n_param_free() == {"normal": 2, "reduce": 8}
    v1 = load_genotype(REPO / "src" / "rome" / "genotype" / "published" / "darts_v1.json")
    assert v1 != g and v1.normal[:2] == (("sep_conv_3x3", 1), ("sep_conv_3x3", 0))


def test_darts_round_trips(tmp_path: Path):
    g = Genotype.from_text(DARTS_V2_TEXT)
    assert Genotype.from_dict(g.to_dict()) == g
    assert Genotype.from_text(g.to_text()) == g
    assert g.to_text() == DARTS_V2_TEXT  # prints exactly what DARTS prints
    doc = json.loads(json.dumps(genotype_document(g, "darts")))
    assert genotype_from_document(doc) == g and doc["nb201_arch"] is None
    (tmp_path / "g.json").write_text(json.dumps(doc))
    (tmp_path / "g.txt").write_text(g.to_text() + "\n")
    assert load_genotype(tmp_path / "g.json") == g == load_genotype(tmp_path / "g.txt")
    assert as_genotype(g.to_dict()) == as_genotype(str(tmp_path / "g.txt")) == as_genotype(DARTS_V2_TEXT) == g


def test_darts_text_variants_from_logs_and_source_files():
    body = DARTS_V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)")
    assert Genotype.from_text(body) == Genotype.from_text(DARTS_V2_TEXT)
    assert Genotype.from_text("DARTS_V2 = " + DARTS_V2_TEXT) == Genotype.from_text(DARTS_V2_TEXT)
    positional = "genotypes.Genotype(" + DARTS_V2_TEXT[len("Genotype("):].replace("normal=", "", 1)
    assert Genotype.from_text(positional) == Genotype.from_text(DARTS_V2_TEXT)
    DartsTuple = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
    g = Genotype.from_text(DARTS_V2_TEXT)
    assert as_genotype(DartsTuple(list(g.normal), range(2, 6), list(g.reduce), [2, 3, 4, 5])) == g


def test_text_is_never_evaluated(tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = f"Genotype(normal=__import__('pathlib').Path({str(marker)!r}).touch(), normal_concat=[2], reduce=[], reduce_concat=[2])"
    with pytest.raises(RomeError, match="expected a literal"):
        Genotype.from_text(evil)
    with pytest.raises(RomeError):
        Genotype.from_text("import os; Genotype()")
    assert not marker.exists()


def test_nb201_round_trips(tmp_path: Path):
    g = NB201Genotype.from_arch_str(NB201_ARCH)
    assert g.to_arch_str() == NB201_ARCH
    assert g.nodes[1] == (("none", 0), ("avg_pool_3x3", 1))
    assert NB201Genotype.from_dict(g.to_dict()) == g
    doc = genotype_document(g)
    assert doc["nb201_arch"] == NB201_ARCH and doc["space"] == "nb201"
    assert doc["n_param_free"] == {"normal": 4}  # none, avg_pool, skip, skip
    assert genotype_from_document(json.loads(json.dumps(doc))) == g
    (tmp_path / "arch.txt").write_text(NB201_ARCH + "\n")
    assert load_genotype(tmp_path / "arch.txt") == g == parse_genotype_text(NB201_ARCH) == as_genotype(NB201_ARCH)


# ----------------------------------------------------------------------------- bad input


def _doc_file(tmp_path: Path, **changes) -> Path:
    doc = genotype_document(Genotype.from_text(DARTS_V2_TEXT), "darts")
    for key, value in changes.items():
        if key in ("normal", "reduce", "normal_concat"):
            doc["genotype"][key] = value
        else:
            doc[key] = value
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    return path


def test_unknown_op_names_file_field_and_choices(tmp_path: Path):
    normal = [["sep_conv_3x3", 0]] * 3 + [["sep_conv_9x9", 1]] + [["sep_conv_3x3", 0]] * 4
    path = _doc_file(tmp_path, normal=normal)
    with pytest.raises(RomeError) as exc:
        load_genotype(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: normal[3] = ('sep_conv_9x9', 1): unknown op; expected one of [")
    assert "'dil_conv_3x3'" in msg and "\n" not in msg


def test_input_index_out_of_range(tmp_path: Path):
    normal = [["sep_conv_3x3", 0], ["sep_conv_3x3", 2]] + [["sep_conv_3x3", 0]] * 6
    with pytest.raises(RomeError, match=r"x.json: normal\[1\] = \('sep_conv_3x3', 2\): input index out of range; "
                                        r"expected 0..1 for node 0"):
        load_genotype(_doc_file(tmp_path, normal=normal))
    with pytest.raises(RomeError, match=r"normal\[0\] = \('sep_conv_3x3', -1\)"):
        load_genotype(_doc_file(tmp_path, normal=[["sep_conv_3x3", -1]] + [["sep_conv_3x3", 0]] * 7))


def test_wrong_number_of_entries(tmp_path: Path):
    with pytest.raises(RomeError, match="x.json: reduce has 7 entries: expected a positive even number"):
        load_genotype(_doc_file(tmp_path, reduce=[["max_pool_3x3", 0]] * 7))
    g = Genotype.from_text(DARTS_V2_TEXT)
    with pytest.raises(RomeError, match="normal has 8 entries: expected 10"):
        g.validate("g", nodes=5)
    with pytest.raises(RomeError, match="normal_concat = \\[2, 3, 9\\]: expected distinct node indices"):
        load_genotype(_doc_file(tmp_path, normal_concat=[2, 3, 9]))
    with pytest.raises(RomeError, match=r"normal\[2\] = \['sep_conv_3x3'\]: expected a pair"):
        load_genotype(_doc_file(tmp_path, normal=[["sep_conv_3x3", 0]] * 2 + [["sep_conv_3x3"]] + [["skip_connect", 0]] * 5))


def test_future_schema_version(tmp_path: Path):
    path = _doc_file(tmp_path, schema_version=99)
    with pytest.raises(RomeError, match=r"x.json: schema_version = 99: expected <= 1"):
        load_genotype(path)


def test_bad_text_and_arch_strings(tmp_path: Path):
    p = tmp_path / "g.txt"
    p.write_text("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[], reduce_concat=[2], extra=1)")
    with pytest.raises(RomeError, match="g.txt: Genotype\\(extra=...\\): unknown field"):
        load_genotype(p)
    p.write_text("not a genotype (")
    with pytest.raises(RomeError, match="g.txt: not a DARTS Genotype"):
        load_genotype(p)
    with pytest.raises(RomeError, match="node 2 entry 1 = \\('conv_7x7', 1\\): unknown op"):
        NB201Genotype.from_arch_str("|nor_conv_3x3~0|+|none~0|conv_7x7~1|")
    with pytest.raises(RomeError, match="node 2 has inputs \\[0, 0\\]"):
        NB201Genotype.from_arch_str("|nor_conv_3x3~0|+|none~0|none~0|")
    with pytest.raises(RomeError, match="input index out of range"):
        NB201Genotype.from_arch_str("|nor_conv_3x3~1|")
    with pytest.raises(RomeError, match="not found"):
        load_genotype(tmp_path / "missing.json")


# ----------------------------------------------------------------------------- derivation rules


def test_rome_rule_top2_by_beta_and_argmax_alpha_never_none():
    cs = space(DARTS_OPS)
    alpha = np.zeros((14, 8))
    alpha[:, 0] = 5.0  # 'none' dominates every edge: must never be chosen
    alpha[:, 4] = 1.0  # sep_conv_3x3 next
    alpha[3, 6] = 2.0  # edge 3 = node1 <- 1: dil_conv_3x3
    beta = np.zeros(14)
    beta[[1, 0]] = [2.0, 1.0]  # node0: edge 1 (input 1) strongest, then edge 0
    beta[[4, 3]] = [3.0, 1.0]  # node1: input 2 (node 0) strongest, then input 1
    beta[[5, 8]] = [1.0, 1.0]  # node2: tie between inputs 0 and 3 -> lower edge index first, both kept
    beta[9:14] = [0.0, 0.5, 0.5, 0.5, 0.0]  # node3: three-way tie -> edges 10, 11 (lowest indices)
    cells = derive_cell(cs, alpha, "rome", k=[2, 2, 2, 2], beta=beta)
    assert cells == [[("sep_conv_3x3", 1), ("sep_conv_3x3", 0)],
                     [("sep_conv_3x3", 2), ("dil_conv_3x3", 1)],
                     [("sep_conv_3x3", 0), ("sep_conv_3x3", 3)],
                     [("sep_conv_3x3", 1), ("sep_conv_3x3", 2)]]
    assert all(op != "none" for node in cells for op, _ in node)
    g = cells_to_genotype(cells, cells)
    assert g.normal_concat == (2, 3, 4, 5)


def test_op_ties_pick_lowest_index():
    cs = space(DARTS_OPS, nodes=1)
    alpha = np.zeros((2, 8))
    alpha[0, [5, 7]] = 1.0  # sep_conv_5x5 and dil_conv_5x5 tie -> sep_conv_5x5 (index 5)
    alpha[1, :] = 0.0  # all equal: 'none' is skipped, max_pool_3x3 (index 1) wins
    assert derive_cell(cs, alpha, "rome", k=[2], beta=np.zeros(2)) == [[("sep_conv_5x5", 0), ("max_pool_3x3", 1)]]


def test_rome_v1_pair_beta():
    cs = space(DARTS_OPS, nodes=2)
    pairs = cs.pairs()
    assert pairs == [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]
    alpha = np.zeros((5, 8))
    alpha[:, 3] = 1.0
    beta = np.array([0.0, 0.1, 0.2, 0.9])  # node1 keeps inputs (1, 2)
    cells = derive_cell(cs, alpha, "rome", k=[2, 2], beta=beta, pairs=pairs)
    assert cells == [[("skip_connect", 0), ("skip_connect", 1)], [("skip_connect", 1), ("skip_connect", 2)]]


def test_darts_rule_strength_is_best_non_none_weight():
    cs = space(DARTS_OPS, nodes=2)
    alpha = np.zeros((5, 8))
    alpha[0, 0] = 9.0  # edge 0 is almost all 'none': weak by DARTS's strength
    alpha[1, 4] = 2.0
    alpha[2, 5] = 3.0
    alpha[3, 0] = 3.0  # edge 3's largest weight is 'none' (0.68): it does not count as strength
    alpha[3, 6] = 1.2
    alpha[4, 2] = 1.0
    cells = derive_cell(cs, alpha, "darts", k=[2, 2])
    assert cells[0] == [("sep_conv_3x3", 1), ("max_pool_3x3", 0)]
    assert cells[1] == [("sep_conv_5x5", 0), ("avg_pool_3x3", 2)]


def test_gdas_rule_may_repeat_an_input():
    cs = space(DARTS_OPS, nodes=1)
    alpha = np.zeros((2, 8))
    alpha[0, [4, 5]] = [3.0, 2.9]  # the two best (op, input) pairs both read input 0
    alpha[1, 6] = 1.0
    assert derive_cell(cs, alpha, "gdas", k=[2]) == [[("sep_conv_3x3", 0), ("sep_conv_5x5", 0)]]
    assert derive_cell(cs, alpha, "darts", k=[2]) == [[("sep_conv_3x3", 0), ("dil_conv_3x3", 1)]]


def test_s1_per_edge_op_lists():
    s1 = [["skip_connect", "dil_conv_3x3"], ["skip_connect", "dil_conv_5x5"], ["skip_connect", "dil_conv_5x5"],
          ["skip_connect", "sep_conv_3x3"], ["skip_connect", "dil_conv_3x3"], ["max_pool_3x3", "skip_connect"],
          ["skip_connect", "sep_conv_3x3"], ["skip_connect", "sep_conv_3x3"], ["skip_connect", "dil_conv_3x3"],
          ["skip_connect", "sep_conv_3x3"], ["max_pool_3x3", "skip_connect"], ["skip_connect", "dil_conv_3x3"],
          ["dil_conv_3x3", "dil_conv_5x5"], ["dil_conv_3x3", "dil_conv_5x5"]]
    cs = space(s1)
    alpha = np.tile([0.0, 1.0], (14, 1))  # always the second op of the edge's own list
    beta = np.arange(14, dtype=float)  # later edges stronger: the two highest inputs of each node
    cells = derive_cell(cs, alpha, "rome", k=[2] * 4, beta=beta)
    assert cells == [[("dil_conv_5x5", 1), ("dil_conv_3x3", 0)],
                     [("dil_conv_3x3", 2), ("sep_conv_3x3", 1)],
                     [("dil_conv_3x3", 3), ("sep_conv_3x3", 2)],
                     [("dil_conv_5x5", 4), ("dil_conv_5x5", 3)]]


def test_nb201_rule_keeps_every_edge_and_allows_none():
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    edges = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    cs = CellSearchSpace(tuple(tuple(ops) for _ in edges), tuple(edges))
    alpha = np.zeros((6, 5))
    alpha[0, 3] = 1
    alpha[1, 0] = 1  # none is a legitimate NB201 op
    alpha[2, 4] = 1
    alpha[3, 1] = 1
    alpha[4, 2] = 1
    alpha[5, [1, 3]] = 1  # tie -> skip_connect (lower index)
    cells = derive_cell(cs, alpha, "nb201")
    assert NB201Genotype(tuple(tuple(c) for c in cells)).to_arch_str() == NB201_ARCH


def test_rule_selection_and_derivation_errors():
    assert derivation_rule("rome", "darts", True) == "rome"
    assert derivation_rule("darts", "s3", False) == "darts"
    assert derivation_rule("random", "darts", False) == "darts"
    assert derivation_rule("gdas", "darts", False) == "gdas"
    assert derivation_rule("rome", "nb201", True) == "nb201"
    cs = space(["none"], nodes=1)
    with pytest.raises(RomeError, match="no candidate other than 'none'"):
        derive_cell(cs, np.zeros((2, 1)), "darts", k=[2])
    with pytest.raises(RomeError, match="in_degree\\[0\\] = 3: expected 1..2"):
        derive_cell(space(DARTS_OPS, nodes=1), np.zeros((2, 8)), "darts", k=[3])
    with pytest.raises(RomeError, match="alpha has shape \\[3, 8\\]"):
        derive_cell(space(DARTS_OPS, nodes=1), np.zeros((3, 8)), "darts", k=[2])
    with pytest.raises(RomeError, match="keeps 1 inputs"):
        cells_to_genotype([[("skip_connect", 0)]], [[("skip_connect", 0)]])
