"""Step time against steps after compiling the retraining network: cold cache, warm cache, eager.

Issue 23's open question: ``python -m benchmarks speed --compile`` finds that the process which
compiles the DARTS-V2 retraining network cold often steps no faster than eager channels_last, while a
later process that loads the same kernels from Inductor's on-disk cache is ~10 % faster. Whether
``train.compile: auto`` should compile on a device depends on the cold process over a whole run, so
this benchmark follows it step by step. Per round, three fresh processes (the retraining step of
``benchmarks.speed``: channels_last, drop-path 0.1, auxiliary head, SGD, grad clip):

  * ``cold``: ``torch.compile`` with an empty Inductor cache (what a retraining's first run pays);
  * ``warm``: ``torch.compile`` again on the cache ``cold`` just filled (a rerun of the same shapes);
  * ``eager``: no compilation (the default on the CPU).

Each process times its first call, then ``--steps`` steps one by one, with the minor page faults of
each step (``getrusage``: the allocator's fresh pages, a cost the layout does not change). The table
gives the median of each block of ``--block`` steps (the median over rounds), so a slow start after
compiling shows as a slower first block, and a steady state as flat blocks.

The compiled processes go through ``rome.training.compile.compiled_forward``, as ``rome train`` does,
so glibc's allocator is set to keep freed memory (rome.allocator); ``--allocator default`` leaves
glibc's adaptive default (``ROME_ALLOCATOR=default``), the behaviour before that fix.

    python -m benchmarks compile_trend                      # paper size, 48 steps, 1 round (~4 min on a 2-core CPU)
    python -m benchmarks compile_trend --repeats 2          # interleaved rounds
    python -m benchmarks compile_trend --allocator default  # without rome.allocator: results/compile_trend_cpu_default.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.speed import SIZES
from rome.errors import RomeError

NAME = "compile_trend"
VARIANTS = ("cold", "warm", "eager")
TITLES = {"cold": "compiled, cold cache", "warm": "compiled, warm cache", "eager": "eager"}
PAPER = {"note": "the ROME paper reports no step times; issue 23 asks whether compiling the retraining repays on the device"}


def measure(variant: str, settings: dict[str, Any]) -> dict[str, Any]:
    """First-call seconds, then seconds and minor page faults of each of ``steps`` steps, in this process."""
    import torch

    from benchmarks.speed import _build_train

    torch.set_num_threads(settings["threads"])
    torch.manual_seed(settings["seed"])
    dev = torch.device(settings["device"])
    step = _build_train(settings, dev, torch.channels_last, "none", compiled=variant != "eager")

    def timed() -> tuple[float, int]:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults

    first, _ = timed()
    steps = [timed() for _ in range(settings["steps"])]
    return {"variant": variant, "first_call_s": round(first, 3), "seconds": [round(t, 4) for t, _ in steps],
            "minor_faults": [f for _, f in steps], "torch_threads": torch.get_num_threads(), "device": str(dev)}


def run_child(variant: str, settings: dict[str, Any], cache: str) -> dict[str, Any]:
    """``measure`` in a fresh interpreter with ``cache`` as its Inductor cache; its last stdout line is the JSON."""
    payload = json.dumps({"variant": variant, "settings": settings})
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    if settings["allocator"] == "default":
        env["ROME_ALLOCATOR"] = "default"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.compile_trend", "--child", payload], cwd=report.REPO,
                          capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{variant}: child exited {proc.returncode}: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def block_medians(values: Sequence[float], block: int) -> list[float]:
    """The median of each consecutive block of ``block`` values (a shorter last block counts too)."""
    return [statistics.median(values[i:i + block]) for i in range(0, len(values), block)]


def summarise(runs: Sequence[dict[str, Any]], block: int) -> list[dict[str, Any]]:
    """Per variant: block medians (median over rounds), the steady state (steps after the first block), faults."""
    rows = []
    for v in VARIANTS:
        mine = [r for r in runs if r["variant"] == v]
        if not mine:
            continue
        blocks = [block_medians(r["seconds"], block) for r in mine]
        per_block = [round(statistics.median(b[i] for b in blocks), 4) for i in range(min(len(b) for b in blocks))]
        later = [s for r in mine for s in r["seconds"][block:]] or [s for r in mine for s in r["seconds"]]
        rows.append({"variant": v, "rounds": len(mine), "first_call_s": round(statistics.median(r["first_call_s"] for r in mine), 2),
                     "block_medians": per_block, "steady_seconds": round(statistics.median(later), 4),
                     "minor_faults_per_step": int(statistics.median(f for r in mine for f in r["minor_faults"]))})
    eager = next((r["steady_seconds"] for r in rows if r["variant"] == "eager"), None)
    for r in rows:
        r["ratio_vs_eager"] = round(r["steady_seconds"] / eager, 3) if eager else None
    return rows


def collect(settings: dict[str, Any], repeats: int, log=print) -> dict[str, Any]:
    """``repeats`` rounds of cold, warm (on cold's cache) and eager, each a fresh process."""
    runs = []
    for rnd in range(repeats):
        with tempfile.TemporaryDirectory(prefix="rome-trend-inductor-") as cache:
            for v in VARIANTS:
                r = run_child(v, settings, cache)
                r["repeat"] = rnd
                runs.append(r)
                log(f"compile_trend: round {rnd + 1}/{repeats} {v:5s} first call {r['first_call_s']:.1f} s, "
                    f"blocks {block_medians(r['seconds'], settings['block'])}")
    return {"device": settings["device"], "settings": {**settings, "repeats": repeats}, "runs": runs,
            "rows": summarise(runs, settings["block"])}


def table(doc: dict[str, Any]) -> str:
    """Markdown: per variant the first call, each block's median step, the steady state and the page faults."""
    f = doc["figures"]
    s = f["settings"]
    n = max(len(r["block_medians"]) for r in f["rows"])
    header = ["retraining step, DARTS-V2", "first call (s)",
              *[f"steps {i * s['block'] + 1}-{min((i + 1) * s['block'], s['steps'])}" for i in range(n)],
              "steady (× eager)", "minor faults / step"]
    body = [[TITLES[r["variant"]], f"{r['first_call_s']:.1f}", *[f"{b:.3f}" for b in r["block_medians"]],
             f"{r['steady_seconds']:.3f} (× {report.fmt(r['ratio_vs_eager'], 3)})", r["minor_faults_per_step"]]
            for r in f["rows"]]
    return "\n".join([
        (f"**{f['device'].upper()}**, batch {s['batch_size']}, {s['layers']} cells, {s['init_channels']} channels, "
        f"{s['resolution']}x{s['resolution']}, channels_last, {s['threads']} torch threads, allocator "
        f"{'glibc default' if s.get('allocator') == 'default' else 'kept freed memory (rome.allocator)'}; seconds per step, the "
        f"median of each block of {s['block']} steps after the first call (median over {s['repeats']} round(s)); "
         "steady: the median of every step after the first block."), "",
        report.markdown_table(header, body), "", report.provenance_line(doc) +
        f" Load average before / after: {doc.get('load_average_before')} / {doc.get('load_average_after')}."])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto = cuda when available")
    p.add_argument("--size", default="paper", choices=sorted(SIZES), help="as for `speed`")
    p.add_argument("--threads", type=int, default=2, help="torch threads in every measuring process")
    p.add_argument("--steps", type=int, default=48, help="timed steps per process")
    p.add_argument("--block", type=int, default=8, help="steps per block median")
    p.add_argument("--repeats", type=int, default=1, help="interleaved rounds, each with a fresh Inductor cache")
    p.add_argument("--allocator", default="kept", choices=["kept", "default"],
                   help="kept: as rome train compiles (rome.allocator); default: glibc's adaptive default")
    p.add_argument("--out", type=Path, default=None,
                   help="result JSON (default: benchmarks/results/compile_trend_<device>[_default].json)")
    p.add_argument("--no-readme", action="store_true", help="do not regenerate the table in benchmarks/README.md")


def main(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Path:
    if min(args.steps, args.block, args.repeats, args.threads) < 1:
        raise RomeError(f"--steps {args.steps} / --block {args.block} / --repeats {args.repeats} / "
                        f"--threads {args.threads}: expected >= 1")
    import torch

    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RomeError("--device cuda: no CUDA device visible to torch")
    settings = {"size": args.size, **SIZES[args.size], "device": device, "threads": args.threads,
                "steps": args.steps, "block": args.block, "allocator": args.allocator, "seed": 0}
    load_before = report.machine()["load_average_1_5_15"]
    t0 = time.perf_counter()
    figures = collect(settings, args.repeats, log=lambda m: print(m, file=sys.stderr, flush=True))
    figures["wall_seconds"] = round(time.perf_counter() - t0, 1)
    doc = report.result_document(NAME, report.command_line(NAME, argv), figures, PAPER,
                                 load_average_before=load_before,
                                 load_average_after=report.machine()["load_average_1_5_15"])
    key = f"{NAME}_{device}" + ("_default" if args.allocator == "default" else "")
    out = report.write_result(doc, args.out or report.RESULTS_DIR / f"{key}.json")
    if not args.no_readme:
        report.update_readme(key, table(doc))
    return out


def _child(payload: str) -> int:
    spec = json.loads(payload)
    print(json.dumps(measure(spec["variant"], spec["settings"])))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child(sys.argv[2]))
    sys.exit("usage: python -m benchmarks compile_trend [options]")
