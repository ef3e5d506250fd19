"""Seconds per iteration: NCHW eager vs channels_last (and torch.compile, bf16) for the search and the retraining.

Issue 23's question: which memory layout and which compilation make a step fastest on a device, so
that ``channels_last: auto`` (rome.layout) and ``train.compile: auto`` (rome.training.compile) follow
a measurement. Configurations:

  * ``darts``, ``pc_darts``, ``gdas``, ``rome:1``, ``rome:7``: one search iteration, the loop's own
    (``rome.search.step.search_step``: architecture step then weight step, the paper's optimisers),
    on a random batch;
  * ``train``: one retraining step of the DARTS-V2 network (timm model ``rome_darts_cifar``, genotype
    the published cell ``darts_v2``) through the trainer's own ``train_one_epoch`` (auxiliary head weight
    0.4, drop-path probability 0.1 held fixed within the process, grad clip 5, SGD momentum 0.9,
    weight decay 3e-4: the default preset's protocol).

Variants: ``eager`` (NCHW, the old default), ``cl`` (channels_last, what ``auto`` picks on CUDA and on
a CPU with oneDNN); with ``--compile`` ``compile`` and ``compile_cl`` for the retraining
(``torch.compile`` of the network, as ``rome train`` does) and ``compile_cl`` for the search: every
candidate op module compiled on its own (the sampled path changes from step to step, the ops and their
shapes do not, so each op type compiles once per shape and the path stays Python); with ``--bf16``
``bf16_cl`` (bf16 autocast on top of channels_last; on the CPU the search step is wrapped in autocast
here, since ``rome search`` ignores ``search.amp`` there: the measurement that decides whether it
should). Every (configuration, variant) runs in a fresh process: one untimed first iteration (its
time is reported as the first-call cost: compilation with an empty Inductor cache, oneDNN's kernel
selection, allocator warm-up), one more untimed warm-up (9 for a search with compiled ops: ops first
sampled later compile then; 17 for a compiled retraining, so its figure is a long run's steady state),
then ``--iters`` timed iterations (median). Repeats are interleaved (all
variants of round 1, then round 2, ...) so a change in the machine's load hits every variant alike;
the figure is the median over the repeats, and the ratios are against NCHW eager of the same config.

    python -m benchmarks speed                         # paper size: batch 64, 8 cells, 16 ch, 32 px, 2 threads
    python -m benchmarks speed --quick                 # rome:1, gdas, train; 1 repeat
    python -m benchmarks speed --compile --bf16        # + torch.compile (first call ~2 min on a CPU) and bf16
    python -m benchmarks speed --device cuda           # benchmarks/run_gpu.sh
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import report
from rome.errors import RomeError

NAME = "speed"
SEARCH_CONFIGS = ("darts", "pc_darts", "gdas", "rome:1", "rome:7")
TRAIN = "train"
ALL_CONFIGS = (*SEARCH_CONFIGS, TRAIN)
QUICK_CONFIGS = ("rome:1", "gdas", TRAIN)
BASE_VARIANTS = ("eager", "cl")
COMPILE_VARIANTS = ("compile", "compile_cl")
BF16_VARIANTS = ("bf16_cl",)
VARIANT_TITLES = {"eager": "NCHW eager", "cl": "channels_last", "compile": "torch.compile",
                  "compile_cl": "compile + channels_last", "bf16_cl": "bf16 + channels_last"}
SIZES = {"paper": {"batch_size": 64, "layers": 8, "init_channels": 16, "resolution": 32},
         "tiny": {"batch_size": 2, "layers": 2, "init_channels": 4, "resolution": 8}}
SEARCH_COMPILE_WARMUP = 8  # extra untimed steps of a search with compiled op modules (``measure``)
# extra untimed steps of a compiled retraining, so the figure is a long run's steady state (``measure``). Before
# rome.allocator the first ~8 steps after a cold compile ran up to ~10 % slower in one probe; with it the
# first 8 steps differ from the rest by ~2 % (compile_trend: 0.406 s, then 0.394-0.407 s)
TRAIN_COMPILE_WARMUP = 16
# issue 23's done-when: the default search iteration <= 0.7 x NCHW eager (ROME K=1, GDAS), the default
# retraining step, for a run long enough to compile, <= 0.6 x
TARGETS = {"rome:1": 0.7, "gdas": 0.7, TRAIN: 0.6}
PAPER = {"note": "the ROME paper reports no per-iteration times; issue 23's CPU figures (NCHW eager / channels_last,"
                 " s/iter): ROME K=1 2.02-2.14 / 1.13-1.26, GDAS 2.55-2.62 / 1.88-2.16, retraining 0.937 / 0.710,"
                 " compile 0.520 (first call 137 s), compile + channels_last 0.514 (first call 85 s)"}


def variants_for(config: str, compile_: bool, bf16: bool) -> list[str]:
    """The variants measured for ``config``: the search's compile is its op modules' (with channels_last)."""
    out = list(BASE_VARIANTS)
    if compile_:
        out += COMPILE_VARIANTS if config == TRAIN else ["compile_cl"]
    if bf16:
        out += BF16_VARIANTS
    return out


# ----------------------------------------------------------------------------- one measurement (child process)


def compile_op_modules(model: Any) -> None:
    """Replace every candidate op of every edge by its ``torch.compile``d self."""
    import torch

    for cell in model.cells:
        for edge in getattr(cell, "edge_ops", ()):
            for i, op in enumerate(edge):
                edge[i] = torch.compile(op)


def _build_search(config: str, s: dict[str, Any], dev: Any, fmt: Any, amp: str, compiled: bool = False):
    import contextlib

    import torch

    from rome.search.algorithms import SearchAlgorithm
    from rome.search.step import OptimizerSettings, build_step_parts, search_step
    from rome.search.supernet import build_supernet
    from rome.spaces import get_space

    name, _, k = config.partition(":")
    sp = get_space("darts")
    algo = SearchAlgorithm(name, sp, k_samples=int(k) if k else 1, generator=torch.Generator().manual_seed(s["seed"]))
    algo.arch.to(dev)
    model = build_supernet(sp, s["init_channels"], 10, s["layers"], 3, partial=algo.partial).to(dev)
    model = model.to(memory_format=fmt)
    if compiled:
        compile_op_modules(model)
    x = torch.randn(s["batch_size"], 3, s["resolution"], s["resolution"], device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (s["batch_size"],), device=dev)
    parts = build_step_parts(model, algo, OptimizerSettings(), torch.Generator().manual_seed(s["seed"] + 1))
    batch = itertools.repeat((x, y))
    # the search honours search.amp on CUDA only; on the CPU autocast is applied around the step here
    outer = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp == "bf16" and dev.type == "cpu" else \
        contextlib.nullcontext

    def step() -> float:
        with outer():
            return search_step(parts, batch, batch, 5.0, amp)
    return step


def _build_train(s: dict[str, Any], dev: Any, fmt: Any, amp: str, compiled: bool):
    import torch

    from rome.genotype.named import published_path
    from rome.training import network
    from rome.training.compile import compiled_forward
    from rome.training.loop import StepSettings, train_one_epoch

    source = network.load_source(published_path("darts_v2"))  # a published cell (rome.genotype.named)
    kwargs = {"genotype": source.genotype.to_dict(), "num_classes": 10, "in_chans": 3, "layers": s["layers"],
              "init_channels": s["init_channels"]}
    model = network.build("rome_darts_cifar", kwargs, auxiliary=True, drop_path_rate=0.1).to(dev)
    network.set_drop_path(model, 0.1)
    model = model.to(memory_format=fmt)
    # as rome train: the network's own parameters, the drop-path probability a graph input, the allocator set
    forward = compiled_forward(model, 0.1) if compiled else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    criterion = torch.nn.CrossEntropyLoss()
    settings = StepSettings(device=dev, aux_weight=0.4, grad_clip=5.0, amp=amp,
                            channels_last=fmt == torch.channels_last)
    x = torch.randn(s["batch_size"], 3, s["resolution"], s["resolution"], device=dev)
    y = torch.randint(0, 10, (s["batch_size"],), device=dev)
    batch = [(x, y)]
    return lambda: train_one_epoch(forward, batch, 1, optimizer, criterion, settings, progress=False)


def measure(config: str, variant: str, settings: dict[str, Any]) -> dict[str, Any]:
    """First-call seconds and the median seconds of ``iters`` iterations of one (config, variant), in this process."""
    import torch

    torch.set_num_threads(settings["threads"])
    torch.manual_seed(settings["seed"])
    dev = torch.device(settings["device"])
    fmt = torch.channels_last if variant.endswith("cl") else torch.contiguous_format
    amp = "bf16" if variant.startswith("bf16") else "none"
    if config == TRAIN:
        step = _build_train(settings, dev, fmt, amp, compiled=variant.startswith("compile"))
    else:
        step = _build_search(config, settings, dev, fmt, amp, compiled=variant.startswith("compile"))

    def timed() -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - t0

    first = timed()
    timed()  # a second untimed iteration: a compiled step may still specialise once (e.g. grad-mode guards)
    if variant.startswith("compile"):
        # search: each step samples other ops, and an op (type, shape) first sampled late compiles then; warm
        # until the sampled ops have been seen. Retraining: skip the steps right after the compile. Either way
        # the timed steps are the compiled steady state.
        for _ in range(TRAIN_COMPILE_WARMUP if config == TRAIN else SEARCH_COMPILE_WARMUP):
            timed()
    times = [timed() for _ in range(settings["iters"])]
    return {"config": config, "variant": variant, "first_call_s": round(first, 4),
            "seconds_per_iteration": round(statistics.median(times), 4), "seconds_all": [round(t, 4) for t in times],
            "torch_threads": torch.get_num_threads(), "device": str(dev)}


def run_child(config: str, variant: str, settings: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """``measure`` in a fresh interpreter; its last stdout line is the JSON."""
    payload = json.dumps({"config": config, "variant": variant, "settings": settings})
    # an empty Inductor cache per process: the first call is what compiling costs on a new machine, not a
    # replay of the previous repeat's kernels (warm, ~5 s instead of ~70 s on the development CPU)
    with tempfile.TemporaryDirectory(prefix="rome-speed-inductor-") as cache:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--child", payload], cwd=report.REPO,
                              capture_output=True, text=True, timeout=timeout, check=False,
                              env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache})
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{config}/{variant}: child exited {proc.returncode}: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- figures


def summarise(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (config, variant): medians over the repeats, and the ratio to the config's NCHW eager."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in runs:
        row = rows.setdefault((r["config"], r["variant"]), {"config": r["config"], "variant": r["variant"],
                                                            "repeats_s": [], "first_calls_s": []})
        row["repeats_s"].append(r["seconds_per_iteration"])
        row["first_calls_s"].append(r["first_call_s"])
        row.setdefault("all_s", []).extend(r.get("seconds_all") or [r["seconds_per_iteration"]])
    for row in rows.values():
        row["seconds_per_iteration"] = round(statistics.median(row["repeats_s"]), 4)
        row["first_call_s"] = round(statistics.median(row["first_calls_s"]), 2)
        # the fastest timed iteration: on a shared machine other processes only ever add time, so the
        # minimum is the figure least disturbed by them (timeit's advice); the median stays the headline
        row["min_seconds"] = round(min(row.pop("all_s")), 4)
    for row in rows.values():
        base = rows.get((row["config"], "eager"))
        row["ratio_vs_eager"] = (round(row["seconds_per_iteration"] / base["seconds_per_iteration"], 3)
                                 if base and base["seconds_per_iteration"] else None)
        row["min_ratio_vs_eager"] = round(row["min_seconds"] / base["min_seconds"], 3) if base else None
    return list(rows.values())


def default_variant(config: str, device: str) -> str:
    """What the presets run: channels_last auto (NHWC on CUDA / oneDNN CPUs); for the retraining of a run long
    enough, train.compile auto compiles too where compiling is faster on the device at all (its COMPILED_RATIO
    < 1: CUDA, and this CPU since rome.allocator keeps the compiled step from re-faulting its memory)."""
    import torch

    from rome.layout import nhwc_preferred
    from rome.training.compile import COMPILED_RATIO

    nhwc = nhwc_preferred(torch.device(device))
    if config == TRAIN and COMPILED_RATIO.get(device, 1.0) < 1.0:
        return "compile_cl" if nhwc else "compile"
    return "cl" if nhwc else "eager"


def check_targets(rows: Sequence[dict[str, Any]], device: str) -> list[dict[str, Any]]:
    """Issue 23's done-when per measured target config: the default's ratio (for the retraining: of a run long
    enough to compile, as train.compile auto decides for the paper's protocol)."""
    by = {(r["config"], r["variant"]): r for r in rows}
    out = []
    for config, limit in TARGETS.items():
        variant = default_variant(config, device)
        row = by.get((config, variant))
        if row is None or row["ratio_vs_eager"] is None:
            continue
        out.append({"config": config, "setting": "default", "variant": variant, "ratio": row["ratio_vs_eager"],
                    "target": limit, "met": bool(row["ratio_vs_eager"] <= limit)})
    return out


def collect(configs: Sequence[str], settings: dict[str, Any], *, repeats: int, compile_: bool, bf16: bool,
            log=print) -> dict[str, Any]:
    """Every (config, variant) in a fresh process, ``repeats`` interleaved rounds; rows with ratios and targets."""
    plan = [(c, v) for c in configs for v in variants_for(c, compile_, bf16)]
    runs = []
    for rnd in range(repeats):
        for config, variant in plan:
            t0 = time.perf_counter()
            r = run_child(config, variant, settings)
            r["repeat"] = rnd
            r["wall_seconds"] = round(time.perf_counter() - t0, 1)
            runs.append(r)
            log(f"speed: round {rnd + 1}/{repeats} {config:8s} {variant:10s} {r['seconds_per_iteration']:.4f} s/it "
                f"(first call {r['first_call_s']:.2f} s, process {r['wall_seconds']:.0f} s)")
    rows = summarise(runs)
    return {"device": settings["device"], "settings": {**settings, "repeats": repeats, "compile": compile_, "bf16": bf16,
                                                      "configs": list(configs)},
            "rows": rows, "runs": runs, "targets": check_targets(rows, settings["device"])}


# ----------------------------------------------------------------------------- table


def table(doc: dict[str, Any]) -> str:
    """Markdown: s/iteration per config and variant (× NCHW eager; first call for compiled), then the targets."""
    f = doc["figures"]
    s = f["settings"]
    present = [v for v in VARIANT_TITLES if any(r["variant"] == v for r in f["rows"])]
    by = {(r["config"], r["variant"]): r for r in f["rows"]}
    body = []
    for config in [c for c in ALL_CONFIGS if any(r["config"] == c for r in f["rows"])]:
        cells = []
        for v in present:
            r = by.get((config, v))
            if r is None:
                cells.append(None)
                continue
            text = f"{r['seconds_per_iteration']:.3f}"
            if v != "eager":
                text += f" (× {report.fmt(r['ratio_vs_eager'], 3)})"
            if r.get("min_seconds") is not None:
                text += f"; min {r['min_seconds']:.3f}" + (f" (× {report.fmt(r['min_ratio_vs_eager'], 3)})"
                                                          if v != "eager" else "")
            if v.startswith("compile"):
                text += f", first call {r['first_call_s']:.0f} s"
            cells.append(text)
        label = "retraining step, DARTS-V2" if config == TRAIN else f"search iteration, {config}"
        body.append([label, *cells])
    extra = ", ".join(x for x, on in (("compile", s.get("compile")), ("bf16", s.get("bf16"))) if on)
    lines = [(f"**{f['device'].upper()}**, batch {s['batch_size']}, {s['layers']} cells, {s['init_channels']} channels, "
             f"{s['resolution']}x{s['resolution']}, {s['threads']} torch threads; seconds per iteration, median of "
             f"{s['repeats']} interleaved repeat(s), each a fresh process timing {s['iters']} iteration(s) after 2 "
             f"untimed ones (compiled: {2 + SEARCH_COMPILE_WARMUP} for a search, {2 + TRAIN_COMPILE_WARMUP} for the "
             "retraining); (× ratio to NCHW eager); min: the fastest timed iteration over all repeats"
             f"{'; ' + extra if extra else ''}."), "",
             report.markdown_table(["what", *[VARIANT_TITLES[v] for v in present]], body), ""]
    if f["targets"]:
        checks = [[c["config"], f"{c['setting']} ({VARIANT_TITLES[c['variant']]})", report.fmt(c["ratio"], 3),
                   f"≤ {c['target']}", "met" if c["met"] else "missed"] for c in f["targets"]]
        lines += [report.markdown_table(["issue 23 target", "setting", "× NCHW eager", "target", ""], checks), ""]
    lines.append(report.provenance_line(doc) + f" Load average before / after: {doc.get('load_average_before')} / "
                 f"{doc.get('load_average_after')}; wall {f.get('wall_seconds', 0) / 60:.1f} min.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto = cuda when available")
    p.add_argument("--configs", default=None,
                   help=f"comma-separated subset of {','.join(ALL_CONFIGS)} (default: all; --quick: "
                        f"{','.join(QUICK_CONFIGS)})")
    p.add_argument("--size", default="paper", choices=sorted(SIZES),
                   help="paper: batch 64, 8 cells, 16 channels, 32 px; tiny: batch 2, 2 cells, 4 channels, 8 px")
    p.add_argument("--threads", type=int, default=2, help="torch threads in every measuring process")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 3; --quick: 1)")
    p.add_argument("--iters", type=int, default=None, help="timed iterations per process (default 3; --quick: 2)")
    p.add_argument("--quick", action="store_true", help="fewer repeats and iterations, rome:1, gdas and train only")
    p.add_argument("--compile", action="store_true", help="also torch.compile: the retraining network, the search's op modules")
    p.add_argument("--bf16", action="store_true", help="also bf16 autocast + channels_last")
    p.add_argument("--out", type=Path, default=None, help="result JSON (default: benchmarks/results/speed_<device>.json)")
    p.add_argument("--no-readme", action="store_true", help="do not regenerate the README table")


