"""``rome derive``: the search's architecture parameters -> genotype.json (+ genotype.txt, cell PNGs).

Input: the search artifact, read through ``rome.search.artifact.read_search`` (``search.json`` with
the space's ops, edges, in_degree and, for ROME-v1, the input ``pairs`` of each beta entry, default:
the input pairs of each node in ``itertools.combinations`` order; ``arch.safetensors`` with
``alpha_<cell>`` [edges x ops] and ``beta_<cell>`` [edges] or [pairs]). Output: the genotype
artifact of ``rome.genotype.files``. The rule (rome / darts / gdas / nb201) follows from what was
stored: see ``rome.genotype.derivation``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from rome import tracking
from rome.artifacts import atomic_dir, provenance, write_json, write_run_record, write_text
from rome.errors import RomeError
from rome.genotype.derivation import (
    BETA_RULE,
    RULES,
    CellSearchSpace,
    cells_to_genotype,
    cells_to_nb201,
    derivation_rule,
    derive_cell,
    softmax,
)
from rome.genotype.files import GENOTYPE_FILE, GENOTYPE_TEXT_FILE, genotype_document, genotype_to_text
from rome.genotype.types import ENTRIES_PER_NODE, AnyGenotype
from rome.outputs import LAYOUTS
from rome.paths import input_dir
from rome.sections import DeriveConfig
from rome.search.artifact import ARCH_FILE, SEARCH_FILE, read_search
from rome.spaces import get_space_spec

logger = logging.getLogger(__name__)

SECTIONS = ["derive"]


def _per_cell(value: Any, cell: str, key: str, source: str) -> Any:
    """``search.json`` fields may be one value for every cell type or a mapping per cell type."""
    if isinstance(value, dict):
        if cell not in value:
            raise RomeError(f"{source}: {key} lacks {cell!r}: expected a value per cell type {sorted(value)}")
        return value[cell]
    return value


def _cell_space(meta: dict[str, Any], cell: str, source: str) -> CellSearchSpace:
    edges = _per_cell(meta.get("edges"), cell, "edges", source)
    if not isinstance(edges, list) or not edges or not all(
            isinstance(e, list) and len(e) == 2 and all(isinstance(v, int) for v in e) for e in edges):
        raise RomeError(f"{source}: edges = {str(edges)[:80]}: expected a list of [src, dst] state indices")
    ops = _per_cell(meta.get("ops"), cell, "ops", source)
    if isinstance(ops, list) and ops and all(isinstance(o, str) for o in ops):
        ops = [ops] * len(edges)  # one op list shared by every edge
    if not isinstance(ops, list) or len(ops) != len(edges) or not all(
            isinstance(o, list) and o and all(isinstance(n, str) for n in o) for o in ops):
        raise RomeError(f"{source}: ops.{cell} = {str(ops)[:80]}: expected one op-name list per edge ({len(edges)} edges)")
    return CellSearchSpace(tuple(tuple(o) for o in ops), tuple((int(s), int(d)) for s, d in edges))


def _tensor(tensors: dict[str, np.ndarray], names: list[str], source: str, required: bool = True) -> np.ndarray | None:
    for name in names:
        if name in tensors:
            return tensors[name]
    if required:
        raise RomeError(f"{source}: tensor {names[0]!r} missing; found {sorted(tensors)}")
    return None


def _beta_probabilities(beta: np.ndarray, groups: list[int]) -> list[float]:
    """softmax of beta within each node (``groups[i]`` = node of entry i), in entry order."""
    out = np.zeros(len(beta))
    for g in set(groups):
        idx = [i for i, gi in enumerate(groups) if gi == g]
        out[idx] = softmax(beta[idx])
    return [round(float(v), 6) for v in out]


def derive_from_search(meta: dict[str, Any], tensors: dict[str, np.ndarray],
                       source: str = "search") -> tuple[AnyGenotype, str, dict[str, Any]]:
    """(genotype, rule, probabilities per cell type) from a search's summary and architecture tensors."""
    space, algorithm, variant = meta["space"], str(meta.get("algorithm", "")), meta.get("variant", "v2")
    arch_source = f"{source}/{ARCH_FILE}"
    space_spec = get_space_spec(space)
    nb201 = space_spec.kind == "nb201"  # one-input cells, NB201 genotype
    cells = space_spec.cell_types
    has_beta = any(f"beta_{c}" in tensors for c in cells)
    rule = derivation_rule(algorithm, space, has_beta)
    derived: dict[str, list[list[tuple[str, int]]]] = {}
    probabilities: dict[str, Any] = {}
    for cell in cells:
        cs = _cell_space(meta, cell, f"{source}/{SEARCH_FILE}")
        alpha = _tensor(tensors, [f"alpha_{cell}"] + (["alpha"] if nb201 else []), arch_source)
        beta = _tensor(tensors, [f"beta_{cell}"], arch_source, required=RULES[rule].needs_beta)
        nodes = cs.nodes()
        k = _per_cell(meta.get("in_degree"), cell, "in_degree", f"{source}/{SEARCH_FILE}")
        if k is None and RULES[rule].uses_in_degree:
            k = [ENTRIES_PER_NODE] * len(nodes)  # the DARTS cell keeps two inputs per node
        pairs = None
        if rule == BETA_RULE and variant == "v1":
            pairs = [tuple(p) for p in meta["pairs"]] if meta.get("pairs") else cs.pairs(k)
            expected, what = len(pairs), "pairs of inputs (ROME-v1)"
        else:
            expected, what = len(cs.edges), "edges"
        if beta is not None and beta.shape != (expected,):
            raise RomeError(f"{arch_source}: beta_{cell} has shape {list(beta.shape)}: expected [{expected}] "
                            f"({what}; variant = {variant!r})")
        derived[cell] = derive_cell(cs, alpha, rule, k=k, beta=beta, pairs=pairs, where=f"{arch_source} {cell}")
        probs: dict[str, Any] = {
            "ops": [list(o) for o in cs.ops], "edges": [list(e) for e in cs.edges],
            "alpha": [[round(float(p), 6) for p in softmax(alpha[e, :len(o)])] for e, o in enumerate(cs.ops)],
            "beta": None,
        }
        if beta is not None and pairs is not None:
            probs["beta_pairs"] = [list(p) for p in pairs]
            probs["beta"] = _beta_probabilities(beta, [p[-1] for p in pairs])
        elif beta is not None:
            probs["beta"] = _beta_probabilities(beta, [d for _, d in cs.edges])
        probabilities[cell] = probs
    if nb201:
        genotype: AnyGenotype = cells_to_nb201(derived["normal"], f"{source} (derived)")
    else:
        genotype = cells_to_genotype(derived["normal"], derived["reduce"], f"{source} (derived)")
    return genotype, rule, probabilities


