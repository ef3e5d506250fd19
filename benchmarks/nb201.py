"""Search quality on NAS-Bench-201: ROME, GDAS, DARTS, PC-DARTS and random sampling, looked up in an NB201 table.

Runs the pipeline itself: ``snakemake --cores 2 --configfile benchmarks/configs/nb201.yaml`` (the
``nb201_bench`` preset: a sweep over algorithms x seeds on real CIFAR-10 through the imagefolder
dataset, with the same search budget for every algorithm; prepare -> search -> derive -> a token
train -> evaluate, whose ``evaluate.benchmark_table`` lookup scores the derived cell -> aggregate).
Then it reads the aggregate's summary and every run's genotype, and writes the result JSON, the
README table and a plot of the looked-up accuracy of each epoch's derived cell (history.json keeps
the genotype of every epoch, so the curve costs no extra training).

    python -m benchmarks nb201                  # CPU scale (default), < 45 min on 2 cores
    python -m benchmarks nb201 --scale paper    # GDAS's NB201 setting, GPU
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import early_stop, pipeline, plots, report
from rome.artifacts import read_json, sha256_file
from rome.errors import RomeError
from rome.genotype.types import NB201Genotype
from rome.paths import stage_dir
from rome.spaces.ops import PARAMETER_FREE_OPS

NAME = "nb201"
CONFIGS = {"cpu": report.BENCH_DIR / "configs" / "nb201.yaml", "paper": report.BENCH_DIR / "configs" / "nb201_paper.yaml"}
BUDGET_MINUTES = {"cpu": 45.0, "paper": None}
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
OP_GROUPS = {"skip": ("skip_connect",), "none": ("none",), "pool": ("avg_pool_3x3",)}
PAPER = {
    "source": "NAS-Bench-201 paper (200-epoch training), CIFAR-10 test accuracy of the searched cell; "
              "quoted in rome-method.md. The table used here is the 12-epoch one, so compare rankings, not values.",
    "cifar10_test_200_epochs": {"darts": 54.30, "gdas": 93.61, "gdas_std": 0.09, "best_possible": 94.37},
    "darts_cell": "all skip_connect (collapse)",
}


# ----------------------------------------------------------------------------- the NB201 table


class Table:
    """The NB201 CSV loaded once: arch string -> (valid, test, index) for one dataset."""

    def __init__(self, path: str | Path, dataset: str) -> None:
        self.path, self.dataset = Path(path), dataset
        if not self.path.is_file():
            raise RomeError(f"evaluate.benchmark_table = {str(path)!r}: file not found; expected a NAS-Bench-201 CSV")
        valid, test = f"{dataset}_valid", f"{dataset}_test"
        self.rows: dict[str, tuple[float, float, int | None]] = {}
        with open(self.path, newline="") as fh:
            for row in csv.DictReader(fh):
                index = int(row["index"]) if row.get("index", "").isdigit() else None
                self.rows[row["arch"].strip()] = (float(row[valid]), float(row[test]), index)
        if not self.rows:
            raise RomeError(f"{self.path}: no rows; expected the 15,625 NAS-Bench-201 cells")

    def test(self, arch: str) -> float:
        if arch not in self.rows:
            raise RomeError(f"{self.path}: arch {arch!r} not found; expected a NAS-Bench-201 arch string")
        return self.rows[arch][1]

    def summary(self) -> dict[str, Any]:
        tests = [t for _, t, _ in self.rows.values()]
        best = max(self.rows, key=lambda a: self.rows[a][1])
        return {"path": str(self.path), "sha256": sha256_file(self.path), "dataset": self.dataset, "n_archs": len(tests),
                "best_test": max(tests), "best_arch": best, "mean_test": round(statistics.fmean(tests), 3),
                "median_test": round(statistics.median(tests), 3), "all_skip_test": self.rows.get(ALL_SKIP, (None, None))[1]}


# ----------------------------------------------------------------------------- per-run figures


def arch_from_flat(entries: Sequence[Sequence[Any]]) -> str:
    """history.json's flat NB201 cell (node 1's 1 entry, node 2's 2, node 3's 3, ...) -> arch string."""
    nodes, i, n = [], 0, 1
    while i < len(entries):
        nodes.append(tuple((str(op), int(src)) for op, src in entries[i:i + n]))
        i, n = i + n, n + 1
    if i != len(entries):
        raise RomeError(f"history genotype has {len(entries)} entries: expected a triangular number (1 + 2 + ... per node)")
    return NB201Genotype(tuple(nodes)).validate("history genotype").to_arch_str()


def op_counts(arch: str) -> dict[str, int]:
    """skip / none / pool / parameter-free counts over the cell's edges."""
    ops = [op for node in NB201Genotype.from_arch_str(arch).nodes for op, _ in node]
    counts = {group: sum(op in names for op in ops) for group, names in OP_GROUPS.items()}
    counts["param_free"] = sum(op in PARAMETER_FREE_OPS for op in ops)
    counts["edges"] = len(ops)
    return counts


