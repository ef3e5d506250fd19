"""Search memory and speed: DARTS, PC-DARTS, GDAS, ROME K=1 and K=7 over the same number of passes.

A pass is one sub-network's forward and backward: an iteration of the search loop
(``rome.search.step.search_step``: the arch step first, K samples, Adam; then the weight step, K fresh
samples, clip 5, SGD; the paper's settings) makes 2K of them (GDAS, DARTS, PC-DARTS: 2; ROME K=7: 14).
Every configuration is measured over the same number of passes (``--passes``, 14 by default: one ROME
K=7 iteration, seven GDAS iterations), and memory is reported per pass, as the peak and the mean over
those passes, so a method that draws more sub-networks per iteration is not judged by a maximum over
more draws. Every configuration runs in a fresh process; a "baseline" process builds the same
supernet, optimisers and batch but runs no iteration, and its RSS is subtracted.

Memory, per pass (``benchmarks.pass_peaks``, ``rome.search.saved_tensors``):
  * ``saved_*`` (any device, deterministic for a seed): the total of tensors autograd saves for
    backward during the pass's forward (parameters excluded), from a replay of the measured passes
    (same state, same draws) under ``SavedTensorMeter``, after the timing and the RSS reading;
    ``saved_live_mb``: the most saved bytes alive at one time across passes (it exceeds the per-pass
    peak when one pass's graph outlives it);
  * ``rss_*`` (CPU): the peak resident set size during each pass (``VmHWM``, reset at every forward),
    minus the baseline process's RSS; ``rss_process_mb`` the whole process's peak (warm-up included);
  * ``cuda_*`` (GPU): ``torch.cuda.max_memory_allocated`` per pass (weights, gradients, optimiser
    state, batch and activations: what the paper's GB figures count).
Bounds: ``gdas@worst`` / ``rome@worst`` run the heaviest sub-network the method can draw on every
pass (``benchmarks.worst_case``: the heaviest op per edge and, for ROME, the heaviest kept edges,
found by measuring every op, in a separate probe process). ``<config>@before`` / ``@freed`` run the
architecture step as it was before the memory savings (``benchmarks.step_before``), for the
before/after table. Time: median seconds per iteration after ``--warmup`` iterations; CUDA events on
a GPU, ``time.perf_counter`` on the CPU.

    python -m benchmarks memory                       # paper setting: batch 64, 8 cells, 16 ch, 32x32
    python -m benchmarks memory --device cuda         # the same on a GPU (benchmarks/run_gpu.sh)
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
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
MAIN_CONFIGS = ("darts", "pc_darts", "gdas", "rome:1", "rome:7")
BOUND_CONFIGS = ("gdas@worst", "rome@worst")
BEFORE_CONFIGS = ("gdas@before", "rome:1@before", "rome:7@before", "rome:7@freed")
DEFAULT_CONFIGS = (*MAIN_CONFIGS, *BOUND_CONFIGS, *BEFORE_CONFIGS)
BASELINE, PROBE = "baseline", "probe"
VARIANTS = ("worst", "before", "freed")
WORST_ALGORITHMS = ("gdas", "rome")
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
    """``darts`` / ``gdas`` / ``rome:7`` / ``random:2`` / ``baseline``, optionally ``@worst`` / ``@before`` / ``@freed``.

    ``@worst``: the heaviest sub-network on every pass (gdas, rome); ``@before`` / ``@freed``: the
    architecture step before the memory savings (``benchmarks.step_before``).
    """
    from rome.algorithms import ALGORITHMS

    base, _, variant = text.partition("@")
    name, _, k = base.partition(":")
    if name not in (*ALGORITHMS, BASELINE):
        forms = [n if spec.fixed_k is not None else f"{n}:K" for n, spec in ALGORITHMS.items()]
        raise ValueError(f"unknown configuration {text!r}; expected {', '.join(forms)} or baseline, "
                         f"optionally with @{' / @'.join(VARIANTS)}")
    if variant and (variant not in VARIANTS or name == BASELINE):
        raise ValueError(f"unknown variant {text!r}; expected @{' / @'.join(VARIANTS)}")
    if variant == "worst" and name not in WORST_ALGORITHMS:
        raise ValueError(f"{text!r}: a worst case exists for the sampling methods {list(WORST_ALGORITHMS)} "
                         "(darts and pc_darts run their one mixed network on every pass)")
    takes_k = name in ALGORITHMS and ALGORITHMS[name].fixed_k is None
    label = (base if takes_k else name) + (f"@{variant}" if variant else "")
    return {"label": label, "algorithm": name, "k_samples": int(k) if k else 1, "variant": variant or None}


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


def _setup(algorithm: str, k_samples: int, space: str, layers: int, init_channels: int, batch_size: int,
           resolution: int, num_classes: int, device: str, seed: int) -> tuple[Any, ...]:
    """Supernet, algorithm, step parts and batch of one configuration, from the seed."""
    import torch

    from rome.search.algorithms import SearchAlgorithm
    from rome.search.step import OptimizerSettings, build_step_parts
    from rome.search.supernet import build_supernet
    from rome.spaces import get_space

    dev = torch.device(device)
    torch.manual_seed(seed)
    sp = get_space(space)
    algo = SearchAlgorithm(algorithm, sp, k_samples=k_samples, generator=torch.Generator().manual_seed(seed))
    algo.arch.to(dev)
    model = build_supernet(sp, init_channels, num_classes, layers, 3, partial=algo.partial).to(dev)
    x = torch.randn(batch_size, 3, resolution, resolution, device=dev)
    y = torch.randint(0, num_classes, (batch_size,), device=dev)
    gen = torch.Generator().manual_seed(seed + 1)
    parts = build_step_parts(model, algo, OptimizerSettings(), gen)
    return dev, algo, model, x, y, gen, parts


def probe(*, space: str = "darts", layers: int = 8, init_channels: int = 16, batch_size: int = 64,
          resolution: int = 32, num_classes: int = 10, device: str = "cpu", tau: float = 5.0,
          seed: int = 0, **_: Any) -> dict[str, Any]:
    """The heaviest sub-network of GDAS and of ROME (K irrelevant), measured op by op (``worst_case``)."""
    from benchmarks import worst_case

    out: dict[str, Any] = {}
    for name in WORST_ALGORITHMS:
        dev, algo, model, x, _, _, _ = _setup(name, 1, space, layers, init_channels, batch_size, resolution,
                                              num_classes, device, seed)
        costs = worst_case.op_costs(model, algo, x)
        choice = worst_case.heaviest_choice(algo, costs)
        out[name] = {"choice": {ct: [list(p) for p in pairs] for ct, pairs in choice.items()},
                     "described": worst_case.describe(algo, choice, costs)}
    return out


def measure(config: dict[str, Any], *, space: str = "darts", layers: int = 8, init_channels: int = 16,
            batch_size: int = 64, resolution: int = 32, num_classes: int = 10, device: str = "cpu",
            warmup: int = 1, passes: int = 14, mixed_passes: int | None = None, tau: float = 5.0, seed: int = 0,
            worst: dict[str, Any] | None = None) -> dict[str, Any]:
    """Time and per-pass memory of ``config`` over ``passes`` passes (run it in a fresh process for the RSS).

    ``mixed_passes``: passes for the methods that run the same mixed network on every pass (darts,
    pc_darts; default ``passes``): they draw nothing, so their per-pass figures do not depend on the
    number of passes, and DARTS's 9 GB passes are the slowest by far. ``worst``: the probe's output,
    needed for an ``@worst`` configuration.
    """
    import torch

    from benchmarks import step_before, worst_case
    from benchmarks.pass_peaks import PassPeaks
    from rome.search import step
    from rome.search.saved_tensors import SavedTensorMeter

    algorithm = config["algorithm"] if config["algorithm"] != BASELINE else "rome"
    dev, algo, model, x, y, gen, parts = _setup(algorithm, config["k_samples"], space, layers, init_channels,
                                                batch_size, resolution, num_classes, device, seed)
    batch = itertools.repeat((x, y))
    if algo.op_mode == "mixed" and mixed_passes is not None:
        passes = mixed_passes
    per_iteration = algo.k_samples * (2 if algo.learns_arch else 1)
    iterations = max(1, math.ceil(passes / per_iteration))
    out: dict[str, Any] = {
        "label": config["label"], "algorithm": config["algorithm"], "k_samples": algo.k_samples,
        "variant": config.get("variant"), "space": space, "layers": layers, "init_channels": init_channels,
        "batch_size": batch_size, "resolution": resolution, "device": str(dev), "torch_threads": torch.get_num_threads(),
        "supernet_params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 4),
        "passes_per_iteration": per_iteration, "iterations": iterations, "passes": iterations * per_iteration,
    }
    if config["algorithm"] == BASELINE:  # set-up only: the RSS every configuration pays before iterating
        out["rss_peak_mb"] = _rss_mb()
        return out
    variant = config.get("variant")
    if variant == "worst":
        if not worst or config["algorithm"] not in worst:
            raise RomeError(f"{config['label']}: needs the probe's heaviest sub-network (run through collect)")
        choice = {ct: [tuple(p) for p in pairs] for ct, pairs in worst[config["algorithm"]]["choice"].items()}
        parts.draw = lambda: [worst_case.forced_sample(algo, choice, gen, tau) for _ in range(algo.k_samples)]
    calls = [0]
    if variant in step_before.STEPS:
        old = step_before.STEPS[variant]

        def counted(*args: Any, **kwargs: Any) -> float:
            calls[0] += 1
            return old(*args, **kwargs)
        step.arch_gradients = counted  # search_step looks it up in its module at call time

    def iteration() -> None:
        step.search_step(parts, batch, batch, tau)

    for _ in range(warmup):
        iteration()
    # the measured passes start from this state; the saved-tensor replay restores it (same draws, same graph)
    state = copy.deepcopy({"model": model.state_dict(), "arch": algo.arch.state_dict(), "w": parts.w_opt.state_dict(),
                           "a": parts.a_opt.state_dict() if parts.a_opt else None, "gen": gen.get_state()})
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        out["cuda_static_mb"] = round(torch.cuda.memory_allocated(dev) / 2**20, 1)
    peaks = PassPeaks(model, dev)
    times = []
    for _ in range(iterations):
        with Timer(dev) as t:
            iteration()
        times.append(t.seconds)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    peaks.close()
    # Peak RSS is read BEFORE any saved-tensor hook runs (their Python objects and alias tensors would
    # add to it); the meter then replays the same passes from the same state, untimed.
    out["rss_process_mb"] = _rss_mb()
    model.load_state_dict(state["model"])
    algo.arch.load_state_dict(state["arch"])
    parts.w_opt.load_state_dict(state["w"])
    if parts.a_opt:
        parts.a_opt.load_state_dict(state["a"])
    gen.set_state(state["gen"])
    with SavedTensorMeter(model, list(model.parameters()) + list(algo.arch.parameters()), forward_only=True) as meter:
        for _ in range(iterations):
            iteration()
    if variant in step_before.STEPS and calls[0] != (warmup + 2 * iterations) * algo.learns_arch:
        raise RuntimeError(f"{config['label']}: the replaced architecture step ran {calls[0]} times; "
                           "search_step no longer calls rome.search.step.arch_gradients")
    out.update(_pass_stats(meter.passes, peaks.rss, peaks.cuda_mb))
    out.update({
        "seconds_per_iteration": round(statistics.median(times), 4),
        "seconds_per_pass": round(statistics.median(times) / per_iteration, 4),
        "seconds_all": [round(t, 4) for t in times],
        "timer": "cuda_events" if dev.type == "cuda" else "perf_counter",
        "saved_live_bytes": meter.live_peak,
        "saved_live_mb": round(meter.live_peak / 2**20, 1),
    })
    return out


def _pass_stats(saved: list[int], rss: list[float | None], cuda_mb: list[float]) -> dict[str, Any]:
    """Peak and mean over the passes of each per-pass measure (the lists are in pass order)."""
    out: dict[str, Any] = {"saved_bytes": max(saved), "saved_mb": round(max(saved) / 2**20, 1),
                           "saved_mean_mb": round(statistics.fmean(saved) / 2**20, 1),
                           "saved_min_mb": round(min(saved) / 2**20, 1), "saved_passes": len(saved),
                           "saved_per_pass_mb": [round(b / 2**20, 1) for b in saved]}
    if rss and all(r is not None for r in rss):
        out.update({"rss_peak_mb": round(max(rss), 1), "rss_mean_mb": round(statistics.fmean(rss), 1),
                    "rss_median_mb": round(statistics.median(rss), 1),
                    "rss_per_pass_mb": [round(r, 1) for r in rss], "rss_per_pass": True})
    else:  # the kernel does not let the process reset its peak: the process peak is all there is
        out["rss_per_pass"] = False
    if cuda_mb:
        out.update({"cuda_peak_mb": round(max(cuda_mb), 1), "cuda_mean_mb": round(statistics.fmean(cuda_mb), 1),
                    "cuda_per_pass_mb": [round(c, 1) for c in cuda_mb]})
    return out


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def run_child(config: dict[str, Any], settings: dict[str, Any], timeout: float | None = None,
              worst: dict[str, Any] | None = None) -> dict[str, Any]:
    """``measure`` (or the probe) in a fresh interpreter (its own peak RSS); the child's last stdout line is its JSON."""
    payload = {"config": config, "settings": settings, "worst": worst}
    cmd = [sys.executable, "-m", "benchmarks.memory", "--child", json.dumps(payload)]
    proc = subprocess.run(cmd, cwd=report.REPO, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{config['label']}: child exited {proc.returncode}: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- figures


def metrics_for(device_type: str) -> list[str]:
    """Peak-over-passes memory columns that exist on the device (the targets are judged on each)."""
    return ["saved_mb", "cuda_peak_mb"] if device_type == "cuda" else ["saved_mb", "rss_delta_mb"]


MEANS = {"saved_mb": "saved_mean_mb", "rss_delta_mb": "rss_delta_mean_mb", "cuda_peak_mb": "cuda_mean_mb"}
EXACT = {"saved_mb": "saved_bytes"}


def add_ratios(rows: list[dict[str, Any]], metrics: Sequence[str]) -> None:
    """``<metric>_vs_darts`` / ``_vs_gdas`` (peaks and means) and ``seconds_vs_darts`` on every row (None when a
    reference is absent). The references are the plain ``darts`` and ``gdas`` rows."""
    by = {r["label"]: r for r in rows}
    for row in rows:
        for ref in (REFERENCE, SECOND):
            base = by.get(ref)
            for m in (*metrics, *[MEANS[m] for m in metrics if m in MEANS], "seconds_per_iteration"):
                key = f"{'seconds' if m == 'seconds_per_iteration' else m}_vs_{ref}"
                src = EXACT.get(m, m)  # ratios from the unrounded value where there is one
                value, denom = row.get(src), (base or {}).get(src)
                row[key] = round(value / denom, 3) if value is not None and denom else None


def check_targets(rows: list[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per plain ROME row and memory metric (peak and mean over passes): the ratios to DARTS and GDAS against the targets."""
    checks = []
    for row in rows:
        if row["algorithm"] != "rome" or row.get("variant"):
            continue
        for m in (*metrics, *[MEANS[m] for m in metrics if m in MEANS]):
            for ref, limit in TARGETS.items():
                ratio = row.get(f"{m}_vs_{ref}")
                checks.append({"config": row["label"], "metric": m, "reference": ref, "ratio": ratio,
                               "target": limit, "met": None if ratio is None else bool(ratio <= limit)})
    return checks


def before_after(rows: list[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per ``@before`` / ``@freed`` row and its plain counterpart (same draws): both values and after ÷ before."""
    by = {r["label"]: r for r in rows}
    keys = ["saved_mb", "saved_mean_mb", "saved_live_mb", *[m for m in metrics if m != "saved_mb"],
            *[MEANS[m] for m in metrics if m != "saved_mb"], "rss_delta_median_mb", "seconds_per_iteration"]
    out = []
    for row in rows:
        if row.get("variant") not in ("before", "freed"):
            continue
        after = by.get(row["label"].split("@")[0])
        if after is None:
            continue
        entry: dict[str, Any] = {"config": after["label"], "step": row["variant"]}
        for k in keys:
            b, a = row.get(k), after.get(k)
            if b is None or a is None:
                continue
            entry[k] = {"before": b, "after": a, "ratio": round(a / b, 3) if b else None}
        out.append(entry)
    return out


def collect(configs: Sequence[str], settings: dict[str, Any], log=print) -> dict[str, Any]:
    """The baseline, the worst-case probe (when a bound is asked for) and every configuration, each in its own
    process; rows with ratios, the targets and the before/after comparison."""
    import torch

    wants_cuda = settings["device"] == "cuda" or (settings["device"] == "auto" and torch.cuda.is_available())
    device_type = "cuda" if wants_cuda else "cpu"
    settings = {**settings, "device": device_type}
    baseline = run_child(parse_config(BASELINE), settings)
    log(f"memory: baseline process RSS {baseline['rss_peak_mb']:.0f} MB")
    parsed = [parse_config(c) for c in configs]
    worst = None
    if any(c["variant"] == "worst" for c in parsed):
        worst = run_child({"label": PROBE}, settings)
        for name, w in worst.items():
            log(f"memory: heaviest {name} sub-network: " + "; ".join(
                f"{ct}: {_ops_summary(d['edges'])}" for ct, d in w["described"].items()))
    rows = []
    for cfg in parsed:
        t0 = time.perf_counter()
        row = run_child(cfg, settings, worst=worst)
        base_rss = baseline["rss_peak_mb"]
        row["rss_delta_mb"] = round((row["rss_peak_mb"] if row["rss_per_pass"] else row["rss_process_mb"]) - base_rss, 1)
        if row["rss_per_pass"]:
            row["rss_delta_mean_mb"] = round(row["rss_mean_mb"] - base_rss, 1)
            row["rss_delta_median_mb"] = round(row["rss_median_mb"] - base_rss, 1)
        row["rss_process_delta_mb"] = round(row["rss_process_mb"] - base_rss, 1)
        row["wall_seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        mem = (f"cuda peak {row['cuda_peak_mb']:.0f} / mean {row['cuda_mean_mb']:.0f} MB" if device_type == "cuda"
               else f"RSS +{row['rss_delta_mb']:.0f} / +{row.get('rss_delta_mean_mb', float('nan')):.0f} MB")
        log(f"memory: {cfg['label']:14s} {row['passes']} passes | saved peak {row['saved_mb']:7.1f} / mean "
            f"{row['saved_mean_mb']:7.1f} / live {row['saved_live_mb']:7.1f} MB | {mem} | "
            f"{row['seconds_per_iteration']:.3f} s/it | {row['wall_seconds']:.0f} s")
    metrics = metrics_for(device_type)
    add_ratios(rows, metrics)
    return {"device": device_type, "settings": settings, "baseline_rss_mb": baseline["rss_peak_mb"],
            "worst_case": worst, "rows": rows, "targets": check_targets(rows, metrics),
            "before_after": before_after(rows, metrics), "memory_metrics": metrics}


def _ops_summary(edges: Sequence[Sequence[Any]]) -> str:
    """``8 edges: 6 sep_conv_3x3 + 2 dil_conv_5x5`` from [[edge, op name], ...]."""
    counts: dict[str, int] = {}
    for _, op in edges:
        counts[op] = counts.get(op, 0) + 1
    return f"{len(edges)} edges: " + " + ".join(f"{n} {op}" for op, n in counts.items())


# ----------------------------------------------------------------------------- table


METRIC_TITLES = {"saved_mb": "saved for backward (MB)", "rss_delta_mb": "RSS − baseline (MB)",
                 "cuda_peak_mb": "cuda max allocated (MB)"}
SHORT = {"saved_mb": "saved", "rss_delta_mb": "RSS", "cuda_peak_mb": "cuda"}


def _num(value: float | None, digits: int) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def _pm(row: dict[str, Any], m: str) -> str | None:
    """``peak / mean`` over passes."""
    peak, mean = row.get(m), row.get(MEANS[m])
    return None if peak is None else f"{peak:.1f} / {_num(mean, 1) or '–'}"


def table(doc: dict[str, Any]) -> str:
    """Markdown: the methods over equal passes, the worst-case bounds, the before/after savings, the targets."""
    f = doc["figures"]
    metrics = f["memory_metrics"]
    s = f["settings"]
    rows = f["rows"]
    passes = s.get("passes")
    header = ["config", "K", "passes (iterations)", *[f"{METRIC_TITLES[m]}, peak / mean" for m in metrics],
              *[f"{SHORT[m]} ÷ {ref}, peak / mean" for m in metrics for ref in (REFERENCE, SECOND)],
              "s / iteration", "s / pass", "paper GB", "paper ÷ DARTS"]
    main = []
    for r in rows:
        if r.get("variant"):
            continue
        paper_gb = PAPER["peak_memory_gb"].get(r["algorithm"])
        ratios = [f"{_num(r.get(f'{m}_vs_{ref}'), 3) or '–'} / {_num(r.get(f'{MEANS[m]}_vs_{ref}'), 3) or '–'}"
                  for m in metrics for ref in (REFERENCE, SECOND)]
        main.append([r["label"], r["k_samples"], f"{r['passes']} ({r['iterations']})", *[_pm(r, m) for m in metrics],
                     *ratios, _num(r.get("seconds_per_iteration"), 3), _num(r.get("seconds_per_pass"), 3),
                     _num(paper_gb, 1), _num(paper_gb / PAPER["peak_memory_gb"]["darts"], 3) if paper_gb else None])
    lines = [f"**{f['device'].upper()}**, space {s['space']}, batch {s['batch_size']}, {s['layers']} cells, "
             f"{s['init_channels']} channels, {s['resolution']}x{s['resolution']}; every configuration measured over "
             f"{passes} passes (one sub-network's forward + backward each"
             + (f"; DARTS and PC-DARTS, which run one network on every pass: {s['mixed_passes']}"
                if s.get("mixed_passes") not in (None, passes) else "") + f") after {s['warmup']} warm-up iteration(s); "
             f"memory per pass, peak / mean over the passes; baseline process RSS {f['baseline_rss_mb']:.0f} MB.", "",
             report.markdown_table(header, main), ""]
    bounds = []
    for r in rows:
        if r.get("variant") != "worst":
            continue
        drawn = [d for d in rows if d["algorithm"] == r["algorithm"] and not d.get("variant")]
        heaviest = max(drawn, key=lambda d: d["saved_bytes"]) if drawn else None
        described = (f.get("worst_case") or {}).get(r["algorithm"], {}).get("described", {})
        ops = "; ".join(f"{ct}: {_ops_summary(d['edges'])}" for ct, d in described.items())
        bounds.append([r["label"], ops, *[_num(r.get(m), 1) for m in metrics],
                       *[_num(r.get(f"{m}_vs_{ref}"), 3) for m in metrics for ref in (REFERENCE, SECOND)],
                       heaviest["label"] if heaviest else None,
                       _num(heaviest["saved_bytes"] / r["saved_bytes"], 3) if heaviest else None])
    if bounds:
        lines += ["Worst case: the heaviest sub-network each sampling method can draw, run on every pass "
                  "(heaviest op per edge and, for ROME, heaviest kept edges, measured op by op); DARTS and "
                  "PC-DARTS run one network on every pass, their rows above are their bound.", "",
                  report.markdown_table(["bound", "sub-network (per cell type)", *[METRIC_TITLES[m] for m in metrics],
                                         *[f"{SHORT[m]} ÷ {ref}" for m in metrics for ref in (REFERENCE, SECOND)],
                                         "drawn", "drawn peak saved ÷ bound"], bounds), ""]
    ba = f.get("before_after") or []
    if ba:
        cols = [k for k in ("saved_mb", "saved_mean_mb", "saved_live_mb", "rss_delta_mb", "rss_delta_median_mb",
                            "cuda_peak_mb", "cuda_mean_mb", "seconds_per_iteration") if any(k in e for e in ba)]
        titles = {"saved_mb": "saved, peak", "saved_mean_mb": "saved, mean", "saved_live_mb": "saved, live at once",
                  "rss_delta_mb": "RSS − baseline, peak", "rss_delta_median_mb": "RSS − baseline, median",
                  "cuda_peak_mb": "cuda, peak", "cuda_mean_mb": "cuda, mean", "seconds_per_iteration": "s / iteration"}
        body = []
        for e in ba:
            body.append([e["config"], e["step"], *[(f"{e[k]['before']:.{3 if k.startswith('seconds') else 1}f} → "
                                                   f"{e[k]['after']:.{3 if k.startswith('seconds') else 1}f} "
                                                   f"(× {_num(e[k]['ratio'], 3)})") if k in e else None for k in cols]])
        lines += ["Savings in the architecture step, same draws, one run: before → after (× after ÷ before); "
                  "`before` = the step of commit 1031379, `freed` = it with each pass's loss freed after "
                  "`autograd.grad`; after = the current step (weights frozen during the architecture passes).", "",
                  report.markdown_table(["config", "against", *[titles[k] for k in cols]], body), ""]
    checks = [[c["config"], METRIC_TITLES.get(c["metric"], c["metric"]) if c["metric"] in METRIC_TITLES
               else f"{METRIC_TITLES[next(k for k, v in MEANS.items() if v == c['metric'])]}, mean",
               f"÷ {c['reference']}", _num(c["ratio"], 3), f"≤ {c['target']}",
               "met" if c["met"] else ("missed" if c["met"] is False else "–")] for c in f["targets"]]
    lines += [report.markdown_table(["ROME", "memory (peak unless mean)", "ratio", "value", "target", ""], checks), "",
              report.provenance_line(doc)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto = cuda when available")
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help="comma-separated algorithm[:K][@worst|@before|@freed] list (default: %(default)s); "
                        "darts and gdas are the ratios' references")
    p.add_argument("--space", default="darts")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first (>= 1)")
    p.add_argument("--passes", type=int, default=14,
                   help="sub-network passes measured per configuration, rounded up to whole iterations (default 14: "
                        "one ROME K=7 iteration, seven GDAS ones)")
    p.add_argument("--mixed-passes", type=int, default=None,
                   help="passes for darts and pc_darts, which run the same network on every pass (default: --passes)")
    p.add_argument("--out", type=Path, default=None, help="result JSON (default: benchmarks/results/memory_<device>.json)")
    p.add_argument("--no-readme", action="store_true", help="do not regenerate the README table")


SETTING_KEYS = ("space", "layers", "init_channels", "batch_size", "resolution", "device", "warmup", "passes",
                "mixed_passes")


def main(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Path:
    settings = {"space": args.space, "batch_size": args.batch, "layers": args.layers, "init_channels": args.channels,
                "resolution": args.resolution, "device": args.device, "warmup": args.warmup, "passes": args.passes,
                "mixed_passes": args.mixed_passes}
    if args.warmup < 1 or args.passes < 1 or (args.mixed_passes is not None and args.mixed_passes < 1):
        raise RomeError(f"--warmup {args.warmup} / --passes {args.passes} / --mixed-passes {args.mixed_passes}: "
                        "expected >= 1")
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
    settings = {k: v for k, v in spec["settings"].items() if k in SETTING_KEYS}
    if spec["config"]["label"] == PROBE:
        result = probe(**settings)
    else:
        result = measure(spec["config"], worst=spec.get("worst"), **settings)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child(sys.argv[2]))
    sys.exit("usage: python -m benchmarks memory [options]")
