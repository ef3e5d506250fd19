"""Collapse: parameter-free ops in the derived normal cell on R-DARTS S2 and S3, DARTS vs GDAS vs ROME.

Runs the pipeline itself up to the derivation (nothing is retrained):
``snakemake --cores 2 --configfile benchmarks/configs/collapse.yaml --until derive`` (the
``collapse_bench`` preset: a sweep over spaces {s2, s3} x algorithms x 3 seeds on real CIFAR-10 at
CPU scale). Then it reads each run's genotype.json (the final count) and history.json (the count
of the cell derived after every epoch: the evolution) and writes the result JSON, the README table
and the plot.

    python -m benchmarks collapse                 # CPU scale (default)
    python -m benchmarks collapse --scale paper   # the R-DARTS search setting, GPU
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import pipeline, plots, report

NAME = "collapse"
CONFIGS = {"cpu": report.BENCH_DIR / "configs" / "collapse.yaml",
           "paper": report.BENCH_DIR / "configs" / "collapse_paper.yaml"}
BUDGET_MINUTES = {"cpu": 45.0, "paper": None}
NORMAL_ENTRIES = 8
PAPER = {
    "source": "ROME paper, parameter-free ops in the normal cell, R-DARTS spaces, CIFAR-10 (rome-method.md section 9)",
    "param_free_normal": {"s2": {"gdas": 6.0, "rome": 2.0}, "s3": {"gdas": 6.5, "rome": 2.0}},
    "of": NORMAL_ENTRIES,
}


def run_figures(run: dict[str, Any]) -> dict[str, Any]:
    geno = pipeline.read_genotype(run)
    history = pipeline.read_history(run)
    final = int((geno.get("n_param_free") or {}).get("normal"))
    curve = [int(h["n_param_free_normal"]) for h in history]
    if curve and curve[-1] != final:  # the loop and `rome derive` share one derivation: they must agree
        print(f"collapse: warning: {run['search']['space']}/{run['search']['algorithm']}/seed{run['seed']}: "
              f"genotype.json counts {final}, the last history epoch {curve[-1]}", file=sys.stderr)
    return {
        "space": run["search"]["space"], "algorithm": run["search"]["algorithm"], "seed": run["seed"],
        "param_free_normal": final, "curve": curve, "normal": geno.get("genotype", {}).get("normal"),
        "search_seconds": pipeline.read_search(run).get("seconds"),
    }


def summarize(rows: list[dict[str, Any]], spaces: Sequence[str], algorithms: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for space in spaces:
        for algo in algorithms:
            group = [r for r in rows if r["space"] == space and r["algorithm"] == algo]
            m, s = report.mean_std([r["param_free_normal"] for r in group])
            secs, _ = report.mean_std([r["search_seconds"] for r in group])
            out.append({"space": space, "algorithm": algo, "n_seeds": len(group),
                        "param_free_mean": round(m, 3), "param_free_std": round(s, 3),
                        "per_seed": [r["param_free_normal"] for r in sorted(group, key=lambda r: r["seed"])],
                        "search_seconds_mean": round(secs, 1),
                        "paper": PAPER["param_free_normal"].get(space, {}).get(algo)})
    return out


def collect(params: dict[str, Any]) -> dict[str, Any]:
    rows = [run_figures(r) for r in pipeline.runs(params)]
    sw, s = params["sweep"], params["search"]
    settings = {k: s[k] for k in ("k_samples", "epochs", "steps_per_epoch", "batch_size", "layers", "init_channels",
                                   "w_lr", "a_lr", "tau_max", "tau_min")}
    settings["data"] = {"dataset": params["data"]["dataset"], "root": params["data"]["root"],
                        "resize": params["data"]["resize"], "subset": params["data"]["subset"]}
    settings["spaces"], settings["seeds"] = list(sw["spaces"]), list(sw["seeds"])
    return {"settings": settings, "summary": summarize(rows, sw["spaces"], sw["algorithms"]), "runs": rows}


def table_markdown(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    s = f["settings"]
    rows = [[r["space"].upper(), r["algorithm"], r["n_seeds"], report.pm(r["param_free_mean"], r["param_free_std"]),
             ", ".join(map(str, r["per_seed"])), r["paper"], r["search_seconds_mean"]] for r in f["summary"]]
    header = ["space", "algorithm", "seeds", f"param-free ops of {NORMAL_ENTRIES} (mean ± std)", "per seed", "paper",
              "search s / run"]
    pl = f.get("pipeline") or {}
    timing = report.timing_line(pl, f.get("budget_minutes"))
    d = s["data"]
    lines = [f"Search: {s['layers']} cells, {s['init_channels']} channels, batch {s['batch_size']}, {s['epochs']} epochs x "
             f"{s['steps_per_epoch']} steps, ROME K={s['k_samples']}, data {d['dataset']} resized to {d['resize']} "
             f"(subset {d['subset']}), seeds {s['seeds']}.", "",
             report.markdown_table(header, rows), "", timing, "", report.provenance_line(doc)]
    return "\n".join(lines)


def plot(doc: dict[str, Any], path: Path) -> Path:
    f = doc["figures"]
    panels = []
    for space in f["settings"]["spaces"]:
        runs = [r for r in f["runs"] if r["space"] == space]
        series: dict[str, list[list[float]]] = {}
        for r in sorted(runs, key=lambda r: (r["algorithm"], r["seed"])):
            series.setdefault(r["algorithm"], []).append(r["curve"])
        epochs = max((len(r["curve"]) for r in runs), default=0)
        refs = {f"{algo.upper()} paper {v}": v for algo, v in PAPER["param_free_normal"].get(space, {}).items()}
        panels.append(plots.Panel(f"{space.upper()}: derived normal cell after each epoch",
                                  f"parameter-free ops (of {NORMAL_ENTRIES})", list(range(1, epochs + 1)), series, refs,
                                  ylim=(-0.3, NORMAL_ENTRIES + 0.3)))
    return plots.curves(panels, path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    pipeline.add_arguments(p, NAME, CONFIGS)


def main(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Path:
    return pipeline.run_benchmark(NAME, args, argv, collect, table_markdown, plot, CONFIGS, BUDGET_MINUTES, PAPER,
                                  until="derive")
