"""Run a benchmark through the project's own pipeline (Snakemake on a params file) and read what it wrote.

Benchmarks 2 and 3 are sweeps: a params file under ``benchmarks/configs/`` selects a bench preset
(algorithms x seeds x spaces) and a ``results_dir`` under ``benchmarks/.work/`` (gitignored); the
Snakefile passes that file to every ``rome`` call. Nothing here re-implements a stage: this module
starts ``snakemake``, times it, and reads the artifacts (search history, genotype.json, evaluate
metrics, the aggregate's runs.csv / summary.csv) back.

Jobs: ``--cores`` Snakemake jobs run side by side, each with ``--threads-per-job`` torch threads
(OMP_NUM_THREADS), so small networks keep every core busy without oversubscribing them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import report
from rome.artifacts import read_json
from rome.config import load_params
from rome.errors import RomeError
from rome.paths import run_record_path, stage_dir
from rome.stages.aggregate import sweep_runs


@dataclass
class PipelineRun:
    """What one ``snakemake`` invocation did: its command, wall time and the machine load around it."""

    command: list[str]
    seconds: float
    fresh: bool
    load_before: list[float] | None
    load_after: list[float] | None

    def as_dict(self) -> dict[str, Any]:
        shown = ["snakemake", *self.command[1:]]  # the executable's name, not this machine's path to it
        return {"command": " ".join(shown), "wall_seconds": round(self.seconds, 1), "fresh": self.fresh,
                "load_average_before": self.load_before, "load_average_after": self.load_after}


def work_root(params: dict[str, Any]) -> Path:
    """The folder a fresh run clears: results_dir's parent (results/ + reports/), under benchmarks/.work only."""
    root = (report.REPO / params["results_dir"]).resolve().parent
    work = (report.BENCH_DIR / ".work").resolve()
    if work not in root.parents:
        raise RomeError(f"results_dir = {params['results_dir']!r}: a benchmark's results must lie under {work} "
                        "(it is cleared for a fresh run)")
    return root


def snakemake_command(config: Path, cores: int, until: str | None = None, keep: bool = False) -> list[str]:
    """The sweep's command line. ``keep`` (``--reuse``) reruns only missing outputs and those older than their
    inputs: a params file that differs only in what the sweep covers (more seeds, another path to the same
    settings) then extends a finished sweep instead of redoing it. Whoever changes settings runs fresh."""
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe) if exe.exists() else (shutil.which("snakemake") or "snakemake"),
           "--cores", str(cores), "--configfile", str(config), "--rerun-incomplete", "--printshellcmds"]
    if keep:
        cmd += ["--rerun-triggers", "mtime", "input"]
    if until:
        cmd += ["--until", until]
    return cmd


def run_snakemake(config: Path, params: dict[str, Any], *, cores: int, threads_per_job: int, fresh: bool,
                  until: str | None = None, log_file: Path | None = None) -> PipelineRun:
    """Run the sweep of ``config`` (after clearing its work folder when ``fresh``); raise on failure."""
    if fresh:
        root = work_root(params)
        if root.exists():
            shutil.rmtree(root)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `rome` of this environment
    env["OMP_NUM_THREADS"] = str(threads_per_job)
    env.setdefault("WANDB_MODE", "disabled")
    env.setdefault("WANDB_SILENT", "true")
    cmd = snakemake_command(config, cores, until, keep=not fresh)
    load_before = report.machine()["load_average_1_5_15"]
    t0 = time.perf_counter()
    log = open(log_file, "w") if log_file else None  # noqa: SIM115
    try:
        proc = subprocess.run(cmd, cwd=report.REPO, env=env, stdout=log or sys.stderr, stderr=subprocess.STDOUT)
    finally:
        if log:
            log.close()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        where = f"; see {log_file}" if log_file else ""
        raise RomeError(f"{' '.join(cmd)}: exited {proc.returncode}{where} (and logs/<stage>/*.log)")
    return PipelineRun(cmd, seconds, fresh, load_before, report.machine()["load_average_1_5_15"])


def resolved(config: Path) -> dict[str, Any]:
    """The params the Snakefile resolves from ``config`` (relative to the repository root)."""
    path = config if config.is_absolute() else report.REPO / config
    params = load_params(path)
    if not Path(params["results_dir"]).is_absolute():
        params["results_dir"] = str(report.REPO / params["results_dir"])
    return params


