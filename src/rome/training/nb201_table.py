"""Score a NAS-Bench-201 cell by looking its arch string up in a benchmark table (CSV).

The table has an ``arch`` column (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``) and, per dataset,
``<dataset>_valid`` and ``<dataset>_test`` accuracy columns in percent (the layout of
/work/shared/data/nb201_12epoch.csv); an ``index`` column is reported when present.
"""

from __future__ import annotations

import csv
from pathlib import Path

from rome.errors import RomeError

ARCH_COLUMN = "arch"


def columns_for(dataset: str) -> tuple[str, str]:
    return f"{dataset}_valid", f"{dataset}_test"


def lookup(table: str | Path, arch: str, dataset: str) -> dict[str, float | int]:
    """Valid/test accuracy (%) of ``arch`` for ``dataset``: keys nb201_<dataset>_valid/_test (+ nb201_index)."""
    table = Path(table)
    if not table.is_file():
        raise RomeError(f"evaluate.benchmark_table = {str(table)!r}: file not found; expected a NAS-Bench-201 CSV")
    valid_col, test_col = columns_for(dataset)
    wanted = arch.strip()
    with open(table, newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in (ARCH_COLUMN, valid_col, test_col) if c not in header]
        if missing:
            raise RomeError(f"{table}: missing column(s) {missing}; expected columns {ARCH_COLUMN!r}, "
                            f"{valid_col!r}, {test_col!r} (evaluate.benchmark_dataset = {dataset!r}), "
                            f"found {header}")
        for line, row in enumerate(reader, start=2):
            if (row[ARCH_COLUMN] or "").strip() != wanted:
                continue
            try:
                out: dict[str, float | int] = {f"nb201_{valid_col}": float(row[valid_col]),
                                               f"nb201_{test_col}": float(row[test_col])}
            except (TypeError, ValueError):
                raise RomeError(f"{table}: line {line}: {valid_col}/{test_col} = "
                                f"{row[valid_col]!r}/{row[test_col]!r}; expected numbers (accuracy in %)") from None
            if row.get("index", "").strip().isdigit():
                out["nb201_index"] = int(row["index"])
            return out
    raise RomeError(f"{table}: arch {wanted!r} not found in column {ARCH_COLUMN!r}; "
                    f"expected a NAS-Bench-201 arch string listed in the table")