def main(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Path:
    configs = [c.strip() for c in (args.configs or ",".join(QUICK_CONFIGS if args.quick else ALL_CONFIGS)).split(",")
               if c.strip()]
    unknown = [c for c in configs if c not in ALL_CONFIGS]
    if unknown or not configs:
        raise RomeError(f"--configs {args.configs!r}: unknown {unknown}; expected a subset of {','.join(ALL_CONFIGS)}")
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    iters = args.iters if args.iters is not None else (2 if args.quick else 3)
    if repeats < 1 or iters < 1 or args.threads < 1:
        raise RomeError(f"--repeats {repeats} / --iters {iters} / --threads {args.threads}: expected >= 1")
    import torch

    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RomeError("--device cuda: no CUDA device visible to torch")
    settings = {"size": args.size, **SIZES[args.size], "device": device, "threads": args.threads, "iters": iters,
                "seed": 0}
    t0 = time.perf_counter()
    load_before = report.machine()["load_average_1_5_15"]
    figures = collect(configs, settings, repeats=repeats, compile_=args.compile, bf16=args.bf16,
                      log=lambda m: print(m, file=sys.stderr, flush=True))
    figures["wall_seconds"] = round(time.perf_counter() - t0, 1)
    doc = report.result_document(NAME, report.command_line(NAME, argv), figures, PAPER,
                                 load_average_before=load_before,
                                 load_average_after=report.machine()["load_average_1_5_15"])
    out = args.out or report.RESULTS_DIR / f"speed_{device}.json"
    report.write_result(doc, out)
    if not args.no_readme:
        report.update_readme(f"speed_{device}", table(doc))
    return out


def _child(payload: str) -> int:
    spec = json.loads(payload)
    print(json.dumps(measure(spec["config"], spec["variant"], spec["settings"])))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child(sys.argv[2]))
    sys.exit("usage: python -m benchmarks speed [options]")
