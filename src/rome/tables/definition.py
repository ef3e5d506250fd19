"""Paper tables as data: ``tables/<name>.yaml`` (rows, seeds, metrics, published figures) and
``tables/scales.yaml`` (smoke / cpu / paper), read into frozen dataclasses with one-line errors.

A table file is checked against ``rome/schema/table.schema.yaml`` and then against the project's
registries: a row's algorithm, space and dataset must exist, every override key must be a params
key, and every row must give the paper's figure (or ``null`` with a reason) for every metric, so a
report can never show a blank where a published value was forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from rome.config import describe_error, load_yaml, schema
from rome.errors import RomeError

TABLES_DIR = Path("tables")
SCALES_FILE = "scales.yaml"
BASE_PARAMS_FILE = "base.yaml"
SCHEMA_RESOURCE = ("rome.schema", "table.schema.yaml")
SCALE_KEYS = {"preset", "seeds", "deterministic", "datasets", "description"}


@dataclass(frozen=True)
class Published:
    value: float | None
    std: float | None
    source: str


@dataclass(frozen=True)
class Metric:
    name: str
    label: str


@dataclass(frozen=True)
class Row:
    """One line of a table: a configuration searched (and retrained) ``seeds`` times."""

    id: str
    label: str
    dataset: str
    space: str
    algorithm: str
    overrides: tuple[tuple[str, Any], ...]
    published: dict[str, Published]


@dataclass(frozen=True)
class Table:
    name: str
    path: Path
    title: str
    source: str
    note: str
    metrics: tuple[Metric, ...]
    seeds: int
    until: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Scale:
    """How big a table is run: the preset that sizes every run, seeds per row (at most the
    table's), and which data stand in for each dataset (``None``: not available at this scale)."""

    name: str
    preset: str
    seeds: int | None
    deterministic: bool
    datasets: dict[str, dict[str, Any] | None]
    description: str


@cache
def table_schema() -> dict[str, Any]:
    text = resources.files(SCHEMA_RESOURCE[0]).joinpath(SCHEMA_RESOURCE[1]).read_text()
    return yaml.safe_load(text)


def _read_yaml(path: Path, what: str) -> Any:
    if not path.is_file():
        raise RomeError(f"{path}: no such {what}")
    try:
        return load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise RomeError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:200]})") from None


def table_names(root: Path = TABLES_DIR) -> list[str]:
    """Every table definition in ``root`` (all YAML files but the scales and base-params files)."""
    return sorted(p.stem for p in root.glob("*.yaml") if p.name not in (SCALES_FILE, BASE_PARAMS_FILE))


def _params_key_known(key: str) -> bool:
    """Whether ``section.key`` (or a top-level key) is a params key of the schema."""
    node: dict[str, Any] = schema()
    for part in key.split("."):
        props = node.get("properties", {})
        if part not in props:
            return False
        node = props[part]
        if "$ref" in node:
            node = {}
    return True


def _check_row(path: Path, row_id: str, raw: dict[str, Any], defaults: dict[str, Any],
               metric_names: list[str]) -> Row:
    from rome.algorithms import algorithm_names
    from rome.spaces.registry import space_names

    where = f"{path}: rows.{row_id}"
    fields = {k: raw.get(k, defaults.get(k)) for k in ("dataset", "space", "algorithm")}
    for key, value in fields.items():
        if value is None:
            raise RomeError(f"{where}.{key}: missing (and no defaults.{key}); expected a {key} name")
    if fields["algorithm"] not in algorithm_names():
        raise RomeError(f"{where}.algorithm = {fields['algorithm']!r}: unknown algorithm; "
                        f"expected one of {list(algorithm_names())}")
    if fields["space"] not in space_names():
        raise RomeError(f"{where}.space = {fields['space']!r}: unknown space; expected one of {list(space_names())}")
    overrides = {**(defaults.get("overrides") or {}), **(raw.get("overrides") or {})}
    for key in overrides:
        if key in ("data.dataset", "search.space", "search.algorithm", "seed", "preset", "results_dir"):
            raise RomeError(f"{where}.overrides.{key}: set by the row or the scale, not an override; "
                            f"use the row's dataset/space/algorithm fields")
        if not _params_key_known(key):
            raise RomeError(f"{where}.overrides.{key}: not a params key; expected section.key as in params.yaml")
    published = raw["published"]
    missing = [m for m in metric_names if m not in published]
    if missing:
        raise RomeError(f"{where}.published: no published value for {missing[0]!r}; expected an entry "
                        f"{{value: <number or null>, source: ...}} for each of {metric_names}")
    extra = [m for m in published if m not in metric_names]
    if extra:
        raise RomeError(f"{where}.published.{extra[0]}: not a metric of this table; expected one of {metric_names}")
    return Row(id=row_id, label=raw["label"], dataset=fields["dataset"], space=fields["space"],
               algorithm=fields["algorithm"], overrides=tuple(sorted(overrides.items())),
               published={m: Published(p["value"], p.get("std"), p["source"]) for m, p in published.items()})


