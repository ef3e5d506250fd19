"""Search memory and speed: DARTS, PC-DARTS, GDAS, ROME K=1 and K=7 on one search iteration, same sizes.

One iteration is the search loop's own (``rome.search.step.search_step``: Adam and SGD steps with
the paper's settings, grad clip 5) on random data of the given shape: the
arch step first, K samples each, as Algorithm 1. Every configuration runs in a fresh process, so
its peak RSS is its own; a "baseline" process builds the same supernet, optimisers and batch but
runs no iteration, and its RSS is subtracted (``rss_delta_mb`` = what the iteration added).

Memory, three ways:
  * ``saved_mb`` (any device, deterministic for a seed): the largest total of tensors autograd saves
    for backward during one forward pass (``torch.autograd.graph.saved_tensors_hooks`` through
    ``rome.search.saved_tensors.SavedTensorMeter``; parameters excluded), over every pass of a replay of
    the warm-up and timed iterations (same draws, after the timing and the RSS reading, because the
    hooks perturb both); ``saved_mean_mb`` / ``saved_min_mb`` over the same passes. The K passes of
    a step run one after another, so this is the activation memory of the heaviest sub-network drawn;
  * ``rss_peak_mb`` / ``rss_delta_mb`` (CPU): the child process's peak resident set size, and that
    minus the baseline process's;
  * ``cuda_peak_mb`` (GPU): ``torch.cuda.max_memory_allocated`` over the measured iterations
    (weights, gradients, optimiser state, batch and activations: what the paper's GB figures count).
Time: median seconds per iteration over ``--repeats`` after ``--warmup``; CUDA events on a GPU,
``time.perf_counter`` on the CPU.

    python -m benchmarks memory                       # paper setting: batch 64, 8 cells, 16 ch, 32x32
    python -m benchmarks memory --device cuda         # the same on a GPU (benchmarks/run_gpu.sh)
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import report
from rome.errors import RomeError

NAME = "memory"
DEFAULT_CONFIGS = ("darts", "pc_darts", "gdas", "rome:1", "rome:7")
BASELINE = "baseline"
REFERENCE, SECOND = "darts", "gdas"
# the paper's mechanism, as targets: ROME <= 0.25 x DARTS and <= 0.75 x GDAS peak memory
TARGETS = {"darts": 0.25, "gdas": 0.75}
PAPER = {
    "setting": "CIFAR-10, batch 64, 8 cells, 16 initial channels (ROME paper, Table / Sec. 4)",
    "peak_memory_gb": {"darts": 9.4, "pc_darts": 3.7, "gdas": 3.1, "rome": 2.3},
    "ratio_to_darts": {"gdas": round(3.1 / 9.4, 3), "pc_darts": round(3.7 / 9.4, 3), "rome": round(2.3 / 9.4, 3)},
    "ratio_rome_to_gdas": round(2.3 / 3.1, 3),
}


def parse_config(text: str) -> dict[str, Any]:
    """``darts`` / ``gdas`` / ``rome:7`` / ``random:2`` / ``baseline`` -> algorithm and K (any registered algorithm)."""
    from rome.algorithms import ALGORITHMS

    name, _, k = text.partition(":")
    if name not in (*ALGORITHMS, BASELINE):
        forms = [n if spec.fixed_k is not None else f"{n}:K" for n, spec in ALGORITHMS.items()]
        raise ValueError(f"unknown configuration {text!r}; expected {', '.join(forms)} or baseline")
    takes_k = name in ALGORITHMS and ALGORITHMS[name].fixed_k is None
    return {"label": text if takes_k else name, "algorithm": name, "k_samples": int(k) if k else 1}


# ----------------------------------------------------------------------------- one configuration (child process)


class Timer:
    """Seconds of one region: CUDA events on a GPU (device time between the two records), perf_counter on a CPU."""

    def __init__(self, device: Any) -> None:
        import torch

        self.cuda = device.type == "cuda"
        self._torch = torch

    def __enter__(self) -> Timer:
        if self.cuda:
            self._start = self._torch.cuda.Event(enable_timing=True)
            self._end = self._torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            self._end.record()
            self._end.synchronize()
            self.seconds = self._start.elapsed_time(self._end) / 1000.0
        else:
            self.seconds = time.perf_counter() - self._t0


def measure(config: dict[str, Any], *, space: str = "darts", layers: int = 8, init_channels: int = 16,
            batch_size: int = 64, resolution: int = 32, num_classes: int = 10, device: str = "cpu",
            warmup: int = 1, repeats: int = 3, tau: float = 5.0, seed: int = 0) -> dict[str, Any]:
    """Time and memory of one search iteration of ``config`` (run it in a fresh process for the RSS)."""
    import torch

    from rome.search.algorithms import SearchAlgorithm
    from rome.search.saved_tensors import SavedTensorMeter
    from rome.search.step import OptimizerSettings, build_step_parts, search_step
    from rome.search.supernet import build_supernet
    from rome.spaces import get_space

    dev = torch.device(device)
    torch.manual_seed(seed)
    sp = get_space(space)
    algorithm = config["algorithm"] if config["algorithm"] != BASELINE else "rome"
    algo = SearchAlgorithm(algorithm, sp, k_samples=config["k_samples"], generator=torch.Generator().manual_seed(seed))
    algo.arch.to(dev)
    model = build_supernet(sp, init_channels, num_classes, layers, 3, partial=algo.partial).to(dev)
    x = torch.randn(batch_size, 3, resolution, resolution, device=dev)
    y = torch.randint(0, num_classes, (batch_size,), device=dev)
    gen = torch.Generator().manual_seed(seed + 1)
    parts = build_step_parts(model, algo, OptimizerSettings(), gen)
    batch = itertools.repeat((x, y))
    out: dict[str, Any] = {
        "label": config["label"], "algorithm": config["algorithm"], "k_samples": algo.k_samples,
        "space": space, "layers": layers, "init_channels": init_channels, "batch_size": batch_size,
        "resolution": resolution, "device": str(dev), "torch_threads": torch.get_num_threads(),
        "supernet_params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 4),
    }
    if config["algorithm"] == BASELINE:  # set-up only: the RSS every configuration pays before iterating
        out["rss_peak_mb"] = _rss_mb()
        return out

    def iteration() -> None:
        search_step(parts, batch, batch, tau)

    for _ in range(warmup):
        iteration()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        out["cuda_static_mb"] = round(torch.cuda.memory_allocated(dev) / 2**20, 1)
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(repeats):
        with Timer(dev) as t:
            iteration()
        times.append(t.seconds)
    if dev.type == "cuda":
        out["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
        out["cuda_reserved_mb"] = round(torch.cuda.max_memory_reserved(dev) / 2**20, 1)
    # Peak RSS is read BEFORE any saved-tensor hook runs: a pack hook that returns the tensor itself
    # puts every output a node saves into a reference cycle (tensor -> grad_fn -> tensor), freed only
    # by the cyclic garbage collector, which inflates the RSS (measured at the paper's setting: ROME
    # K=7 +5.2 GB with the hooks on, +1.5 GB without). The meter then replays the same draws untimed.
    out["rss_peak_mb"] = _rss_mb()
    gen.manual_seed(seed + 1)
    with SavedTensorMeter(model, list(model.parameters()) + list(algo.arch.parameters()), forward_only=True) as meter:
        for _ in range(warmup + repeats):
            iteration()
    out.update({
        "seconds_per_iteration": round(statistics.median(times), 4),
        "seconds_all": [round(t, 4) for t in times],
        "timer": "cuda_events" if dev.type == "cuda" else "perf_counter",
        "saved_bytes": meter.peak,
        "saved_mb": round(meter.peak / 2**20, 1),
        "saved_passes": len(meter.passes),
        "saved_mean_mb": round(statistics.fmean(meter.passes) / 2**20, 1),
        "saved_min_mb": round(min(meter.passes) / 2**20, 1),
    })
    return out


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def run_child(config: dict[str, Any], settings: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """``measure`` in a fresh interpreter (its own peak RSS); the child's last stdout line is its JSON."""
    cmd = [sys.executable, "-m", "benchmarks.memory", "--child", json.dumps({"config": config, "settings": settings})]
    proc = subprocess.run(cmd, cwd=report.REPO, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{config['label']}: child exited {proc.returncode}: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- figures


def metrics_for(device_type: str) -> list[str]:
    """Memory columns that exist on the device (the targets are judged on each)."""
    return ["saved_mb", "cuda_peak_mb"] if device_type == "cuda" else ["saved_mb", "rss_delta_mb"]


EXACT = {"saved_mb": "saved_bytes"}


def add_ratios(rows: list[dict[str, Any]], metrics: Sequence[str]) -> None:
    """``<metric>_vs_darts`` / ``_vs_gdas`` and ``seconds_vs_darts`` on every row (None when a reference is absent)."""
    by = {r["label"]: r for r in rows}
    for row in rows:
        for ref in (REFERENCE, SECOND):
            base = by.get(ref)
            for m in (*metrics, "seconds_per_iteration"):
                key = f"{'seconds' if m == 'seconds_per_iteration' else m}_vs_{ref}"
                src = EXACT.get(m, m)  # ratios from the unrounded value where there is one
                value, denom = row.get(src), (base or {}).get(src)
                row[key] = round(value / denom, 3) if value is not None and denom else None


def check_targets(rows: list[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per ROME row and memory metric: the ratios to DARTS and GDAS against the targets."""
    checks = []
    for row in rows:
        if row["algorithm"] != "rome":
            continue
        for m in metrics:
            for ref, limit in TARGETS.items():
                ratio = row.get(f"{m}_vs_{ref}")
                checks.append({"config": row["label"], "metric": m, "reference": ref, "ratio": ratio,
                               "target": limit, "met": None if ratio is None else bool(ratio <= limit)})
    return checks


def collect(configs: Sequence[str], settings: dict[str, Any], log=print) -> dict[str, Any]:
    """Run the baseline and every configuration, each in its own process; rows with ratios and checks."""
    import torch

    wants_cuda = settings["device"] == "cuda" or (settings["device"] == "auto" and torch.cuda.is_available())
    device_type = "cuda" if wants_cuda else "cpu"
    settings = {**settings, "device": device_type}
    baseline = run_child(parse_config(BASELINE), settings)
    log(f"memory: baseline process RSS {baseline['rss_peak_mb']:.0f} MB")
    rows = []
    for text in configs:
        t0 = time.perf_counter()
        row = run_child(parse_config(text), settings)
        row["rss_delta_mb"] = round(row["rss_peak_mb"] - baseline["rss_peak_mb"], 1)
        row["wall_seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        mem = f"cuda peak {row['cuda_peak_mb']:.0f} MB" if device_type == "cuda" else f"RSS +{row['rss_delta_mb']:.0f} MB"
        log(f"memory: {text:8s} saved {row['saved_mb']:8.1f} MB | {mem} | {row['seconds_per_iteration']:.3f} s/it")
    metrics = metrics_for(device_type)
    add_ratios(rows, metrics)
    return {"device": device_type, "settings": settings, "baseline_rss_mb": baseline["rss_peak_mb"],
            "rows": rows, "targets": check_targets(rows, metrics), "memory_metrics": metrics}


# ----------------------------------------------------------------------------- table


METRIC_TITLES = {"saved_mb": "saved for backward, peak (MB)", "rss_delta_mb": "peak RSS − baseline (MB)",
                 "cuda_peak_mb": "cuda max allocated (MB)"}


def _num(value: float | None, digits: int) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def table(doc: dict[str, Any]) -> str:
    """Markdown: one row per configuration, memory, time and ratios; the targets; the paper beside them."""
    f = doc["figures"]
    metrics = f["memory_metrics"]
    s = f["settings"]
    header = ["config", "K", *[METRIC_TITLES[m] for m in metrics], "saved, mean of passes (MB)",
              *[f"{METRIC_TITLES[m].split(' (')[0]} ÷ DARTS" for m in metrics],
              "s / iteration", "time ÷ DARTS", "paper GB", "paper ÷ DARTS"]
    rows = []
    for r in f["rows"]:
        paper_gb = PAPER["peak_memory_gb"].get(r["algorithm"])
        rows.append([r["label"], r["k_samples"], *[_num(r.get(m), 1) for m in metrics], _num(r.get("saved_mean_mb"), 1),
                     *[_num(r.get(f"{m}_vs_darts"), 3) for m in metrics], _num(r.get("seconds_per_iteration"), 3),
                     _num(r.get("seconds_vs_darts"), 3), _num(paper_gb, 1),
                     _num(paper_gb / PAPER["peak_memory_gb"]["darts"], 3) if paper_gb else None])
    lines = [f"**{f['device'].upper()}**, space {s['space']}, batch {s['batch_size']}, {s['layers']} cells, "
             f"{s['init_channels']} channels, {s['resolution']}x{s['resolution']}, median of {s['repeats']} "
             f"iterations after {s['warmup']} warm-up; baseline process RSS {f['baseline_rss_mb']:.0f} MB.", "",
             report.markdown_table(header, rows), ""]
    checks = [[c["config"], METRIC_TITLES[c["metric"]], f"÷ {c['reference']}", _num(c["ratio"], 3), f"≤ {c['target']}",
               "met" if c["met"] else ("missed" if c["met"] is False else "–")] for c in f["targets"]]
    lines += [report.markdown_table(["ROME", "memory", "ratio", "value", "target", ""], checks), "",
              report.provenance_line(doc)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto = cuda when available")
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help="comma-separated algorithm[:K] list (default: %(default)s); darts is the ratios' reference")
    p.add_argument("--space", default="darts")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first (>= 1)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="result JSON (default: benchmarks/results/memory_<device>.json)")
    p.add_argument("--no-readme", action="store_true", help="do not regenerate the README table")


def main(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Path:
    settings = {"space": args.space, "batch_size": args.batch, "layers": args.layers, "init_channels": args.channels,
                "resolution": args.resolution, "device": args.device, "warmup": args.warmup, "repeats": args.repeats}
    if args.warmup < 1 or args.repeats < 1:
        raise RomeError(f"--warmup {args.warmup} / --repeats {args.repeats}: expected both >= 1")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        try:
            parse_config(c)
        except ValueError as exc:
            raise RomeError(f"--configs: {exc}") from None
    t0 = time.perf_counter()
    load_before = report.machine()["load_average_1_5_15"]
    figures = collect(configs, settings, log=lambda m: print(m, file=sys.stderr, flush=True))
    figures["wall_seconds"] = round(time.perf_counter() - t0, 1)
    doc = report.result_document(NAME, report.command_line(NAME, argv), figures, PAPER,
                                 load_average_before=load_before)
    out = args.out or report.RESULTS_DIR / f"memory_{figures['device']}.json"
    report.write_result(doc, out)
    if not args.no_readme:
        report.update_readme(f"memory_{figures['device']}", table(doc))
    return out


def _child(payload: str) -> int:
    spec = json.loads(payload)
    print(json.dumps(measure(spec["config"], **{k: v for k, v in spec["settings"].items()
                                               if k in ("space", "layers", "init_channels", "batch_size", "resolution",
                                                        "device", "warmup", "repeats")})))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child(sys.argv[2]))
    sys.exit("usage: python -m benchmarks memory [options]")
