"""Collapse: parameter-free ops in the derived normal cell on R-DARTS S2 and S3, DARTS vs GDAS vs ROME.

Runs the pipeline itself up to the derivation (nothing is retrained):
``snakemake --cores 2 --configfile benchmarks/configs/collapse.yaml --until derive`` (the
``collapse_bench`` preset: a sweep over spaces {s2, s3} x algorithms x 3 seeds on real CIFAR-10 at
CPU scale). Then it reads each run's genotype.json (the final count) and history.json (the count
of the cell derived after every epoch: the evolution) and writes the result JSON, the README table
and the plot.

Trajectories (issue 21): when the config turns ``search.indicators.hessian_every`` on, each run's
Hessian eigenvalue per epoch and its cost beside the search epoch's, and what early stopping
(eigenvalue and param_free, with the config's ``search.early_stop`` settings) would have kept:
``benchmarks.early_stop`` applies the rule to the full history. ``--retrain`` trains every distinct
kept cell from scratch with the config's ``train`` section and reports its test accuracy.

    python -m benchmarks collapse                 # CPU scale (default)
    python -m benchmarks collapse --scale paper   # the R-DARTS search setting, GPU
    python -m benchmarks collapse --config benchmarks/configs/collapse_testbed.yaml --retrain   # the testbed

``--searches-from RESULT --retrain`` retrains the cells a committed result recorded (each run's final and
kept genotypes are in it) without rerunning its searches: only the data is prepared. The result must have
been searched with exactly the config's settings (checked key by key), and the new result names the one its
searches came from, with that result's commit: the retrained cells are that commit's searches, which another
machine or commit reproduces only to float rounding (enough to move a single run by an op or two).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import early_stop, pipeline, plots, report
from rome.artifacts import read_json
from rome.errors import RomeError
from rome.paths import run_record_path

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


def epoch_costs(run: dict[str, Any]) -> dict[str, float | None]:
    """Median seconds of a search epoch and of an eigenvalue computation (the run record's measured figures;
    medians, because a neighbour's burst on a shared machine slows a few epochs many times over)."""
    record = run_record_path(run, "search")
    epochs = read_json(record, "search run record").get("epochs", []) if record.is_file() else []
    search = [e["seconds"] for e in epochs if e.get("seconds") is not None]
    hessian = [e["hessian_seconds"] for e in epochs if e.get("hessian_seconds") is not None]
    return {"epoch_seconds": statistics.median(search) if search else None,
            "hessian_seconds": statistics.median(hessian) if hessian else None}


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
        "eigenvalue": [h.get("hessian_eig") for h in history],
        "final_genotype": history[-1]["genotype"] if history else None,
        "early_stop": early_stop.simulated_stops(history, run),
        **epoch_costs(run),
    }


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(sum(vals) / len(vals), 3) if vals else None


def stop_summary(group: list[dict[str, Any]], criterion: str, epochs: int) -> dict[str, Any] | None:
    """Early stopping by ``criterion`` over the seeds: how often it fired, epochs run, what the kept cells hold."""
    stops = [r["early_stop"].get(criterion, "absent") for r in group]
    if any(s == "absent" for s in stops):
        return None
    kept = [s["param_free_normal"] if s else r["param_free_normal"] for r, s in zip(group, stops)]
    m, sd = report.mean_std(kept)
    return {"fired": sum(s is not None for s in stops),
            "epochs_run_mean": _mean([s["fired_epoch"] if s else epochs for s in stops]),
            "kept_epoch_per_seed": [s["chosen_epoch"] if s else None for s in stops],
            "param_free_mean": round(m, 3), "param_free_std": round(sd, 3), "per_seed": kept,
            "top1_mean": _mean([(r.get("accuracy") or {}).get(criterion) for r in group]),
            "top1_per_seed": [(r.get("accuracy") or {}).get(criterion) for r in group]}


