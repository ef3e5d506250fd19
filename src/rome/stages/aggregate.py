"""``rome aggregate``: every run of the sweep -> per-run table, mean +- std and best per
(dataset, space, algorithm) as ROME reports results, DVC metrics, and plot CSVs with one
series per run (the search's accuracy and the retraining's test accuracy over epochs)."""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import statistics
from pathlib import Path
from typing import Any

from rome.artifacts import atomic_dir, provenance, read_json, write_json, write_text
from rome.config import deep_merge
from rome.csv_text import csv_text, read_csv_rows
from rome.errors import RomeError
from rome.outputs import LAYOUTS
from rome.paths import stage_dir
from rome.rounding import round_row

logger = logging.getLogger(__name__)

SECTIONS = ["sweep"]
SCHEMA_VERSION = 1
GROUP_KEYS = ("dataset", "space", "algorithm")


def sweep_runs(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Resolved params of every run in the sweep (the matrix dvc.yaml and the Snakefile expand)."""
    sw = params["sweep"]
    runs = []
    for dataset, space, algorithm, seed in itertools.product(sw["datasets"], sw["spaces"], sw["algorithms"], sw["seeds"]):
        runs.append(deep_merge(params, {"data": {"dataset": dataset}, "search": {"space": space, "algorithm": algorithm},
                                        "seed": seed}))
    return runs


def collect_run(run: dict[str, Any]) -> dict[str, Any]:
    """One row: the run's identity, its evaluation metrics and the derived cell's op counts."""
    ident = {"dataset": run["data"]["dataset"], "space": run["search"]["space"],
             "algorithm": run["search"]["algorithm"], "seed": run["seed"]}
    metrics_file = stage_dir(run, "evaluate") / "metrics.json"
    metrics = read_json(metrics_file, "evaluation metrics")
    row: dict[str, Any] = dict(ident)
    row.update({k: v for k, v in sorted(metrics.items()) if isinstance(v, (int, float)) and not isinstance(v, bool)})
    geno_file = stage_dir(run, "derive") / "genotype.json"
    if geno_file.is_file():
        geno = read_json(geno_file, "genotype")
        for cell, count in (geno.get("n_param_free") or {}).items():
            row[f"param_free_{cell}"] = count
        if geno.get("nb201_arch"):
            row["arch"] = geno["nb201_arch"]
    return row


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """mean, std (sample, 0 for one seed) and best of every numeric column per group."""
    out = []
    keyf = lambda r: tuple(r[k] for k in GROUP_KEYS)  # noqa: E731
    for key, group in itertools.groupby(sorted(rows, key=keyf), key=keyf):
        group = list(group)
        summary: dict[str, Any] = dict(zip(GROUP_KEYS, key))
        summary["n_seeds"] = len(group)
        numeric = [k for k in group[0] if k not in (*GROUP_KEYS, "seed") and isinstance(group[0][k], (int, float))]
        for col in numeric:
            values = [float(r[col]) for r in group if isinstance(r.get(col), (int, float))]
            summary[f"{col}_mean"] = round(statistics.fmean(values), 4)
            summary[f"{col}_std"] = round(statistics.stdev(values), 4) if len(values) > 1 else 0.0
            summary[f"{col}_best"] = round(max(values) if not col.startswith(("param_free", "latency", "flops", "params"))
                                           else min(values), 4)
        out.append(summary)
    return out


def _tagged(rows: list[dict[str, str]], run: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of one run's curve, named by the run: ``series`` is what DVC's ``series`` template
    colours by, so ``dvc plots show`` draws one line per run (not one zig-zag through all runs)."""
    tag = f"{run['data']['dataset']}/{run['search']['space']}/{run['search']['algorithm']}/seed{run['seed']}"
    return [{"series": tag, **r} for r in rows]


def run(params: dict[str, Any], out: Path, args: argparse.Namespace | None = None) -> Path:
    runs = sweep_runs(params)
    rows, history, train_curves = [], [], []
    for r in runs:
        try:
            rows.append(collect_run(r))
        except RomeError as exc:
            raise RomeError(f"aggregate: run seed{r['seed']} of {r['search']['algorithm']} is incomplete: {exc}") from None
        history += _tagged(read_csv_rows(stage_dir(r, "search") / "history.csv"), r)
        train_curves += _tagged(read_csv_rows(stage_dir(r, "train") / "summary.csv"), r)
    summary = summarize(rows)
    metrics = {"/".join(str(s[k]) for k in GROUP_KEYS): {k: v for k, v in s.items() if k not in GROUP_KEYS}
               for s in summary}
    out.mkdir(parents=True, exist_ok=True)
    # the CSVs a researcher reads keep the digits the measurement supports (rome.rounding)
    write_text(out / "runs.csv", csv_text([round_row(r) for r in rows]))
    write_text(out / "summary.csv", csv_text([round_row(s) for s in summary]))
    write_json(out / "metrics.json", metrics)
    with atomic_dir(out / "plots", LAYOUTS["aggregate plots"]) as tmp:
        write_text(tmp / "search_history.csv", csv_text(history) if history else "series,epoch\n")
        write_text(tmp / "train_summary.csv", csv_text(train_curves) if train_curves else "series,epoch\n")
    write_json(out / "aggregate.json", {"schema_version": SCHEMA_VERSION, "runs": len(rows),
                                        "provenance": provenance(params, SECTIONS, "aggregate")})
    for s in summary:
        name = "/".join(str(s[k]) for k in GROUP_KEYS)
        top1 = f"top1 {s.get('top1_mean', math.nan):.2f} +- {s.get('top1_std', math.nan):.2f} (best {s.get('top1_best', math.nan):.2f})"
        logger.info(f"aggregate: {name}: {s['n_seeds']} seed(s), {top1}")
    return out