def run_figures(run: dict[str, Any], table: Table) -> dict[str, Any]:
    """One run: its derived cell, the pipeline's lookup of it, op counts and the per-epoch curve."""
    dataset = run["evaluate"]["benchmark_dataset"]
    geno = pipeline.read_genotype(run)
    arch = geno.get("nb201_arch")
    if not arch:
        raise RomeError(f"{stage_dir(run, 'derive')}/genotype.json: no nb201_arch; expected an NB201 cell")
    metrics = pipeline.read_metrics(run)
    key = f"nb201_{dataset}_test"
    if key not in metrics:
        raise RomeError(f"{stage_dir(run, 'evaluate')}/metrics.json: no {key}; expected evaluate.benchmark_table to be set")
    history = pipeline.read_history(run)
    archs = [arch_from_flat(h["genotype"]["normal"]) for h in history]
    curve = [table.test(a) for a in archs]
    stops = early_stop.simulated_stops(history, run)
    for stop in stops.values():  # the kept cell scored by the same lookup (the table needs no retraining)
        if stop is not None:
            stop["test"] = table.test(arch_from_flat(stop["genotype"]["normal"]))
    return {
        "algorithm": run["search"]["algorithm"], "seed": run["seed"], "arch": arch,
        "test": metrics[key], "valid": metrics.get(f"nb201_{dataset}_valid"), "index": table.rows.get(arch, (None, None, None))[2],
        "ops": op_counts(arch), "search_seconds": pipeline.read_search(run).get("seconds"),
        "curve_test": curve,
        "curve_param_free": [op_counts(a)["param_free"] for a in archs],
        "eigenvalue": [h.get("hessian_eig") for h in history],
        "early_stop": stops,
    }