CELLS_DIR = "cells"


def run(params: dict[str, Any], out: Path, args: argparse.Namespace | None = None) -> Path:
    search_dir = input_dir(params, "search")
    meta, tensors = read_search(search_dir)
    genotype, rule, probabilities = derive_from_search(meta, tensors, str(search_dir))
    search_prov = meta.get("provenance") or {}
    with tracking.start(params, "derive", SECTIONS, search_prov) as tracker:
        tracker.use_artifact(search_dir, tracking.artifact_name(params, "search"), "search")
        doc = genotype_document(
            genotype, meta["space"],
            search={"algorithm": meta.get("algorithm"), "variant": meta.get("variant")},
            rule=rule,
            probabilities=probabilities,
            search_provenance=search_prov,
            provenance=provenance(params, SECTIONS, "derive", search_prov.get("data_sha256")),
        )
        with atomic_dir(out, LAYOUTS["derive"]) as tmp:
            write_json(tmp / GENOTYPE_FILE, doc)
            write_text(tmp / GENOTYPE_TEXT_FILE, genotype_to_text(genotype) + "\n")
            write_json(tmp / "metrics.json", {f"n_param_free_{cell}": n for cell, n in doc["n_param_free"].items()})
            (tmp / CELLS_DIR).mkdir()
            if DeriveConfig.from_params(params).plot:
                from rome.plots import plot_genotype  # matplotlib only when pictures are wanted

                plot_genotype(genotype, tmp / CELLS_DIR, f"{meta['space']}/{meta.get('algorithm')}")
        tracker.summary({f"n_param_free_{cell}": n for cell, n in doc["n_param_free"].items()})
        # one key per picture: W&B warns ("Images sizes do not match") when one key holds PNGs of two sizes
        for png in sorted((out / CELLS_DIR).glob("*.png")):
            tracker.log_images(f"cells/{png.stem}", [png])
        tracker.log_artifact(out, tracking.artifact_name(params, "genotype"), "genotype")
        write_run_record(params, "derive", out, tracker.run_id)
    logger.info(f"derive: {rule} rule: {genotype_to_text(genotype)}; parameter-free ops {doc['n_param_free']}")
    return out
