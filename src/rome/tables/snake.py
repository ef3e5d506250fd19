"""What the Snakemake table rules (workflow/rules/tables.smk) look up: every run of every table at
every scale by its folder's wildcards, and each report's inputs. The rules run the same ``rome``
calls as the generated DVC stages (``rome.tables.runs.stage_command``)."""

from __future__ import annotations

from functools import cache

from rome.tables.definition import load_scales, load_table, table_names
from rome.tables.report import report_inputs
from rome.tables.runs import RUNS_DIR, Run, RowPlan, plan_table, stage_command, unique_runs


@cache
def plans(scale: str, table: str) -> tuple[RowPlan, ...]:
    return tuple(plan_table(load_table(table), load_scales()[scale]))


@cache
def runs() -> dict[tuple[str, str, int], Run]:
    """(scale, run id, seed) -> run, over every table and scale."""
    out: dict[tuple[str, str, int], Run] = {}
    for scale in load_scales():
        every = [p for name in table_names() for p in plans(scale, name)]
        for run in unique_runs(every):
            out[(run.scale, run.id, run.seed)] = run
    return out


@cache
def prepared() -> dict[tuple[str, str], Run]:
    """(scale, data id) -> a run that reads it (its prepare command is the data's)."""
    return {(r.scale, r.prepared.id): r for r in runs().values()}


def run_of(scale: str, run_id: str, seed: str | int) -> Run:
    return runs()[(scale, run_id, int(seed))]


def command(scale: str, run_id: str, seed: str | int, stage: str) -> str:
    return stage_command(run_of(scale, run_id, seed), stage)


def gpus(scale: str, run_id: str, seed: str | int, stage: str) -> int:
    """A table run's search or train job: one GPU per process (``search.nproc`` / ``train.nproc``
    of the run's resolved params; ``rome`` runs itself under torchrun when it is > 1)."""
    from rome.config import load_params
    from rome.tables.runs import BASE_PARAMS_FILE, TABLES_DIR, format_value

    run = run_of(scale, run_id, seed)
    params = load_params(TABLES_DIR / BASE_PARAMS_FILE, [f"{k}={format_value(v)}" for k, v in run.set_flags()])
    return int(params[stage]["nproc"])


def prepare_command(scale: str, data_id: str) -> str:
    return stage_command(prepared()[(scale, data_id)], "prepare")


def upstream(scale: str, run_id: str, seed: str | int, stage: str) -> dict[str, str]:
    """The upstream folders of a run's stage, by stage name (the rule's named inputs)."""
    from rome.pipeline.spec import STAGES

    run = run_of(scale, run_id, seed)
    return {u: str(run.folder(u)) for u in STAGES[stage].upstream}


def report_input_files(scale: str, table: str) -> list[str]:
    return [f"tables/{table}.yaml", "tables/scales.yaml",
            *(str(p) for p in report_inputs(load_table(table), list(plans(scale, table))))]


__all__ = ["RUNS_DIR", "command", "gpus", "prepare_command", "report_input_files", "run_of", "runs", "upstream"]