def summarize(rows: list[dict[str, Any]], algorithms: Sequence[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for algo in algorithms:
        group = [r for r in rows if r["algorithm"] == algo]
        test_m, test_s = report.mean_std([r["test"] for r in group])
        valid_m, valid_s = report.mean_std([r["valid"] for r in group])
        out[algo] = {
            "n_seeds": len(group),
            "test_mean": round(test_m, 3), "test_std": round(test_s, 3),
            "valid_mean": round(valid_m, 3), "valid_std": round(valid_s, 3),
            "best_test": max(r["test"] for r in group) if group else None,
            "per_seed_test": [r["test"] for r in sorted(group, key=lambda r: r["seed"])],
            "ops_mean": {k: round(statistics.fmean(r["ops"][k] for r in group), 2) for k in (*OP_GROUPS, "param_free")}
            if group else {},
            "search_seconds_mean": round(statistics.fmean(r["search_seconds"] for r in group), 1) if group else None,
            "early_stop": {c: _stop_summary(group, c) for c in early_stop.CRITERIA},
        }
    return out


def _stop_summary(group: list[dict[str, Any]], criterion: str) -> dict[str, Any] | None:
    """What ``criterion`` would have kept over the seeds: fired count, epochs run, the kept cells' lookup."""
    stops = [(r, (r.get("early_stop") or {}).get(criterion, "absent")) for r in sorted(group, key=lambda r: r["seed"])]
    if not stops or any(s == "absent" for _, s in stops):
        return None
    tests = [s["test"] if s else r["test"] for r, s in stops]
    m, sd = report.mean_std(tests)
    return {"fired": sum(s is not None for _, s in stops), "test_mean": round(m, 3), "test_std": round(sd, 3),
            "per_seed_test": tests, "epochs_run": [s["fired_epoch"] if s else len(r["curve_test"]) for r, s in stops],
            "kept_epoch": [s["chosen_epoch"] if s else None for _, s in stops]}


def aggregate_summary(params: dict[str, Any]) -> dict[str, Any]:
    """The aggregate stage's metrics.json (mean/std/best per dataset/space/algorithm)."""
    return read_json(stage_dir(params, "aggregate") / "metrics.json", "aggregate metrics")


def check_against_aggregate(summary: dict[str, dict[str, Any]], agg: dict[str, Any], params: dict[str, Any]) -> None:
    """The pipeline's own mean must equal the one computed here (same runs, same numbers)."""
    key = f"nb201_{params['evaluate']['benchmark_dataset']}_test_mean"
    for algo, s in summary.items():
        group = f"{params['sweep']['datasets'][0]}/nb201/{algo}"
        value = (agg.get(group) or {}).get(key)
        if value is None or abs(value - s["test_mean"]) > 1e-3:
            raise RomeError(f"aggregate metrics.json: {group} {key} = {value}, but the runs give {s['test_mean']}; "
                            "expected the same (rerun the aggregate stage)")


def collect(params: dict[str, Any]) -> dict[str, Any]:
    table = Table(params["evaluate"]["benchmark_table"], params["evaluate"]["benchmark_dataset"])
    rows = [run_figures(r, table) for r in pipeline.runs(params)]
    algorithms = list(params["sweep"]["algorithms"])
    summary = summarize(rows, algorithms)
    check_against_aggregate(summary, aggregate_summary(params), params)
    s = params["search"]
    settings = {k: s[k] for k in ("space", "k_samples", "epochs", "steps_per_epoch", "batch_size", "layers",
                                   "init_channels", "w_lr", "a_lr", "tau_max", "tau_min", "indicators", "early_stop")}
    settings["data"] = {"dataset": params["data"]["dataset"], "root": params["data"]["root"],
                        "resize": params["data"]["resize"], "subset": params["data"]["subset"]}
    settings["train"] = {k: params["train"][k] for k in ("epochs", "steps_per_epoch", "layers", "init_channels")}
    settings["seeds"] = list(params["sweep"]["seeds"])
    return {"settings": settings, "table": table.summary(), "algorithms": summary, "runs": rows}


# ----------------------------------------------------------------------------- table and plot


def table_markdown(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    t, s, p = f["table"], f["settings"], doc["paper"]["cifar10_test_200_epochs"]
    paper = {"darts": f"{p['darts']:.2f} (all skip)", "gdas": f"{p['gdas']:.2f} ± {p['gdas_std']:.2f}"}
    rows = []
    for algo, a in f["algorithms"].items():
        ops = a["ops_mean"]
        rows.append([algo, a["n_seeds"], report.pm(a["test_mean"], a["test_std"]),
                     ", ".join(f"{v:.2f}" for v in a["per_seed_test"]),
                     report.pm(a["valid_mean"], a["valid_std"]), ops.get("skip"), ops.get("none"), ops.get("pool"),
                     ops.get("param_free"), a["search_seconds_mean"], paper.get(algo, "–")])
    header = ["algorithm", "seeds", f"{t['dataset']} test % (table) mean ± std", "per seed", "valid %", "skip", "none", "pool",
              "param-free of 6", "search s / run", "paper (200-epoch NB201)"]
    stop_rows = [[algo, c, f"{st['fired']}/{a['n_seeds']}", ", ".join(map(str, st["epochs_run"])),
                  ", ".join("-" if e is None else str(e) for e in st["kept_epoch"]), report.pm(st["test_mean"], st["test_std"]),
                  report.pm(a["test_mean"], a["test_std"])]
                 for algo, a in f["algorithms"].items() for c, st in (a.get("early_stop") or {}).items() if st]
    stops = ([f"Early stopping applied to each full history (benchmarks/early_stop.py; search.early_stop {s.get('early_stop')}), "
              "the kept cell looked up in the same table:", "",
              report.markdown_table(["algorithm", "early stop", "fired", "epochs run per seed", "kept epoch per seed",
                                     "test % with", "test % without"], stop_rows), ""]
             if any(r.get("eigenvalue") and any(v is not None for v in r["eigenvalue"]) for r in f["runs"]) else [])
    pl = f.get("pipeline") or {}
    timing = report.timing_line(pl, f.get("budget_minutes"))
    lines = [f"Search: {s['space']}, K={s['k_samples']} (rome, random), "
             f"{s['epochs']} epochs x {s['steps_per_epoch']} steps, "
             f"batch {s['batch_size']}, {s['layers']} cell(s) per stage, {s['init_channels']} channels, "
             f"data {s['data']['dataset']} subset {s['data']['subset']}, seeds {s['seeds']}. "
             f"Table `{Path(t['path']).name}` ({t['n_archs']} cells): best {t['best_test']:.2f}, mean {t['mean_test']:.2f}, "
             f"all-skip cell {report.fmt(t['all_skip_test'])}.", "",
             report.markdown_table(header, rows), "", *stops, timing, "", report.provenance_line(doc)]
    return "\n".join(lines)


def plot(doc: dict[str, Any], path: Path) -> Path:
    f = doc["figures"]
    series = plots.series_by_algorithm(f["runs"], "curve_test")
    epochs = max(len(r["curve_test"]) for r in f["runs"])
    x = list(range(1, epochs + 1))
    t = f["table"]
    refs = {f"table best {t['best_test']:.1f}": t["best_test"], f"table mean {t['mean_test']:.1f}": t["mean_test"]}
    if t.get("all_skip_test") is not None:
        refs[f"all-skip {t['all_skip_test']:.1f}"] = t["all_skip_test"]
    panels = [plots.Panel(f"NAS-Bench-201: derived cell after each epoch ({t['dataset']})",
                          f"{t['dataset']} test % ({Path(t['path']).name})", x, series, refs)]
    # the collapse indicators, where the runs recorded them (results from before issue 21 hold neither)
    runs = sorted(f["runs"], key=lambda r: (r["algorithm"], r["seed"]))
    param_free = plots.series_by_algorithm(runs, "curve_param_free")
    if param_free:
        edges = max(r["ops"]["edges"] for r in runs)
        panels.append(plots.Panel("NAS-Bench-201: derived cell after each epoch", f"parameter-free ops (of {edges})",
                                  x, param_free, ylim=(-0.3, edges + 0.3)))
    eig = plots.series_by_algorithm(runs, "eigenvalue")
    if eig:
        panels.append(plots.Panel("NAS-Bench-201: Hessian eigenvalue (val. loss, alpha)", "eigenvalue",
                                  x, eig))
    return plots.curves(panels, path)


# ----------------------------------------------------------------------------- command


def add_arguments(p: argparse.ArgumentParser) -> None:
    pipeline.add_arguments(p, NAME, CONFIGS)


def main(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Path:
    return pipeline.run_benchmark(NAME, args, argv, collect, table_markdown, plot, CONFIGS, BUDGET_MINUTES, PAPER)
