"""``rome table NAME --scale S --estimate``: what building a table costs on this device, before building it.

Each distinct run configuration of the table is timed once (rome.search.estimate and, for tables
that retrain, rome.training.estimate: the real steps, warmed up, on this device) and multiplied by
its seeds; a run two rows share is counted once in the total. The runs' prepared data must exist
(``rome prepare`` is the cheap part; the timing needs the real image sizes and split lengths): a row
whose data is missing prints the one command that prepares it. Runs that already finished are
still counted (the figure is what the table costs from scratch) and marked done. Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rome.config import load_params
from rome.estimate import StageEstimate, duration
from rome.tables.definition import BASE_PARAMS_FILE, TABLES_DIR, Scale, Table
from rome.tables.runs import RowPlan, Run, stage_command, stage_overrides


@dataclass(frozen=True)
class RunEstimate:
    """One run configuration (all its seeds cost the same): its stages' projections."""

    stages: tuple[StageEstimate, ...]

    @property
    def seconds(self) -> float:
        return sum(s.total_seconds for s in self.stages)

    @property
    def fits(self) -> bool:
        return all(s.fits for s in self.stages)


def run_params(run: Run, stage: str) -> dict[str, Any]:
    return load_params(str(TABLES_DIR / BASE_PARAMS_FILE), stage_overrides(run, stage))


def estimate_run(run: Run) -> RunEstimate:
    """Time the run's search (and retraining, when the table retrains) on this device."""
    from rome.data.prepared import load_prepared
    from rome.paths import stream_cache_dir
    from rome.reproducibility import resolve_device, seed_everything
    from rome.search.estimate import estimate_search
    from rome.search.loop import SearchData
    from rome.sections import SearchConfig

    params = run_params(run, "search")
    seed_everything(params["seed"])
    device = resolve_device(params["device"])
    prepared = load_prepared(run.prepared.folder, stream_cache_dir(params))
    stages = [estimate_search(SearchConfig.from_params(params), params["seed"], params["data"]["dataset"],
                              SearchData.from_prepared(prepared), device)]
    if "train" in run.stages:
        from rome.training.estimate import estimate_train

        train = run_params(run, "train")
        seed_everything(train["seed"])
        stages.append(estimate_train(train, prepared, device, run.folder("derive") / "genotype.json"))
    return RunEstimate(tuple(stages))


def estimate_table(table: Table, scale: Scale, plans: list[RowPlan]) -> list[str]:
    """The report's lines: per row its per-seed figures and seeds, then the total over distinct runs."""
    lines = [f"# {table.name} at scale {scale.name}: estimated on this device (times from scratch)"]
    cache: dict[str, RunEstimate] = {}
    counted: set[str] = set()
    total, missing, no_fit = 0.0, [], []
    prepare: dict[str, str] = {}
    for plan in plans:
        row = plan.row.id
        if plan.skipped:
            lines.append(f"{row}: not run at this scale ({plan.skipped})")
            continue
        first = plan.runs[0]
        if not (first.prepared.folder / "manifest.json").is_file():
            missing.append(row)
            prepare.setdefault(first.prepared.id, stage_command(first, "prepare"))
            lines.append(f"{row}: no prepared data yet ({first.prepared.folder})")
            continue
        if first.id not in cache:
            cache[first.id] = estimate_run(first)
        est = cache[first.id]
        final = first.stages[-1]
        done = sum((r.folder(final)).is_dir() for r in plan.runs)
        parts = ", ".join(f"{s.stage.split()[0]} {duration(s.total_seconds)} ({s.seconds_per_iteration:.3g} s/it, "
                          f"peak {s.peak_mb:,.0f} MiB{'' if s.fits else ', DOES NOT FIT'})" for s in est.stages)
        lines.append(f"{row}: {len(plan.runs)} seed(s) x {duration(est.seconds)} = "
                     f"{duration(est.seconds * len(plan.runs))} [{parts}]; {done}/{len(plan.runs)} done")
        if any("stand-in" in s.stage for s in est.stages):
            lines[-1] += "; retraining timed on a stand-in cell (sep_conv_3x3 on every edge)"
        if not est.fits:
            no_fit.append(row)
        for r in plan.runs:
            if r.name not in counted:
                counted.add(r.name)
                total += est.seconds
    device = next(iter(cache.values())).stages[0].device if cache else "this device"
    lines.append(f"total: {duration(total)} on {device} for {len(counted)} distinct run(s)"
                 + (f"; not estimated (no prepared data): {', '.join(missing)}" if missing else "")
                 + (f"; DOES NOT FIT the device: {', '.join(no_fit)}" if no_fit else ""))
    if prepare:
        lines.append("prepare the missing data first (then estimate again):")
        lines += [f"  {cmd}" for cmd in prepare.values()]
    return lines
