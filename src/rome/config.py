"""Resolve params: preset <- reference mode's values <- params.yaml <- --set overrides, validated against the one schema.

The schema (``rome/schema/params.schema.yaml``) is also what the Snakefile validates with, so
the CLI, DVC and Snakemake accept exactly the same files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from rome.errors import RomeError
from rome.algorithms.hyperparameters import apply_reference, reference_overrides

PRESETS_PACKAGE = "rome.presets"
SCHEMA_RESOURCE = ("rome.schema", "params.schema.yaml")
BASE_PRESET = "default"


MAX_ALIASES = 100  # a params file names a handful at most; a "billion laughs" file needs thousands
MAX_EXPANDED_NODES = 100_000  # the default preset has ~300 values
MAX_NESTING = 64  # params are two or three levels deep
SEED_MAX = 2**32 - 1  # numpy's seed range (torch takes 64 bits); the schema holds seeds to it


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader that reads numbers as YAML 1.2 does: PyYAML (YAML 1.1) takes ``1e6`` and ``1E-3``
    (no dot) for strings, so ``--set search.w_lr=1e6`` would fail the schema's ``type: number``.

    Params files are read as untrusted text too: a key given twice (PyYAML keeps the last silently)
    and more than ``MAX_ALIASES`` alias uses (an alias bomb expands exponentially) are refused."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.alias_count = 0
        self.expanded = 0  # nodes as if every alias were written out
        self.sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            node = super().compose_node(parent, index)
            self.expanded += self.sizes.get(id(node), 1)
        else:
            before = self.expanded
            node = super().compose_node(parent, index)
            self.expanded += 1
            self.sizes[id(node)] = self.expanded - before
        if self.alias_count > MAX_ALIASES or self.expanded > MAX_EXPANDED_NODES:
            raise yaml.constructor.ConstructorError(
                None, None, f"aliases (*name) expand beyond {MAX_ALIASES} uses or {MAX_EXPANDED_NODES} values; "
                "expected a plain params file", node.start_mark)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key!r} given twice (the first would be silently dropped)",
                            key_node.start_mark)
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)


Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """Every params source (presets, params files, ``--set`` values) is parsed with this one loader."""
    return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def check_values(value: Any, source: str, path: str = "", depth: int = 0) -> None:
    """Every number finite (nan, inf and 1e309 pass ``type: number`` but no key means them) and the
    nesting shallow; one line naming the key. Runs before the schema on every params source."""
    if depth > MAX_NESTING:
        raise RomeError(f"{source}: {path or '<top level>'}: nested deeper than {MAX_NESTING} levels; expected params")
    if isinstance(value, float) and not math.isfinite(value):
        raise RomeError(f"{source}: {path or '<top level>'} = {value}: expected a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            check_values(v, source, f"{path}.{k}" if path else str(k), depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_values(v, source, f"{path}[{i}]", depth + 1)


def short(value: Any, limit: int = 80) -> str:
    """A value for a one-line message: JSON, cut at ``limit`` characters (never the whole of a huge one)."""
    try:
        text = json.dumps(value, default=str)
    except (ValueError, RecursionError):
        text = repr(type(value))
    return text if len(text) <= limit else text[:limit] + "..."


@cache
def schema() -> dict[str, Any]:
    """The parsed JSON Schema (YAML) that every params source is checked against."""
    text = resources.files(SCHEMA_RESOURCE[0]).joinpath(SCHEMA_RESOURCE[1]).read_text()
    return yaml.safe_load(text)


def schema_path() -> Path:
    """File system path of the schema (for Snakemake's ``validate``)."""
    return Path(str(resources.files(SCHEMA_RESOURCE[0]).joinpath(SCHEMA_RESOURCE[1])))


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PRESETS_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """A preset's own overrides (``default`` is complete; others are partial)."""
    res = resources.files(PRESETS_PACKAGE).joinpath(f"{name}.yaml")
    if not res.is_file():
        raise RomeError(f"preset = {name!r}: unknown preset; expected one of {preset_names()}")
    return load_yaml(res.read_text()) or {}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``over`` wins. Lists and scalars are replaced, not merged."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def describe_error(err: jsonschema.ValidationError) -> str:
    """One line: the key, the value and what the schema allows (shared by the params and table files)."""
    key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        prefix = f"{key}." if err.absolute_path else ""
        return f"{prefix}{extra[0] if extra else '?'}: unknown key; expected one of {allowed}"
    expected = {
        "enum": lambda: f"one of {err.validator_value}",
        "type": lambda: f"type {err.validator_value}",
        "minimum": lambda: f">= {err.validator_value}",
        "maximum": lambda: f"<= {err.validator_value}",
        "exclusiveMinimum": lambda: f"> {err.validator_value}",
        "exclusiveMaximum": lambda: f"< {err.validator_value}",
        "minItems": lambda: f"at least {err.validator_value} item(s)",
        "uniqueItems": lambda: "no duplicate items",
        "minLength": lambda: f"at least {err.validator_value} character(s)",
    }.get(str(err.validator), lambda: f"a value the schema's {err.validator!r} allows")()
    return f"{key} = {short(err.instance)}: expected {expected}"


def validate(params: dict[str, Any], source: str) -> None:
    """Raise RomeError naming the source, the key, the value and what is allowed."""
    check_values(params, source)
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(params), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise RomeError(f"{source}: {describe_error(errors[0])}")


def _missing_keys(full: dict[str, Any], base: dict[str, Any], prefix: str = "") -> list[str]:
    missing = []
    for key, value in base.items():
        if key not in full:
            missing.append(prefix + key)
        elif isinstance(value, dict) and key != "subset":
            missing += _missing_keys(full[key], value, prefix + key + ".")
    return missing


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` -> (["section", "key"], value parsed as YAML)."""
    if "=" not in text:
        raise RomeError(f"--set {text!r}: expected KEY=VALUE, e.g. search.k_samples=7")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise RomeError(f"--set {text!r}: empty key")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return path, value


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(path):
        out = {part: out}
    return out


def read_params_file(path: str | Path) -> dict[str, Any]:
    """Parse params.yaml; one-line error on a missing file or YAML that is not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise RomeError(f"{p}: params file not found")
    try:
        data = load_yaml(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise RomeError(f"{p}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                        "expected a UTF-8 params file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem and ("twice" in problem or "alias" in problem) else ""
        raise RomeError(f"{p}: not valid YAML{where}{detail}") from None
    except RecursionError:
        raise RomeError(f"{p}: nested too deeply; expected a params file of sections and keys") from None
    if not isinstance(data, dict):
        raise RomeError(f"{p}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


Layer = tuple[str, dict[str, Any]]
"""(origin, partial params): one source of values; later layers win. Origins are plain strings
("preset default", "preset smoke", the params file's path, "--set"), so a new source (e.g. a
reference-mode layer) is one more entry in the list, and ``rome params`` shows it unchanged."""


def params_layers(file_params: dict[str, Any], overrides: list[str] | tuple[str, ...] = (),
                  source: str = "params") -> list[Layer]:
    """The validated layers, lowest first: default preset, selected preset, params file, --set."""
    source = str(source)  # callers may pass a Path (Snakemake's config files are Paths)
    validate(file_params, source)
    over: dict[str, Any] = {}
    for text in overrides:
        path, value = parse_override(text)
        over = deep_merge(over, _nest(path, value))
    validate(over, "--set")
    preset = over.get("preset", file_params.get("preset", BASE_PRESET))
    layers: list[Layer] = [(f"preset {BASE_PRESET}", {**load_preset(BASE_PRESET), "preset": BASE_PRESET})]
    if preset != BASE_PRESET:
        layers.append((f"preset {preset}", load_preset(preset)))
    layers.append((source, file_params))
    layers.append(("--set", over))
    return layers


def _leaves(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def user_keys(layers: list[Layer]) -> set[str]:
    """Dotted keys the user set (params file or ``--set``): reference mode never overrides them."""
    return {key for origin, layer in layers if not origin.startswith("preset ") for key in _leaves(layer)}


def leaf_origins(layers: list[Layer]) -> dict[str, str]:
    """Dotted leaf key -> the origin of the layer whose value wins."""
    origins: dict[str, str] = {}
    for origin, layer in layers:
        for key in _leaves(layer):
            origins[key] = origin
    return origins


def resolve(file_params: dict[str, Any], overrides: list[str] | tuple[str, ...] = (), source: str = "params") -> dict[str, Any]:
    """Merge default <- preset <- file <- overrides, validate each layer and the result."""
    return _resolve_layers(params_layers(file_params, overrides, source), source)


def _resolve_layers(layers: list[Layer], source: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for _, layer in layers:
        merged = deep_merge(merged, layer)
    preset = merged["preset"]
    # reference mode's values sit between the preset and the user (rome.algorithms.hyperparameters)
    apply_reference(merged, user_keys(layers))
    validate(merged, f"{source} (resolved with preset {preset!r})")
    missing = _missing_keys(merged, layers[0][1])
    if missing:
        raise RomeError(f"{source}: resolved params lack {missing}; the default preset must define every key")
    if merged["search"]["tau_min"] > merged["search"]["tau_max"]:
        s = merged["search"]
        raise RomeError(f"{source}: search.tau_min = {s['tau_min']}: expected <= search.tau_max ({s['tau_max']})")
    return merged


def effective_params(path: str | Path | None = "params.yaml",
                     overrides: list[str] | tuple[str, ...] = ()) -> dict[str, tuple[Any, str]]:
    """Every resolved leaf as {dotted key: (value, origin)} (``rome params``); ``path`` None: no file."""
    file_params = read_params_file(path) if path is not None else {}
    source = str(path) if path is not None else "params"
    layers = params_layers(file_params, overrides, source)
    resolved = _resolve_layers(layers, source)
    values = _leaves(resolved)
    origins = leaf_origins(layers)
    user = user_keys(layers)
    for key, (_, origin) in reference_overrides(resolved).items():  # "reference:<repo@commit:file:line>"
        if key not in user:
            origins[key] = origin
    return {key: (value, origins.get(key, "?")) for key, value in values.items()}


SWEEP_DIMENSIONS = (("data", "dataset", "datasets"), ("search", "space", "spaces"),
                    ("search", "algorithm", "algorithms"), (None, "seed", "seeds"))


def check_sweep_consistency(file_params: dict[str, Any], resolved: dict[str, Any], source: str) -> None:
    """A run-selecting key written in the params file must be one the sweep runs.

    dvc.yaml and the Snakefile run every item of ``sweep`` and pin each with ``--set``, so a file
    value outside the sweep (``dvc exp run -S search.algorithm=gdas`` with ``sweep.algorithms:
    [rome]``) would be silently ignored; refuse it and say which sweep key to change instead.
    """
    for section, key, sweep_key in SWEEP_DIMENSIONS:
        holder = file_params if section is None else file_params.get(section) or {}
        if key not in holder:
            continue
        swept = resolved["sweep"][sweep_key]
        if holder[key] not in swept:
            name = key if section is None else f"{section}.{key}"
            raise RomeError(f"{source}: {name} = {holder[key]!r} is not in sweep.{sweep_key} = {swept}; the pipeline "
                            f"runs the sweep, so set sweep.{sweep_key} (e.g. dvc exp run -S 'sweep.{sweep_key}=[{holder[key]}]')")


def load_params(path: str | Path = "params.yaml", overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The resolved, validated params every stage reads."""
    file_params = read_params_file(path)
    resolved = resolve(file_params, overrides, source=str(path))
    check_sweep_consistency(file_params, resolved, str(path))
    return resolved


def params_hash(params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a params (sub)dict: the audit key of an artifact."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()
