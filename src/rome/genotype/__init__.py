"""Cell genotypes: the two types (``types``), their text forms (``text``), genotype files (``files``)
the derivation rules that turn searched alpha/beta into a genotype (``derivation``) and the
published cells shipped as data, by name (``named``).

The names most callers need are re-exported here.
"""

from rome.genotype.derivation import (
    CellSearchSpace,
    best_op,
    cells_to_genotype,
    cells_to_nb201,
    derivation_rule,
    derive_cell,
    softmax,
)
from rome.genotype.files import (
    GENOTYPE_FILE,
    GENOTYPE_SCHEMA_VERSION,
    GENOTYPE_TEXT_FILE,
    as_genotype,
    genotype_document,
    genotype_from_dict,
    genotype_from_document,
    genotype_to_text,
    load_genotype,
    parse_genotype_text,
)
from rome.genotype.named import published_names, published_path, resolve_genotype_ref
from rome.genotype.text import DARTS_FIELDS, Entry
from rome.genotype.types import (
    CELL_TYPES,
    DARTS_INPUTS,
    ENTRIES_PER_NODE,
    NONE_OP,
    AnyGenotype,
    Genotype,
    NB201Genotype,
    count_param_free,
)

__all__ = [
    "CELL_TYPES", "DARTS_FIELDS", "DARTS_INPUTS", "ENTRIES_PER_NODE", "GENOTYPE_FILE", "GENOTYPE_SCHEMA_VERSION", "GENOTYPE_TEXT_FILE",
    "NONE_OP", "AnyGenotype", "CellSearchSpace", "Entry", "Genotype", "NB201Genotype", "as_genotype", "best_op",
    "cells_to_genotype", "cells_to_nb201", "count_param_free", "derivation_rule", "derive_cell", "genotype_document",
    "genotype_from_dict", "genotype_from_document", "genotype_to_text", "load_genotype", "parse_genotype_text",
    "published_names", "published_path", "resolve_genotype_ref", "softmax",
]
