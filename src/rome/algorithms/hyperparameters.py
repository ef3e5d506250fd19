"""Reference mode's hyper-parameters: the registry's facts resolved against the params, with their origins.

Precedence of a ``search.*`` optimiser value (documented in README, "Reference mode"): a value the user set
(params file or ``--set``) wins; otherwise, under ``search.mode: reference``, the algorithm's reference value
(``AlgorithmSpec.reference_hparams``, each with the file and line it was read from); otherwise the preset's.
``rome.config.resolve`` applies it (``apply_reference``); the search stage logs what reference mode changed
(``reference_changes``) and writes the values with their origins into the artifact's provenance
(``provenance_block``), which ``rome audit`` prints. ``reference_overrides`` is the per-key view a
``rome params`` listing can show. Imports no torch: the params resolution runs it.
"""

from __future__ import annotations

from typing import Any

from rome.algorithms import find_algorithm
from rome.algorithms.registry import ReferenceHyperparameters

REFERENCE_ORIGIN = "reference"


def space_kind(space: str) -> str:
    """``nb201`` for NAS-Bench-201, ``darts`` for the DARTS-network spaces (darts, s1-s4)."""
    return "nb201" if space == "nb201" else "darts"


def reference_hparams(params: dict[str, Any]) -> ReferenceHyperparameters | None:
    """The reference facts for the params' algorithm and space, or None (controlled mode, or no reference code)."""
    search = params.get("search") or {}
    if search.get("mode") != "reference":
        return None
    spec = find_algorithm(str(search.get("algorithm")))
    if spec is None:
        return None
    return spec.reference_hparams.get(space_kind(str(search.get("space"))))


def reference_overrides(params: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """``{"search.<key>": (value, "reference:<owner/repo@commit:path:line>")}``: what reference mode sets for these
    params where the user did not set the key; empty in controlled mode and for algorithms without reference code."""
    facts = reference_hparams(params)
    if facts is None:
        return {}
    return {f"search.{key}": (fact.value, f"{REFERENCE_ORIGIN}:{fact.source}") for key, fact in facts.applied.items()}


def apply_reference(merged: dict[str, Any], user_keys: set[str]) -> dict[str, tuple[Any, Any, str]]:
    """Set each reference value the user did not set (``user_keys``: dotted keys from the params file and
    ``--set``) into ``merged`` in place; returns ``{key: (before, after, origin)}`` for the values it changed."""
    changed: dict[str, tuple[Any, Any, str]] = {}
    for key, (value, origin) in reference_overrides(merged).items():
        if key in user_keys:
            continue
        name = key.split(".", 1)[1]
        before = merged["search"].get(name)
        merged["search"][name] = value
        if before != value:
            changed[key] = (before, value, origin)
    return changed


def _preset_search(preset: str) -> dict[str, Any]:
    from rome.config import BASE_PRESET, deep_merge, load_preset  # lazy: rome.config imports this module

    base = load_preset(BASE_PRESET)
    merged = deep_merge(base, load_preset(preset)) if preset != BASE_PRESET else base
    return merged.get("search") or {}


def hyperparameter_origins(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every key reference mode sets, resolved: ``{key: {"value", "origin"}}`` with origin ``reference:<source>``
    (the reference value), ``params`` (the user's value, which won) or, where reference mode sets nothing for
    these params, nothing at all (empty dict)."""
    out: dict[str, dict[str, Any]] = {}
    for key, (ref_value, origin) in reference_overrides(params).items():
        value = params["search"][key.split(".", 1)[1]]
        out[key] = {"value": value, "origin": origin if value == ref_value else "params"}
    return out


def reference_changes(params: dict[str, Any]) -> str | None:
    """One log line naming every value reference mode changed from the preset's (and the user's values it kept),
    or None when it changed nothing."""
    if not reference_overrides(params):
        return None
    preset = _preset_search(str(params.get("preset", "default")))
    changed, kept = [], []
    for key, info in hyperparameter_origins(params).items():
        name = key.split(".", 1)[1]
        if info["origin"] == "params":
            kept.append(f"{key} = {info['value']}")
        elif preset.get(name) != info["value"]:
            changed.append(f"{key} {preset.get(name)} -> {info['value']} ({info['origin'].split(':', 1)[1]})")
    s = params["search"]
    line = (f"search: reference mode for {s['algorithm']} on {s['space']} changed "
            + ("; ".join(changed) if changed else "no value: the preset's equal its authors'"))
    if kept:
        line += f"; kept the user's {', '.join(kept)}"
    return line


def provenance_block(params: dict[str, Any]) -> dict[str, Any] | None:
    """The provenance entry of a reference-mode search: the resolved values with their origins, and the recorded
    facts reference mode does not apply (the authors' budget); None in controlled mode (artifacts unchanged)."""
    facts = reference_hparams(params)
    if facts is None:
        return None
    return {"resolved": hyperparameter_origins(params),
            "recorded_not_applied": {k: {"value": f.value, "source": f.source} for k, f in facts.recorded.items()}}
