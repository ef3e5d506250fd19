"""rome: a reproducible NAS pipeline (ROME, ICCV 2023, and the DARTS / PC-DARTS / GDAS baselines).

Stages, in pipeline order (each reads params.yaml, writes one artifact folder, prints its path):
  prepare -> search -> derive -> train -> evaluate -> aggregate
`dvc repro` or `snakemake` runs them all over params.yaml's sweep; run one by hand as below.
Every knob: `rome params [SECTION]` (value, origin, allowed values, meaning, which stage reads it).

examples:
  rome params search                                  # the search knobs and where each value comes from
  rome train --set preset=smoke --set train.genotype=pc_darts   # retrain a published cell

Shell completion: `rome --print-completion bash > ~/.local/share/bash-completion/completions/rome`
(zsh: --print-completion zsh), through shtab.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path
from types import ModuleType

from rome import __version__, stopping
from rome.errors import RomeError, is_disk_full, is_unwritable, unwritable_error
from rome.logs import LineTrackingStream, close_progress_bars, configure_logging
from rome.outputs import LAYOUTS, check_replaceable

logger = logging.getLogger(__name__)

STAGE_HELP = {
    "params": "show every param: effective value, origin, allowed values, meaning, which stage reads it",
    "genotypes": "list the published cells usable by name (darts_v1, darts_v2, pc_darts, gdas)",
    "prepare": "prepare the dataset: fixed, seeded, class-stratified splits + manifest",
    "search": "architecture search (ROME / GDAS / DARTS / PC-DARTS / random) with checkpoint-resume",
    "derive": "derive genotype.json (+ cell pictures) from the searched architecture parameters",
    "train": "retrain the derived (or a given) genotype from scratch with timm's training utilities",
    "evaluate": "test accuracy, params, FLOPs, latency (+ NAS-Bench-201 lookup) -> metrics.json",
    "aggregate": "mean +- std and best over the sweep's seeds -> summary table",
    "audit": "which params, code and data produced an artifact; would the workspace reproduce it",
    "pipeline": "write or check dvc.yaml from the stage table and each stage's imports",
    "table": "build a paper table (tables/<name>.yaml) through DVC or Snakemake, or report its runs",
}
NOT_STAGES = ("audit", "pipeline", "table", "params", "genotypes")
NO_PARAMS = ("pipeline", "table", "genotypes")  # they never read params: no --params / --set
LIGHT = ("audit", "pipeline", "table", "params", "genotypes")  # modules cheap to import for their options
DISTRIBUTED_STAGES = ("search", "train")


def stage_module(name: str) -> ModuleType:
    return importlib.import_module(f"rome.stages.{name}")


def stage_epilog(name: str) -> str | None:
    """What a stage's --help says about its params (from the stage table; no heavy import)."""
    from rome.pipeline.spec import STAGES

    spec = STAGES.get(name)
    if spec is None:
        return None
    tops = f" and top-level {', '.join(spec.top_level)}" if spec.top_level else ""
    sections = ", ".join(spec.sections)
    return (f"reads params: {sections}{tops}. Each key's value, meaning and allowed values: "
            f"`rome params {spec.sections[0]}`.")


def build_parser(selected: str | None = None, full: bool = True) -> argparse.ArgumentParser:
    """All commands get the common options; only ``selected`` imports its module for its own options
    (so ``rome --help`` stays fast and one stage's heavy imports never slow another). ``full`` False
    (a --help request): heavy stage modules are not imported, so help never loads torch."""
    parser = argparse.ArgumentParser(prog="rome", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rome {__version__}")
    try:
        import shtab

        shtab.add_argument_to(parser, ["--print-completion"])
    except ImportError:  # shtab comes with DVC; completion is optional
        pass
    sub = parser.add_subparsers(dest="stage", metavar="<command>", required=True)
    for name, help_text in STAGE_HELP.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=stage_epilog(name))
        if name not in NO_PARAMS:
            p.add_argument("--params", default="params.yaml", metavar="FILE",
                           help="params file (default: %(default)s); keys override the selected preset")
            p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                           help="override one param, e.g. --set search.k_samples=7 (repeatable; value parsed as YAML)")
        if name not in NOT_STAGES:
            p.add_argument("--out", type=Path, default=None, metavar="DIR",
                           help="write the artifact here instead of the folder derived from the params")
            p.add_argument("--input", dest="inputs", action="append", default=[], metavar="STAGE=DIR",
                           help="read an upstream stage's artifact from DIR (default: the folder derived from the params)")
            p.add_argument("--threads", type=int, default=None, metavar="N",
                           help="torch threads (default: torch's choice); not a param: it never changes a result's identity")
            p.add_argument("--wait", action="store_true",
                           help="if another run holds the output folder, wait for it instead of refusing")
        if name == "train":
            p.add_argument("--fresh", action="store_true",
                           help="discard the resume checkpoint (state/<run>/train_ckpt/) and start again from epoch 0")
        if name == "search":  # declared here, not in the stage module, so --help lists it without importing torch
            p.add_argument("--estimate", action="store_true",
                           help="time a few warmed-up iterations of this exact search on this device and print "
                                "s/iteration, the projected search time, peak memory and whether it fits; writes nothing")
        if name == selected and (full or name in LIGHT):
            add = getattr(stage_module(name), "add_arguments", None)
            if add is not None:
                add(p)
    return parser


