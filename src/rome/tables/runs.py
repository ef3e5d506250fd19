"""From a table row to the ``rome`` calls that produce it, at a scale.

A row at a scale resolves to one ``--set`` list per seed: the scale's preset, the row's dataset
(or the scale's stand-in for it), space, algorithm and overrides. Everything a run reads is in
that list, so it *is* the run's identity: the run folder is named by its hash
(``tables/runs/<scale>/<dataset>-<space>-<algorithm>-<hash>/seed<s>/<stage>``). Two rows, of one
table or of two, that resolve to the same list share one run, and a run that exists is reused by
DVC and Snakemake alike; changing one row's override changes only that row's hash.

Scaling keeps a table's structure and shrinks only sizes and epochs (the choice, documented in the
README): an epochs override is multiplied by the ratio of the scale's preset to the paper preset
for that key (rounded, at least 1), so the ablation's K x epochs = const survives at every scale;
an override of a size key (layers, channels, batch, steps, subsets, resolution) applies at paper
scale only, below it the scale's preset sizes every run.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from rome.config import BASE_PRESET, deep_merge, load_preset
from rome.errors import RomeError
from rome.tables.definition import BASE_PARAMS_FILE, TABLES_DIR, Row, Scale, Table

PAPER_PRESET = "paper"
RUNS_DIR = TABLES_DIR / "runs"
EPOCH_KEYS = ("search.epochs", "train.epochs")
SIZE_KEYS = ("data.resize", "data.subset", "search.batch_size", "search.layers", "search.init_channels",
             "search.steps_per_epoch", "train.batch_size", "train.layers", "train.init_channels",
             "train.steps_per_epoch", "evaluate.batch_size")
STAGES_UNTIL = {"search": ("search",), "derive": ("search", "derive"),
                "evaluate": ("search", "derive", "train", "evaluate")}
UPSTREAM = {"search": ("prepare",), "derive": ("search",), "train": ("prepare", "derive"),
            "evaluate": ("prepare", "train")}


def _preset_value(preset: str, key: str) -> Any:
    merged = deep_merge(load_preset(BASE_PRESET), load_preset(preset)) if preset != BASE_PRESET else load_preset(BASE_PRESET)
    node: Any = merged
    for part in key.split("."):
        node = node[part]
    return node


def scaled_overrides(row: Row, scale: Scale) -> list[tuple[str, Any]]:
    """The row's overrides at ``scale``: epochs scaled by the preset ratio, sizes dropped below paper scale."""
    out: list[tuple[str, Any]] = []
    for key, value in row.overrides:
        if scale.preset == PAPER_PRESET:
            out.append((key, value))
        elif key in EPOCH_KEYS:
            ratio = _preset_value(scale.preset, key) / _preset_value(PAPER_PRESET, key)
            out.append((key, max(1, round(value * ratio))))
        elif key not in SIZE_KEYS and not any(key.startswith(f"{k}.") for k in SIZE_KEYS):
            out.append((key, value))
    return out


