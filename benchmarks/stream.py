"""Peak memory of streamed data: `rome train` / `rome search` on all 50,000 CIFAR-10 training images vs a 5,000 subset.

The shared archive (``../shared/data/cifar10-jpg.tar.gz``) is prepared as an index
(``data.storage: stream``) twice, once with every training image and once with a class-stratified
``data.subset`` of 5,000 (search halves 2,500 each), then `rome train` and `rome search` run a few
steps on each with 2 DataLoader workers, at 64 px (``data.resize``: the in-memory set is then 0.6 GB,
well above run-to-run noise). Each stage runs in its own process (``rome.cli.main`` under a
wrapper that reads ``getrusage``): peak RSS of the stage's main process and the largest of its child
processes (a bound: see the table's note). With ``--memory`` the same runs on in-memory data (``data.storage: memory``) are added, to
show what streaming avoids. The claim: streamed peaks do not grow with the number of images (the
index costs about 100 bytes per image, the in-memory path 3 KB per 32 px image).

    python -m benchmarks stream             # about 6 min on 2 loaded CPU cores
    python -m benchmarks stream --memory    # + the in-memory rows: 13 min in all
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import report
from rome.errors import RomeError

NAME = "stream"
ARCHIVE = report.REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
PAPER: dict[str, Any] = {"note": "the paper reports no figures on data loading or its memory"}
SUBSETS = {"all": "{search_train: null, search_val: null, train: null, test: 1000}",
           "5000": "{search_train: 2500, search_val: 2500, train: 5000, test: 1000}"}
# the stage runs in this wrapper, which first imports what the stage imports and notes the RSS then
# (about 0.7 GB of torch, timm and CUDA libraries: the part of the peak no data setting changes)
WRAPPER = ("import importlib, json, resource, sys; import timm, torch; "
           "importlib.import_module('rome.stages.' + sys.argv[1]); "
           "base = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')][0]; "
           "from rome.cli import main; rc = main(sys.argv[1:]); r = resource.getrusage; "
           "print('RSS ' + json.dumps([rc, r(resource.RUSAGE_SELF).ru_maxrss, r(resource.RUSAGE_CHILDREN).ru_maxrss, base]))")


def stage(name: str, sets: list[str]) -> dict[str, Any]:
    """Run one stage in a fresh process; its peak RSS (MiB) and its workers' largest."""
    t0 = time.perf_counter()
    args = [name, *(a for s in sets for a in ("--set", s))]
    out = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, cwd=report.REPO)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RSS ")), None)
    if line is None or json.loads(line[4:])[0] != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise RomeError(f"rome {name} {' '.join(sets)}: failed ({tail})")
    _, main_kib, child_kib, base_kib = json.loads(line[4:])
    return {"peak_rss_mib": round(main_kib / 1024, 1), "worker_peak_rss_mib": round(child_kib / 1024, 1),
            "imports_rss_mib": round(base_kib / 1024, 1), "seconds": round(time.perf_counter() - t0, 1)}


def collect(settings: dict[str, Any], work: Path, log=print) -> dict[str, Any]:
    rows = []
    for storage in settings["storages"]:
        for subset, spec in SUBSETS.items():
            results = work / f"{storage}-{subset}" / "results"
            sets = [f"results_dir={results}", "preset=smoke", "data.dataset=imagefolder", f"data.root={ARCHIVE}",
                    f"data.resize={settings['resize']}", f"data.storage={storage}", f"data.subset={spec}",
                    "train.genotype=darts_v2", "train.epochs=1",
                    f"train.steps_per_epoch={settings['steps']}", f"train.batch_size={settings['batch']}",
                    f"train.workers={settings['workers']}", "search.epochs=1",
                    f"search.steps_per_epoch={settings['steps']}", f"search.batch_size={settings['batch']}",
                    f"search.workers={settings['workers']}"]
            row: dict[str, Any] = {"storage": storage, "train_images": 50_000 if subset == "all" else 5_000}
            for name in ("prepare", "train", "search"):
                row[name] = stage(name, sets)
                log(f"stream: {storage} {subset}: {name} {row[name]}")
            rows.append(row)
    return {"settings": settings, "rows": rows}


def table(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    s = f["settings"]
    header = ["storage", "train images", "prepare s", "prepare peak MiB", "train peak MiB", "train above imports",
              "train child peak MiB", "search peak MiB", "search above imports", "search child peak MiB"]

    def above(stage: dict[str, Any]) -> float:
        return round(stage["peak_rss_mib"] - stage.get("imports_rss_mib", 0.0), 1)

    rows = [[r["storage"], r["train_images"], r["prepare"]["seconds"], r["prepare"]["peak_rss_mib"],
             r["train"]["peak_rss_mib"], above(r["train"]), r["train"]["worker_peak_rss_mib"],
             r["search"]["peak_rss_mib"], above(r["search"]), r["search"]["worker_peak_rss_mib"]] for r in f["rows"]]
    return "\n".join([
        f"CIFAR-10 JPEG archive at {s['resize']}x{s['resize']} (`data.resize`), smoke-size networks, {s['steps']} steps of batch {s['batch']} per stage, "
        f"{s['workers']} DataLoader workers; peak RSS (`getrusage` max RSS) of the stage's process and the largest "
        "of its child processes (workers, git), one fresh process per stage. A forked child's max RSS starts "
        "at its parent's RSS at the fork (pages shared, not copied), so the child column is a bound, not "
        "what the workers added.", "",
        report.markdown_table(header, rows), "", report.provenance_line(doc)])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", action="store_true", help="also measure data.storage: memory (decodes every image)")
    p.add_argument("--steps", type=int, default=5, help="train / search steps per stage")
    p.add_argument("--resize", type=int, default=64,
                   help="data.resize: 64 px makes the in-memory set 0.6 GB (32 px: 0.15 GB, within run-to-run noise)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="result JSON (default: benchmarks/results/stream.json)")
    p.add_argument("--no-readme", action="store_true", help="do not regenerate the README table")


def main(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Path:
    if not ARCHIVE.is_file():
        raise RomeError(f"{ARCHIVE}: missing; expected the shared CIFAR-10 JPEG archive (../shared/data)")
    settings = {"steps": args.steps, "batch": args.batch, "workers": args.workers, "resize": args.resize,
                "storages": ["stream", "memory"] if args.memory else ["stream"]}
    t0 = time.perf_counter()
    load_before = report.machine()["load_average_1_5_15"]
    with tempfile.TemporaryDirectory(prefix="rome-stream-bench-") as work:
        figures = collect(settings, Path(work), log=lambda m: print(m, file=sys.stderr, flush=True))
    figures["wall_seconds"] = round(time.perf_counter() - t0, 1)
    doc = report.result_document(NAME, report.command_line(NAME, argv), figures, PAPER, load_average_before=load_before)
    out = args.out or report.RESULTS_DIR / "stream.json"
    report.write_result(doc, out)
    if not args.no_readme:
        report.update_readme("stream", table(doc))
    return out