def parse_inputs(items: list[str]) -> dict[str, Path]:
    """``--input STAGE=DIR`` options -> {stage: folder}, one-line errors on a malformed item."""
    from rome.paths import STAGES

    inputs: dict[str, Path] = {}
    for item in items:
        stage, sep, folder = item.partition("=")
        if not sep or stage not in STAGES or not folder:
            raise RomeError(f"--input {item!r}: expected STAGE=DIR with STAGE one of {list(STAGES)}")
        inputs[stage] = Path(folder)
    return inputs


def torchrun_argv(nproc: int, argv: list[str]) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node=N -m rome.cli <argv>``:
    ``--standalone`` picks a free local port, so several runs share a node."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "rome.cli", *argv]


def main(argv: list[str] | None = None) -> int:
    stderr = sys.stderr
    sys.stderr = LineTrackingStream(stderr)  # an error line must start its own line (rome.logs)
    try:
        return _main(argv)
    finally:
        sys.stderr = stderr


def _say(line: str) -> None:
    """A last line on stderr, on a line of its own: open progress bars closed, a partial line ended."""
    close_progress_bars()
    start_line = getattr(sys.stderr, "start_line", None)
    if start_line is not None:
        start_line()
    print(line, file=sys.stderr)


def _main(argv: list[str] | None) -> int:
    if not sys.stderr.isatty():
        # logs (DVC, Snakemake, SLURM): a progress line every 30 s instead of one per step
        os.environ.setdefault("TQDM_MININTERVAL", "30")
    configure_logging()  # messages: INFO and up, one plain line each, on stderr (rome.logs)
    argv = sys.argv[1:] if argv is None else argv
    selected = next((a for a in argv if a in STAGE_HELP), None)
    parser = build_parser(selected, full=not ({"-h", "--help"} & set(argv)))
    args = parser.parse_args(argv)
    module = stage_module(args.stage)
    try:
        with stopping.on_signals():
            if args.stage in NOT_STAGES:
                return int(module.main(args) or 0)
            written = _run_stage(module, args, argv)
    except OSError as exc:
        where = exc.filename or args.__dict__.get("out") or "the output folder"
        if is_disk_full(exc):
            # a write outside rome's own helpers (e.g. a library appending to a CSV): still one line
            _say(f"rome {args.stage}: error: {where}: no space left on device; free space there "
                 f"or write elsewhere (--out DIR, or results_dir)")
        elif is_unwritable(exc):
            _say(f"rome {args.stage}: error: {' '.join(str(unwritable_error(where, exc)).split())}")
        else:
            raise
        return 2
    except RomeError as exc:
        one_line = " ".join(str(exc).split())  # the promise is ONE line, whatever a library put in it
        _say(f"rome {args.stage}: error: {one_line}")
        return 2
    except stopping.Stopped as exc:
        _say(stopping.message(args.stage, exc.signum))
        return stopping.exit_code(exc.signum)
    except KeyboardInterrupt:  # before the handlers were installed
        _say(f"rome {args.stage}: interrupted")
        return 130
    if written is None:  # a non-main rank of a distributed run, or --estimate (it printed its own lines)
        return 0
    print(written)
    return 0


def _run_stage(module: ModuleType, args: argparse.Namespace, argv: list[str]) -> Path | None:
    """Resolve params and the output folder, refuse an output that is not ours to replace, take the
    folder locks, sweep the provable litter of killed runs, run the stage; its artifact folder."""
    from rome import litter, locks
    from rome.config import load_params
    from rome.paths import stage_dir, using_inputs

    params = load_params(args.params, args.overrides)
    if getattr(args, "estimate", False):  # a measurement, not a run: no lock, no sweep, nothing written
        module.estimate(params, args)
        return None
    out = Path(args.out if args.out is not None else stage_dir(params, args.stage))
    is_main_rank = os.environ.get("RANK", "0") == "0"
    if is_main_rank:  # before any work, lock or torchrun: a folder we may not replace is refused now
        check_replaceable(out, LAYOUTS.get(args.stage))
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
    nproc = int(params.get(args.stage, {}).get("nproc", 1)) if args.stage in DISTRIBUTED_STAGES else 1
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        # search.nproc / train.nproc: run this very command under torchrun (DVC, Snakemake, shell alike)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, torchrun_argv(nproc, argv))
    group = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if args.stage not in DISTRIBUTED_STAGES:
            raise RomeError(f"WORLD_SIZE = {os.environ['WORLD_SIZE']}: rome {args.stage} runs in one process; "
                            f"expected it launched without torchrun (only {' and '.join(DISTRIBUTED_STAGES)} "
                            "run across processes)")
        from rome import distributed
        from rome.reproducibility import resolve_device

        group = distributed.init(resolve_device(params["device"]))
    try:
        if group is not None and not group.is_main:
            # rank 0 alone holds the locks, sweeps and writes; the others compute with it
            with using_inputs(parse_inputs(args.inputs)):
                module.run(params, out, args)
            return None  # rank 0 prints the folder: one last line on stdout, as with one process
        folders = locks.stage_folders(params, args.stage, out)
        with locks.hold(folders, wait=args.wait) as dead, using_inputs(parse_inputs(args.inputs)):
            # leftovers of killed runs, proven theirs by the lock each dead run held (rome.litter)
            swept = [p for folder in folders for p in litter.sweep(folder, dead.get(Path(folder).absolute(), set()))]
            if swept:
                logger.warning("rome %s: removed %d temporary file(s) of killed runs: %s",
                               args.stage, len(swept), ", ".join(str(p) for p in swept))
            return module.run(params, out, args)
    finally:
        if group is not None:
            distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())
