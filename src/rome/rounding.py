"""How many digits a reported figure keeps: what the measurement supports, not what the float holds.

Why: ``97.49999957275391`` in runs.csv is a float artefact; a reader compares 97.50 with 97.38.
The rule, by the key's name (applied to the CSV reports: aggregate's runs.csv and summary.csv, the
paper tables' CSV; artifacts meant for programs, such as history.json, keep full precision):

* accuracies and errors in percent (``top1``, ``top5``, ``test_error``, NAS-Bench-201 accuracies):
  2 decimals (a 10,000-image test set resolves 0.01 %);
* accuracies as fractions (``*_acc``, 0..1): 4 decimals (the same 0.01 %);
* losses (``*loss*``): 4 significant digits;
* millions of parameters (``params_m``): 3 decimals (thousands of weights); FLOPs (``flops_m``),
  latency (``*_ms``), memory (``*_gb``, ``*_mb``): 2 decimals;
* anything else that is a float: 4 significant digits; integers and text unchanged.

A key's statistic suffix (``_mean``, ``_std``, ``_best``) rounds like the key itself.
"""

from __future__ import annotations

import math
from typing import Any

STAT_SUFFIXES = ("_mean", "_std", "_best")
PERCENT_KEYS = ("top1", "top5", "test_error", "best_top1")


def _base(key: str) -> str:
    for suffix in STAT_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (0 and non-finite values unchanged)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def round_value(key: str, value: Any) -> Any:
    """``value`` rounded by the rule above for a figure named ``key``; non-floats pass through."""
    if not isinstance(value, float) or not math.isfinite(value):
        return value
    base = _base(key)
    if base in PERCENT_KEYS or (base.startswith("nb201_") and ("test" in base or "valid" in base or "acc" in base)):
        return round(value, 2)
    if "loss" in base:
        return significant(value, 4)
    if base.endswith("_acc"):
        return round(value, 4)
    if base == "params_m":
        return round(value, 3)
    if base.endswith(("flops_m", "_ms", "_gb", "_mb")):
        return round(value, 2)
    return significant(value, 4)


def round_row(row: dict[str, Any]) -> dict[str, Any]:
    """Every value of a report row rounded by its key."""
    return {k: round_value(k, v) for k, v in row.items()}