def summarize(rows: list[dict[str, Any]], spaces: Sequence[str], algorithms: Sequence[str],
              epochs: int = 0) -> list[dict[str, Any]]:
    out = []
    for space in spaces:
        for algo in algorithms:
            group = sorted([r for r in rows if r["space"] == space and r["algorithm"] == algo], key=lambda r: r["seed"])
            m, s = report.mean_std([r["param_free_normal"] for r in group])
            secs, _ = report.mean_std([r["search_seconds"] for r in group])
            hess, epoch_s = _mean([r.get("hessian_seconds") for r in group]), _mean([r.get("epoch_seconds") for r in group])
            out.append({"space": space, "algorithm": algo, "n_seeds": len(group),
                        "param_free_mean": round(m, 3), "param_free_std": round(s, 3),
                        "per_seed": [r["param_free_normal"] for r in group],
                        "search_seconds_mean": round(secs, 1),
                        "top1_mean": _mean([(r.get("accuracy") or {}).get("final") for r in group]),
                        "top1_per_seed": [(r.get("accuracy") or {}).get("final") for r in group],
                        "hessian_seconds_mean": hess, "epoch_seconds_mean": epoch_s,  # means over seeds of medians
                        "hessian_cost_ratio": round(hess / epoch_s, 3) if hess and epoch_s else None,
                        "early_stop": {c: stop_summary(group, c, epochs) for c in early_stop.CRITERIA},
                        "paper": PAPER["param_free_normal"].get(space, {}).get(algo)})
    return out


SEARCH_SETTINGS = ("k_samples", "epochs", "steps_per_epoch", "batch_size", "layers", "init_channels", "w_lr", "a_lr",
                   "tau_max", "tau_min", "behaviour", "arch_warmup_epochs", "indicators", "early_stop", "mode")


def search_settings(params: dict[str, Any]) -> dict[str, Any]:
    """What decides the searches' outcome: the search section's settings, the data and the sweep (JSON-shaped)."""
    sw, s = params["sweep"], params["search"]
    settings = {k: s[k] for k in SEARCH_SETTINGS}
    settings["data"] = {"dataset": params["data"]["dataset"], "root": params["data"]["root"],
                        "resize": params["data"]["resize"], "subset": params["data"]["subset"]}
    settings["spaces"], settings["seeds"] = list(sw["spaces"]), list(sw["seeds"])
    return json.loads(json.dumps(settings, default=str))