def runs(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Resolved params of every run of the sweep (as the aggregate stage enumerates them)."""
    return sweep_runs(params)


def read_history(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The search's per-epoch rows (history.json)."""
    return read_json(stage_dir(run, "search") / "history.json", "search history")["epochs"]


def read_genotype(run: dict[str, Any]) -> dict[str, Any]:
    return read_json(stage_dir(run, "derive") / "genotype.json", "genotype")


def read_search(run: dict[str, Any]) -> dict[str, Any]:
    """search.json plus the search's wall time, which lives in its run record (state/), not the artifact."""
    doc = read_json(stage_dir(run, "search") / "search.json", "search summary")
    record = run_record_path(run, "search")
    doc["seconds"] = read_json(record, "search run record").get("seconds") if record.is_file() else None
    return doc


def read_metrics(run: dict[str, Any]) -> dict[str, Any]:
    return read_json(stage_dir(run, "evaluate") / "metrics.json", "evaluation metrics")


def add_arguments(p: argparse.ArgumentParser, name: str, configs: dict[str, Path]) -> None:
    """The options every pipeline benchmark takes."""
    p.add_argument("--scale", default="cpu", choices=sorted(configs),
                   help="cpu (default: this machine's scale) or paper (the paper's setting, GPU, hours)")
    p.add_argument("--config", type=Path, default=None,
                   help="params file to run instead of the scale's (benchmarks/configs/)")
    p.add_argument("--cores", type=int, default=2, help="snakemake --cores: parallel jobs (default %(default)s)")
    p.add_argument("--threads-per-job", type=int, default=1,
                   help="torch threads of each job, OMP_NUM_THREADS (default %(default)s)")
    p.add_argument("--reuse", action="store_true", help="keep existing outputs: snakemake runs only what is missing or older than its inputs, "
                   "not what a params change would rerun (run fresh after changing settings)")
    p.add_argument("--no-run", action="store_true", help="only read the existing outputs (no snakemake)")
    p.add_argument("--out", type=Path, default=None, help=f"result JSON (default: benchmarks/results/{name}[_<scale>].json)")
    p.add_argument("--no-readme", action="store_true", help="do not regenerate the README table and plot")


def run_benchmark(name: str, args: argparse.Namespace, argv: Sequence[str] | None,
                  collect_fn: Callable[[dict[str, Any]], dict[str, Any]],
                  table_fn: Callable[[dict[str, Any]], str], plot_fn: Callable[[dict[str, Any], Path], Path],
                  configs: dict[str, Path], budgets: dict[str, float | None], paper: dict[str, Any],
                  until: str | None = None) -> Path:
    """Shared by the pipeline benchmarks: run the sweep, read it back, write JSON + README table + plot."""
    config = args.config or configs[args.scale]
    params = resolved(config)
    rel_config = config.resolve().relative_to(report.REPO) if config.resolve().is_relative_to(report.REPO) else config
    # results/<name>.json for the default CPU scale, <name>_paper.json, or <name>_<config stem>.json
    suffix = "" if args.scale == "cpu" and args.config is None else f"_{args.scale if args.config is None else config.stem}"
    run_info = None
    if not args.no_run:
        work_log = work_root(params).parent / f"{name}{suffix}.snakemake.log"
        work_log.parent.mkdir(parents=True, exist_ok=True)
        print(f"{name}: snakemake on {rel_config} (log {work_log})", file=sys.stderr, flush=True)
        run_info = run_snakemake(rel_config, params, cores=args.cores, threads_per_job=args.threads_per_job,
                                 fresh=not args.reuse, until=until, log_file=work_log).as_dict()
        run_info["cores"], run_info["threads_per_job"] = args.cores, args.threads_per_job
        print(f"{name}: pipeline finished in {run_info['wall_seconds'] / 60:.1f} min", file=sys.stderr, flush=True)
    figures = collect_fn(params)
    figures["scale"] = args.scale
    figures["config"] = str(rel_config)
    figures["pipeline"] = run_info
    figures["budget_minutes"] = budgets.get(args.scale)
    doc = report.result_document(name, report.command_line(name, argv), figures, paper)
    out = args.out or report.RESULTS_DIR / f"{name}{suffix}.json"
    report.write_result(doc, out)
    if not args.no_readme:
        png = plot_fn(doc, out.with_suffix(".png"))
        body = table_fn(doc)
        if png.resolve().is_relative_to(report.BENCH_DIR):
            body += f"\n\n![{name}{suffix}]({png.resolve().relative_to(report.BENCH_DIR).as_posix()})"
        report.update_readme(f"{name}{suffix}", body)
    return out