def load_table(name: str, root: Path = TABLES_DIR) -> Table:
    """Read and check ``<root>/<name>.yaml``; every problem is one line naming the file and key."""
    path = root / f"{name}.yaml"
    if not path.is_file():
        raise RomeError(f"table {name!r}: no file {path}; expected one of {table_names(root)}")
    doc = _read_yaml(path, "table definition")
    if not isinstance(doc, dict):
        raise RomeError(f"{path}: top level is not a mapping; expected a table definition")
    errors = sorted(jsonschema.Draft7Validator(table_schema()).iter_errors(doc),
                    key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise RomeError(f"{path}: {describe_error(errors[0])}")
    metric_names = [m["name"] for m in doc["metrics"]]
    defaults = doc.get("defaults") or {}
    rows = tuple(_check_row(path, rid, raw, defaults, metric_names) for rid, raw in doc["rows"].items())
    return Table(name=name, path=path, title=doc["title"], source=doc["source"], note=doc.get("note", ""),
                 metrics=tuple(Metric(m["name"], m["label"]) for m in doc["metrics"]), seeds=doc["seeds"],
                 until=doc["until"], rows=rows)


def load_scales(root: Path = TABLES_DIR) -> dict[str, Scale]:
    """``tables/scales.yaml``: name -> Scale, checked key by key."""
    from rome.config import preset_names

    path = root / SCALES_FILE
    doc = _read_yaml(path, "scales file")
    if not isinstance(doc, dict) or not doc:
        raise RomeError(f"{path}: expected a mapping of scale name -> {{preset, seeds, datasets}}")
    scales: dict[str, Scale] = {}
    for name, raw in doc.items():
        if not isinstance(raw, dict):
            raise RomeError(f"{path}: {name}: expected a mapping with keys {sorted(SCALE_KEYS)}")
        unknown = set(raw) - SCALE_KEYS
        if unknown:
            raise RomeError(f"{path}: {name}.{sorted(unknown)[0]}: unknown key; expected one of {sorted(SCALE_KEYS)}")
        if raw.get("preset") not in preset_names():
            raise RomeError(f"{path}: {name}.preset = {raw.get('preset')!r}: unknown preset; expected one of {preset_names()}")
        seeds = raw.get("seeds")
        if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
            raise RomeError(f"{path}: {name}.seeds = {seeds!r}: expected a positive integer or null (the table's)")
        datasets = raw.get("datasets") or {}
        for ds, sub in datasets.items():
            if sub is not None and (not isinstance(sub, dict) or "data.dataset" not in sub):
                raise RomeError(f"{path}: {name}.datasets.{ds}: expected null (not available) or a mapping of "
                                f"data.* overrides with data.dataset")
        scales[name] = Scale(name=name, preset=raw["preset"], seeds=seeds, deterministic=bool(raw.get("deterministic", False)),
                             datasets=dict(datasets), description=str(raw.get("description", "")))
    return scales


def get_scale(name: str, root: Path = TABLES_DIR) -> Scale:
    scales = load_scales(root)
    if name not in scales:
        raise RomeError(f"--scale {name!r}: unknown scale; expected one of {list(scales)} ({root / SCALES_FILE})")
    return scales[name]
