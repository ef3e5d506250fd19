"""``rome params [KEY]``: every param's effective value, where it came from (preset, params file,
--set), its type and allowed values, what it means (the schema's description) and which stages
read it (the stage table, rome.pipeline.spec). Not a stage: it reads params and prints them."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any

from rome.errors import RomeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", nargs="?", metavar="SECTION[.KEY]", help="a section (search) or one key (search.k_samples); default: all")
    parser.add_argument("--preset", metavar="NAME", help="show the params under this preset (= --set preset=NAME)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of text")


def schema_leaves(node: dict[str, Any], defs: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Dotted key -> the leaf's schema ($ref resolved, sibling description kept)."""
    out: dict[str, dict[str, Any]] = {}
    for key, sub in node.get("properties", {}).items():
        if "$ref" in sub:
            sub = {**defs[sub["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in sub.items() if k != "$ref"}}
        if sub.get("type") == "object" and "properties" in sub:
            out.update(schema_leaves(sub, defs, f"{prefix}{key}."))
        else:
            out[prefix + key] = sub
    return out


def allowed(leaf: dict[str, Any]) -> str:
    """The schema's constraints in a few words: 'integer >= 1', "one of ['v1', 'v2']"."""
    kinds = leaf.get("type", "any")
    text = " or ".join(kinds) if isinstance(kinds, list) else str(kinds)
    if "enum" in leaf:
        return f"one of {leaf['enum']}"
    bounds = [f"{op} {leaf[k]}" for k, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                                              ("exclusiveMaximum", "<")) if k in leaf]
    if "items" in leaf:
        items = leaf["items"]
        text += f" of {items.get('enum', items.get('type', 'any'))}"
    return text + (" " + ", ".join(bounds) if bounds else "")


def readers(key: str) -> list[str]:
    """Stages whose params (as the stage table tracks them) include ``key``."""
    from rome.pipeline.spec import STAGES

    section = key.split(".", 1)[0]
    return [name for name, spec in STAGES.items() if section in spec.sections or key in spec.top_level]


def main(args: argparse.Namespace) -> int:
    from rome.config import effective_params, schema

    overrides = [*([f"preset={args.preset}"] if args.preset else []), *args.overrides]
    path = Path(args.params)
    explicit = args.params != "params.yaml"
    values = effective_params(path if (explicit or path.is_file()) else None, overrides)
    sch = schema()
    leaves = schema_leaves(sch, sch.get("definitions", {}))
    keys = [k for k in leaves if not args.key or k == args.key or k.startswith(args.key + ".")]
    if not keys:
        sections = sorted({k.split(".")[0] for k in leaves})
        raise RomeError(f"rome params {args.key}: unknown key; expected a section ({', '.join(sections)}) or SECTION.KEY")
    rows = []
    for key in keys:
        value, origin = values.get(key, (None, "unset (no preset defines it)"))
        rows.append({"key": key, "value": value, "origin": origin, "allowed": allowed(leaves[key]),
                     "description": leaves[key].get("description", ""), "read_by": readers(key)})
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    for r in rows:
        read = ", ".join(r["read_by"]) or "no stage (does not change results)"
        print(f"{r['key']} = {json.dumps(r['value'], default=str)}    [{r['origin']}]")
        print(f"    {r['allowed']}; read by: {read}")
        for line in textwrap.wrap(r["description"], 96):
            print(f"    {line}")
    return 0


def run(*_: object) -> None:  # pragma: no cover - the CLI calls main
    raise RomeError("params is run through `rome params [KEY]`")