def format_value(value: Any) -> str:
    """A value as ``--set`` parses it (YAML 1.2 flow style)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _digest(flags: list[tuple[str, Any]]) -> str:
    text = json.dumps([[k, v] for k, v in flags], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Prepared:
    """The prepared data one or more runs read."""

    id: str
    scale: str
    flags: tuple[tuple[str, Any], ...]

    @property
    def root(self) -> Path:
        return RUNS_DIR / self.scale / self.id

    @property
    def folder(self) -> Path:
        return self.root / "prepare"

    def set_flags(self) -> list[tuple[str, Any]]:
        return [*self.flags, ("results_dir", str(self.root / "out"))]


@dataclass(frozen=True)
class Run:
    """One search (and its derivation, retraining, evaluation) of one row configuration, one seed."""

    id: str
    scale: str
    seed: int
    flags: tuple[tuple[str, Any], ...]
    prepared: Prepared
    stages: tuple[str, ...]

    @property
    def root(self) -> Path:
        return RUNS_DIR / self.scale / self.id

    def folder(self, stage: str) -> Path:
        return self.prepared.folder if stage == "prepare" else self.root / f"seed{self.seed}" / stage

    def set_flags(self) -> list[tuple[str, Any]]:
        return [*self.flags, ("seed", self.seed), ("results_dir", str(self.root / "out"))]

    @property
    def name(self) -> str:
        """Unique over all tables at a scale: the stage names of the generated pipelines use it."""
        return f"{self.id}-seed{self.seed}"


@dataclass(frozen=True)
class RowPlan:
    """A row at a scale: its runs (one per seed), or why it cannot run there."""

    row: Row
    runs: tuple[Run, ...]
    skipped: str | None = None


def plan_row(table: Table, row: Row, scale: Scale) -> RowPlan:
    """The runs of one row at ``scale``."""
    base: list[tuple[str, Any]] = [("preset", scale.preset), ("deterministic", scale.deterministic)]
    if row.dataset in scale.datasets and scale.datasets[row.dataset] is None:
        return RowPlan(row, (), skipped=f"no {row.dataset} data at scale {scale.name} (tables/scales.yaml)")
    stand_in = scale.datasets.get(row.dataset) or {"data.dataset": row.dataset}
    data_flags = sorted(stand_in.items())
    data_overrides = [(k, v) for k, v in scaled_overrides(row, scale) if k.startswith("data.")]
    prep_flags = base + data_flags + data_overrides
    dataset = dict(data_flags)["data.dataset"]
    prepared = Prepared(id=f"{dataset}-data-{_digest(prep_flags)}", scale=scale.name, flags=tuple(prep_flags))
    run_flags = prep_flags + [("search.space", row.space), ("search.algorithm", row.algorithm)] + [
        (k, v) for k, v in scaled_overrides(row, scale) if not k.startswith("data.")]
    run_id = f"{dataset}-{row.space}-{row.algorithm}-{_digest(run_flags)}"
    seeds = min(table.seeds, scale.seeds) if scale.seeds else table.seeds
    stages = STAGES_UNTIL[table.until]
    runs = tuple(Run(run_id, scale.name, seed, tuple(run_flags), prepared, stages) for seed in range(seeds))
    return RowPlan(row, runs)


def plan_table(table: Table, scale: Scale) -> list[RowPlan]:
    return [plan_row(table, row, scale) for row in table.rows]


def stage_command(run: Run, stage: str) -> str:
    """The one ``rome`` call of a stage of a run (prepare: of its data), as DVC and Snakemake run it."""
    flags = run.prepared.set_flags() if stage == "prepare" else run.set_flags()
    parts = ["rome", stage, "--params", str(TABLES_DIR / BASE_PARAMS_FILE)]
    for key, value in flags:
        parts += ["--set", f"{key}={format_value(value)}"]
    if stage != "prepare":
        for up in UPSTREAM[stage]:
            parts += ["--input", f"{up}={run.folder(up)}"]
    parts += ["--out", str(run.folder(stage))]
    return shlex.join(parts)


def audit_command(run: Run, stage: str) -> str:
    """``rome audit`` of a run's stage folder against the run's own params, data and DVC lock."""
    parts = ["rome", "audit", str(run.folder(stage)), "--params", str(TABLES_DIR / BASE_PARAMS_FILE)]
    for key, value in run.set_flags():
        parts += ["--set", f"{key}={format_value(value)}"]
    parts += ["--data", str(run.prepared.folder), "--dvc-lock", str(RUNS_DIR.parent / "pipelines" / run.scale / "dvc.lock")]
    return shlex.join(parts)


def stage_overrides(run: Run, stage: str) -> list[str]:
    """The ``--set`` items of a stage (for resolving the run's params in-process)."""
    flags = run.prepared.set_flags() if stage == "prepare" else run.set_flags()
    return [f"{k}={format_value(v)}" for k, v in flags]


def unique_runs(plans: list[RowPlan]) -> list[Run]:
    """Every distinct run of some row plans, in first-seen order, each with every stage a plan needs
    (a run the memory table stops after search and the S0 table retrains is one run, retrained)."""
    seen: dict[str, Run] = {}
    for plan in plans:
        for run in plan.runs:
            known = seen.setdefault(run.name, run)
            if len(run.stages) > len(known.stages):
                seen[run.name] = replace(known, stages=run.stages)
    return list(seen.values())


def run_status(run: Run) -> str:
    """``done`` (its last stage's folder exists), ``partial: <stages done>``, or ``missing``."""
    finished = [stage for stage in run.stages if run.folder(stage).is_dir()]
    if finished == list(run.stages):
        return "done"
    return f"partial: {', '.join(finished)} done" if finished else "missing"


def dump_plan(plans: list[RowPlan]) -> str:
    """A readable plan (``rome table --plan``): per row, each run folder with whether it exists
    (done / partial / missing), and a count of the row's finished seeds."""
    doc: dict[str, Any] = {}
    for p in plans:
        if p.skipped:
            doc[p.row.id] = p.skipped
            continue
        status = {str(r.root / f"seed{r.seed}"): run_status(r) for r in p.runs}
        done = sum(v == "done" for v in status.values())
        doc[f"{p.row.id} ({done}/{len(p.runs)} done)"] = status
    return yaml.safe_dump(doc, sort_keys=False, width=200)