def recorded_rows(params: dict[str, Any], runs: list[dict[str, Any]], result: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of a committed collapse result, one per run of ``params``' sweep, without their accuracies,
    and where they came from. Its searches stand for this config's only when every search setting agrees
    (a search's outcome is its settings', up to float rounding on another machine or commit, which can move
    a single run by an op or two; the result records its commit): anything else is a one-line error,
    never a mix."""
    doc = read_json(result, "collapse result")
    if not isinstance(doc, dict):
        raise RomeError(f"{result}: expected a JSON object (a benchmark result), found {type(doc).__name__}")
    report.check_result(doc, result)
    if doc.get("benchmark") != NAME or not isinstance(doc.get("figures"), dict):
        raise RomeError(f"{result}: benchmark = {doc.get('benchmark')!r}, expected a {NAME!r} result with figures")
    f = doc["figures"]
    mine, theirs = search_settings(params), f.get("settings") or {}
    for key, value in mine.items():
        if theirs.get(key) != value:
            raise RomeError(f"{result}: settings.{key} = {theirs.get(key)!r}, but the config resolves {value!r}: "
                            "its searches are not this config's (run them: leave out --searches-from)")
    by_key = {(r.get("space"), r.get("algorithm"), r.get("seed")): r for r in f.get("runs") or []}
    rows = []
    for run in runs:
        key = (run["search"]["space"], run["search"]["algorithm"], run["seed"])
        if key not in by_key:
            raise RomeError(f"{result}: no run for space {key[0]}, algorithm {key[1]}, seed {key[2]}, which the "
                            "config's sweep holds")
        row = {k: v for k, v in by_key[key].items() if k != "accuracy"}
        if not row.get("final_genotype") or not isinstance(row.get("early_stop"), dict):
            raise RomeError(f"{result}: the run {'/'.join(map(str, key))} records no final_genotype or early_stop")
        rows.append(row)
    source = {"result": result.resolve().relative_to(report.REPO).as_posix()
              if result.resolve().is_relative_to(report.REPO) else str(result),
              "commit": (doc.get("git") or {}).get("commit"), "date": doc.get("date"), "command": doc.get("command")}
    return rows, source


def collect(params: dict[str, Any], retrain: bool = False, config: Path | None = None, cores: int = 2,
            searches_from: Path | None = None) -> dict[str, Any]:
    """The figures. ``searches_from``: take the searches' rows from that committed result (checked to be this
    config's) and only retrain their cells; the searches are not run, nor read from the work folder."""
    runs = pipeline.runs(params)
    source = None
    if searches_from is not None:
        rows, source = recorded_rows(params, runs, searches_from)
    else:
        rows = [run_figures(r) for r in runs]
    if retrain:
        assert config is not None
        retrain_cost = early_stop.retrain(config, runs, rows, cores, final_from_history=searches_from is not None)
    settings = search_settings(params)
    if retrain:
        settings["retrain"] = {k: params["train"][k] for k in ("epochs", "steps_per_epoch", "batch_size", "layers",
                                                                "init_channels", "lr")}
        settings["retrain"]["subset"] = {k: params["data"]["subset"][k] for k in ("train", "test")}
    sw = params["sweep"]
    return {"settings": settings, "summary": summarize(rows, sw["spaces"], sw["algorithms"], params["search"]["epochs"]),
            "runs": rows, "searches_from": source, "retrain_cost": retrain_cost if retrain else None}


def table_markdown(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    s = f["settings"]
    rows = [[r["space"].upper(), r["algorithm"], r["n_seeds"], report.pm(r["param_free_mean"], r["param_free_std"]),
             ", ".join(map(str, r["per_seed"])), r["paper"], r["search_seconds_mean"]] for r in f["summary"]]
    header = ["space", "algorithm", "seeds", f"param-free ops of {NORMAL_ENTRIES} (mean ± std)", "per seed", "paper",
              "search s / run"]
    pl = f.get("pipeline") or {}
    timing = report.timing_line(pl, f.get("budget_minutes"))
    trajectories = trajectory_table(f)
    d = s["data"]
    src = f.get("searches_from")
    origin = ([(f"Searches recorded in `{src['result']}` (commit `{(src.get('commit') or 'unknown')[:10]}`, "
                f"{(src.get('date') or '')[:10]}); only the retraining ran for this result."), ""] if src else [])
    cost = f.get("retrain_cost") or {}
    if cost:
        wall = cost.get("wall_seconds")
        timing += (f" Retraining: {cost.get('cells_trained')} cells trained"
                   + (f" in {wall / 60:.1f} min wall, {cost.get('jobs')} at a time" if wall is not None else "")
                   + (f", {cost.get('cells_reused')} reused from an earlier run" if cost.get("cells_reused") else "") + ".")
    lines = [*origin, f"Search: {s['layers']} cells, {s['init_channels']} channels, batch {s['batch_size']}, {s['epochs']} epochs x "
             f"{s['steps_per_epoch']} steps, ROME K={s['k_samples']}, data {d['dataset']} resized to {d['resize']} "
             f"(subset {d['subset']}), seeds {s['seeds']}.", "",
             report.markdown_table(header, rows), "", *trajectories, timing, "", report.provenance_line(doc)]
    return "\n".join(lines)


def trajectory_table(f: dict[str, Any]) -> list[str]:
    """With indicators: per space x algorithm, without vs with each early-stopping rule (lines, or none)."""
    s = f["settings"]
    if not (s.get("indicators") or {}).get("hessian_every"):
        return []
    es = s["early_stop"]
    header = ["space", "algorithm", "early stop", "fired (of seeds)", "epochs run", "kept epoch per seed",
              f"param-free of {NORMAL_ENTRIES}", "test top-1 % (retrained)", "eigenvalue s / search epoch s"]
    rows = []
    for r in f["summary"]:
        rows.append([r["space"].upper(), r["algorithm"], "none", "-", s["epochs"], "-",
                     report.pm(r["param_free_mean"], r["param_free_std"]), report.fmt(r.get("top1_mean")),
                     f"{report.fmt(r['hessian_seconds_mean'])} / {report.fmt(r['epoch_seconds_mean'])} = "
                     f"{report.fmt(r['hessian_cost_ratio'])}"])
        for criterion, st in (r.get("early_stop") or {}).items():
            if st is None:
                continue
            rows.append(["", "", criterion, f"{st['fired']}/{r['n_seeds']}", report.fmt(st["epochs_run_mean"]),
                         ", ".join("-" if e is None else str(e) for e in st["kept_epoch_per_seed"]),
                         report.pm(st["param_free_mean"], st["param_free_std"]), report.fmt(st.get("top1_mean")), ""])
    rule = (f"eigenvalue: every {s['indicators']['hessian_every']} epoch(s), window {es['window']}, delta {es['delta']}, "
            f"ratio {es['ratio']}, start epoch {es['start_epoch']}; param_free: {es['max_param_free']} parameter-free "
            f"ops in the normal cell")
    retrain = s.get("retrain")
    how = (f"retrained {retrain['epochs']} epochs, {retrain['layers']} cells x {retrain['init_channels']} channels on "
           f"{retrain['subset']['train']} images, tested on {retrain['subset']['test']}" if retrain else
           "not retrained (run with --retrain)")
    return [f"Trajectories and early stopping (applied to each full history, rome.search.early_stop.decide; {rule}; "
            f"cells {how}):", "", report.markdown_table(header, rows), ""]


def plot(doc: dict[str, Any], path: Path) -> Path:
    f = doc["figures"]
    panels = []
    with_eigen = any(any(v is not None for v in r.get("eigenvalue") or []) for r in f["runs"])
    for space in f["settings"]["spaces"]:
        runs = sorted((r for r in f["runs"] if r["space"] == space), key=lambda r: (r["algorithm"], r["seed"]))
        series = plots.series_by_algorithm(runs, "curve")
        epochs = max((len(r["curve"]) for r in runs), default=0)
        refs = {f"{algo.upper()} paper {v}": v for algo, v in PAPER["param_free_normal"].get(space, {}).items()}
        panels.append(plots.Panel(f"{space.upper()}: derived normal cell after each epoch",
                                  f"parameter-free ops (of {NORMAL_ENTRIES})", list(range(1, epochs + 1)), series, refs,
                                  ylim=(-0.3, NORMAL_ENTRIES + 0.3)))
        if with_eigen:
            panels.append(plots.Panel(f"{space.upper()}: dominant Hessian eigenvalue (validation loss, alpha)",
                                      "eigenvalue", list(range(1, epochs + 1)),
                                      plots.series_by_algorithm(runs, "eigenvalue")))
    return plots.curves(panels, path, columns=2 if with_eigen else None)


def add_arguments(p: argparse.ArgumentParser) -> None:
    pipeline.add_arguments(p, NAME, CONFIGS)
    p.add_argument("--retrain", action="store_true",
                   help="train every distinct kept cell (final, and each early-stopping rule's) from scratch with the "
                        "config's train section and report its test accuracy")
    p.add_argument("--searches-from", type=Path, default=None, metavar="RESULT",
                   help="with --retrain: take the searches from this committed collapse result (its settings must be "
                        "the config's) and only prepare the data and retrain their cells, e.g. on another machine")


def main(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Path:
    config = args.config or CONFIGS[args.scale]
    if args.searches_from is not None and not args.retrain:
        raise RomeError(f"--searches-from {args.searches_from}: only retrains a recorded result's cells; add --retrain")
    if args.searches_from is not None:  # fail before any pipeline work when the result is not this config's
        recorded_rows(pipeline.resolved(config), pipeline.runs(pipeline.resolved(config)), args.searches_from)

    def collect_fn(params: dict[str, Any]) -> dict[str, Any]:
        return collect(params, retrain=args.retrain, config=config, cores=args.cores, searches_from=args.searches_from)

    # with recorded searches the pipeline only prepares the data the retraining reads
    return pipeline.run_benchmark(NAME, args, argv, collect_fn, table_markdown, plot, CONFIGS, BUDGET_MINUTES, PAPER,
                                  until="prepare" if args.searches_from is not None else "derive")
