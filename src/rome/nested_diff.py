"""Where two nested mappings (params, identities) differ, leaf by leaf, as dotted keys."""

from __future__ import annotations

from typing import Any


def leaf_differences(old: Any, new: Any, absent: Any = None, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every differing leaf, keys sorted; ``absent`` stands for a missing key."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(set(old) | set(new)):
            out += leaf_differences(old.get(key, absent), new.get(key, absent), absent, f"{prefix}{key}.")
        return out
    return [] if old == new else [(prefix[:-1], old, new)]
