"""What early stopping would have done to each finished search, and the retraining that scores it.

``search.early_stop`` decides from the epoch history alone (rome.search.early_stop.decide), and the
indicators never change a search (tests/test_indicators.py), so a search run to the end holds the run
with early stopping inside it: the same epochs up to the one the rule fires at, and the architecture
of the epoch it keeps is that epoch's history genotype (the stage keeps exactly that one: tested by
test_stop_then_derive_through_the_stages). This module applies the rule to the full history, as
R-DARTS's own ``--early_stop 2`` ("simulate early stopping and continue search afterwards") does, so
one search answers "with" and "without".

Retraining: each distinct kept cell (the final one, and each criterion's when it differs) is trained
from scratch by ``rome train`` and scored by ``rome evaluate`` with the config's ``train`` section,
the same commands the pipeline runs, under ``<run>/retrain/<kind>/`` in the benchmark's work folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import report
from rome.artifacts import read_json, write_json
from rome.genotype.files import genotype_document, genotype_from_dict
from rome.paths import stage_dir
from rome.search.early_stop import StopRule, decide

CRITERIA = ("eigenvalue", "param_free")


def simulated_stops(history: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Per criterion (eigenvalue only when the run computed eigenvalues): where the rule fires, the epoch it
    keeps, that epoch's parameter-free count and genotype; None when it never fires."""
    s = params["search"]
    out: dict[str, dict[str, Any] | None] = {}
    for criterion in CRITERIA:
        if criterion == "eigenvalue" and not s["indicators"]["hessian_every"]:
            continue
        rule = StopRule.from_search({**s["early_stop"], "criterion": criterion}, s["indicators"])
        decision = decide(rule, history, s["epochs"])
        if decision is None:
            out[criterion] = None
            continue
        kept = history[decision.chosen_epoch - 1]
        out[criterion] = {**decision.as_dict(), "param_free_normal": int(kept["n_param_free_normal"]),
                          "genotype": kept["genotype"]}
    return out


def _genotype_file(flat: dict[str, list[list[Any]]], nodes: int, space: str, folder: Path) -> Path:
    """A derive-like folder holding genotype.json for a history genotype (DARTS-space cells)."""
    concat = list(range(2, 2 + nodes))
    body: dict[str, Any] = {}
    for ct, entries in flat.items():
        body[ct] = [list(e) for e in entries]
        body[f"{ct}_concat"] = concat
    doc = genotype_document(genotype_from_dict(body, str(folder)), space)
    write_json(folder / "genotype.json", doc)
    return folder


def _rome(args: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        res = subprocess.run([sys.executable, "-m", "rome.cli", *args], cwd=report.REPO, stdout=fh, check=False,
                             stderr=subprocess.STDOUT)
    if res.returncode:
        raise RuntimeError(f"rome {' '.join(args[:1])} failed (exit {res.returncode}); see {log}")


def retrain_one(config: Path, run: dict[str, Any], derive: Path, folder: Path, cell: dict[str, Any]) -> tuple[float, bool]:
    """Train the cell in ``derive`` from scratch and evaluate it: (the test top-1 (%), whether it trained now).

    A score in ``folder`` is reused only when ``folder/cell.json`` says it was trained for this very cell
    under the same ``train`` and ``data`` settings: a rerun search (a params or default change) may keep
    another cell in the same ``<kind>`` folder, and its old score must not stand for the new cell."""
    metrics = folder / "evaluate" / "metrics.json"
    marker = folder / "cell.json"
    key = json.dumps({"cell": cell, "train": run["train"], "data": run["data"]}, sort_keys=True, default=str)
    trained = not (metrics.is_file() and marker.is_file() and marker.read_text() == key)
    if trained:
        marker.unlink(missing_ok=True)  # first: a retraining killed half-way must not look finished
        pins = ["--set", f"data.dataset={run['data']['dataset']}", "--set", f"search.space={run['search']['space']}",
                "--set", f"search.algorithm={run['search']['algorithm']}", "--set", f"seed={run['seed']}"]
        prepare = stage_dir(run, "prepare")
        _rome(["train", "--params", str(config), *pins, "--input", f"prepare={prepare}", "--input", f"derive={derive}",
               "--out", str(folder / "train"), "--threads", "1"], folder / "train.log")
        _rome(["evaluate", "--params", str(config), *pins, "--input", f"prepare={prepare}",
               "--input", f"train={folder / 'train'}", "--out", str(folder / "evaluate"), "--threads", "1"],
              folder / "evaluate.log")
        marker.write_text(key)
    return float(read_json(metrics, "evaluation metrics")["top1"]), trained


def retrain(config: Path, runs: list[dict[str, Any]], rows: list[dict[str, Any]], cores: int,
            final_from_history: bool = False) -> dict[str, Any]:
    """Fill ``row["accuracy"]`` ({"final": top1, criterion: top1 of its kept cell}) for every run, training
    each distinct cell of a run once (a rule that never fires, or keeps a cell already trained, reuses its score).
    Returns what the retraining cost: cells trained now and reused, and the wall seconds when any trained
    (``None`` when every score was reused, so a re-read never reports a rerun's time as the retraining's).

    ``final_from_history``: the rows come from a recorded result, not from searches run here, so the final
    cell is written from the row's last history genotype, like the rules' kept cells, instead of read from
    the run's derive folder (which does not exist)."""
    jobs: dict[Path, tuple[dict[str, Any], Path, Path, dict[str, Any]]] = {}
    wanted: list[tuple[dict[str, Any], str, Path]] = []
    for run, row in zip(runs, rows):
        base = stage_dir(run, "search").parent / "retrain"
        final_folder = base / "final"
        derive = (_genotype_file(row["final_genotype"], run["search"]["nodes"], run["search"]["space"],
                                 final_folder / "derive") if final_from_history else stage_dir(run, "derive"))
        jobs[final_folder] = (run, derive, final_folder, row["final_genotype"])
        wanted.append((row, "final", final_folder))
        seen = {json.dumps(row["final_genotype"]): final_folder}  # a cell kept by several rules is trained once
        for criterion, stop in row["early_stop"].items():
            if stop is None:
                wanted.append((row, criterion, final_folder))
                continue
            key = json.dumps(stop["genotype"])
            if key in seen:
                wanted.append((row, criterion, seen[key]))
                continue
            folder = seen[key] = base / criterion
            derive = _genotype_file(stop["genotype"], run["search"]["nodes"], run["search"]["space"], folder / "derive")
            jobs[folder] = (run, derive, folder, stop["genotype"])
            wanted.append((row, criterion, folder))
    # one run's cells one after the other: they share the run's resume folder (state/<run>/train_ckpt)
    by_run: dict[Path, list[Path]] = {}
    for folder in jobs:
        by_run.setdefault(folder.parent, []).append(folder)

    def one_run(folders: list[Path]) -> list[tuple[Path, tuple[float, bool]]]:
        return [(folder, retrain_one(config, *jobs[folder])) for folder in folders]

    print(f"collapse: retraining {len(jobs)} cells of {len(by_run)} runs ({cores} runs at a time)", file=sys.stderr,
          flush=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, cores)) as pool:
        results = dict(pair for pairs in pool.map(one_run, by_run.values()) for pair in pairs)
    wall = time.perf_counter() - start
    for row, kind, folder in wanted:
        row.setdefault("accuracy", {})[kind] = results[folder][0]
    trained = sum(t for _score, t in results.values())
    return {"cells_trained": trained, "cells_reused": len(results) - trained,
            "wall_seconds": round(wall, 1) if trained else None, "jobs": max(1, cores)}
