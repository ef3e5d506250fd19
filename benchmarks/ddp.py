"""Search throughput across processes: images per second of one search iteration, 1 vs N processes.

One iteration is the search loop's own (``rome.search.step.search_step``) on random data of the
given shape, an architecture batch and a weight batch, so an iteration handles 2 x batch images:
throughput = 2 x batch / (median seconds per iteration). Configurations, each a fresh launch:
  * ``1p x Nt``: one process with N torch threads (what one process gets from the same cores);
  * ``1p x 1t``: one process, one thread (the per-process budget of the multi-process rows);
  * ``Np draws``: torchrun, N processes of one thread, the K draws shared (exact: search.parallel = draws);
  * ``Np batch``: torchrun, N processes of one thread, each all K draws on 1/N of the batch (data parallel).
Speed-up is against ``1p x Nt``. The K draws of a step split evenly only when N divides K.

    python -m benchmarks ddp                       # CPU smoke scale: darts, 5 cells, 8 ch, 16x16, batch 32, K=4
    python -m benchmarks ddp --nproc 2 --k 4 --device cpu
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import report
from rome.errors import RomeError

NAME = "ddp"
PAPER: dict[str, Any] = {"note": "the paper reports no multi-process figures; ROME's K draws run one after another"}


def measure(settings: dict[str, Any], mode: str) -> dict[str, Any] | None:
    """Median seconds per iteration on this rank's share (run under torchrun for N > 1); rank 0 reports."""
    import torch

    from rome import distributed
    from rome.search.algorithms import SearchAlgorithm
    from rome.search.step import OptimizerSettings, build_step_parts, search_step
    from rome.search.supernet import build_supernet
    from rome.spaces import get_space

    device = torch.device(settings["device"])
    group = distributed.init(device)
    device = distributed.local_device(device)
    torch.manual_seed(0)
    space = get_space(settings["space"])
    algo = SearchAlgorithm("rome", space, k_samples=settings["k"], generator=torch.Generator().manual_seed(0))
    algo.arch.to(device)
    model = build_supernet(space, settings["channels"], 10, settings["layers"], 3, partial=algo.partial).to(device)
    group = group.for_model(model, mode)
    b, r = settings["batch"], settings["resolution"]
    x = torch.randn(b, 3, r, r, device=device)
    y = torch.randint(0, 10, (b,), device=device)
    parts = build_step_parts(model, algo, OptimizerSettings(), torch.Generator().manual_seed(1))
    batches = itertools.repeat((x, y))

    def iteration() -> float:
        group.barrier()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        search_step(parts, batches, batches, 5.0, group=group)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    for _ in range(settings["warmup"]):
        iteration()
    times = [iteration() for _ in range(settings["repeats"])]
    if group.distributed:
        import torch.distributed as dist

        gathered: list[Any] = [None] * group.world_size
        dist.all_gather_object(gathered, times)
        times = [max(ts) for ts in zip(*gathered)]  # an iteration ends when the slowest rank ends
        distributed.shutdown()
    if not group.is_main:
        return None
    seconds = statistics.median(times)
    return {"seconds_per_iteration": round(seconds, 4), "seconds_all": [round(t, 4) for t in times],
            "images_per_second": round(2 * b / seconds, 1), "torch_threads": torch.get_num_threads()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_child(settings: dict[str, Any], nproc: int, threads: int, mode: str) -> dict[str, Any]:
    payload = json.dumps({"settings": settings, "mode": mode, "threads": threads})
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WANDB_MODE": "disabled"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "benchmarks.ddp", "--child", payload]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
               f"--master_port={_free_port()}", "-m", "benchmarks.ddp", "--child", payload]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RomeError(f"ddp benchmark child ({nproc} process(es), {mode}) failed: {done.stderr.strip()[-500:]}")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1])


def collect(settings: dict[str, Any], log=print) -> dict[str, Any]:
    n = settings["nproc"]
    configs = [(f"1p x {n}t", 1, n, "draws"), ("1p x 1t", 1, 1, "draws"),
               (f"{n}p draws", n, 1, "draws"), (f"{n}p batch", n, 1, "batch")]
    rows = []
    for label, nproc, threads, mode in configs:
        t0 = time.perf_counter()
        row = {"label": label, "processes": nproc, "threads_per_process": threads,
               "parallel": mode if nproc > 1 else None, **run_child(settings, nproc, threads, mode)}
        row["wall_seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        log(f"ddp: {label:10s} {row['images_per_second']:8.1f} images/s ({row['seconds_per_iteration']:.3f} s/it)")
    reference = rows[0]["images_per_second"]
    for row in rows:
        row["speedup"] = round(row["images_per_second"] / reference, 3)
    return {"settings": settings, "rows": rows}


def table(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    s = f["settings"]
    header = ["config", "processes", "threads / process", "parallel", "s / iteration", "images / s",
              f"÷ 1p x {s['nproc']}t"]
    rows = [[r["label"], r["processes"], r["threads_per_process"], r["parallel"] or "–",
             f"{r['seconds_per_iteration']:.3f}", f"{r['images_per_second']:.1f}", f"{r['speedup']:.2f}"]
            for r in f["rows"]]
    return "\n".join([
        f"**{s['device'].upper()}**, rome K={s['k']}, space {s['space']}, {s['layers']} cells, {s['channels']} channels, "
        f"{s['resolution']}x{s['resolution']}, batch {s['batch']} (an iteration = arch + weight batch = "
        f"{2 * s['batch']} images), median of {s['repeats']} iterations after {s['warmup']} warm-up; "
        "a multi-process iteration ends when its slowest rank ends.", "",
        report.markdown_table(header, rows), "", report.provenance_line(doc)])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: one GPU per process")
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--k", type=int, default=4, help="K draws per step (rome)")
    p.add_argument("--space", default="darts")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--resolution", type=int, default=16)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", type=Path, default=None, help="result JSON (default: benchmarks/results/ddp_<device>.json)")
    p.add_argument("--no-readme", action="store_true", help="do not regenerate the README table")


def main(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Path:
    if args.nproc < 2 or args.batch % args.nproc or min(args.warmup, args.repeats) < 1:
        raise RomeError(f"--nproc {args.nproc} / --batch {args.batch} / --warmup {args.warmup} / --repeats "
                        f"{args.repeats}: expected nproc >= 2 dividing the batch, warmup and repeats >= 1")
    settings = {k: getattr(args, k) for k in ("device", "nproc", "k", "space", "batch", "layers", "channels",
                                              "resolution", "warmup", "repeats")}
    t0 = time.perf_counter()
    load_before = report.machine()["load_average_1_5_15"]
    figures = collect(settings, log=lambda m: print(m, file=sys.stderr, flush=True))
    figures["wall_seconds"] = round(time.perf_counter() - t0, 1)
    doc = report.result_document(NAME, report.command_line(NAME, argv), figures, PAPER, load_average_before=load_before)
    out = args.out or report.RESULTS_DIR / f"ddp_{args.device}.json"
    report.write_result(doc, out)
    if not args.no_readme:
        report.update_readme(f"ddp_{args.device}", table(doc))
    return out


def _child(payload: str) -> int:
    import torch

    spec = json.loads(payload)
    torch.set_num_threads(spec["threads"])
    row = measure(spec["settings"], spec["mode"])
    if row is not None:
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child(sys.argv[2]))
    sys.exit("usage: python -m benchmarks ddp [options]")
