"""``rome table NAME --scale S``: build a paper table through DVC or Snakemake, or report what exists.

Not a stage: it computes nothing itself. ``--engine dvc`` writes the scale's generated stage set
(``rome.tables.dvcstages``) and runs ``dvc repro`` on the table's report stage; ``--engine snakemake``
asks Snakemake for the report file (``workflow/rules/tables.smk``); both run only the ``rome`` calls
whose runs are missing or stale. ``--estimate`` projects the cost on this device (rome.tables.estimate).
``--report`` writes the report from the runs that exist (a row
without runs says so); ``--plan`` prints each row's run folders; ``--check`` validates the files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from typing import TYPE_CHECKING

from rome.errors import RomeError

if TYPE_CHECKING:
    from rome.tables.definition import Scale, Table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="tables/<NAME>.yaml (default: every table)")
    parser.add_argument("--scale", default="smoke", help="a scale of tables/scales.yaml (default: %(default)s)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--engine", choices=("dvc", "snakemake"), help="build the runs and the report with this engine")
    mode.add_argument("--report", action="store_true", help="write the report from the runs that exist")
    mode.add_argument("--plan", action="store_true", help="print each row's run folders and whether each exists (done / partial / missing)")
    mode.add_argument("--write-dvc", action="store_true", help="only write tables/pipelines/<scale>/dvc.yaml")
    mode.add_argument("--check", action="store_true", help="validate the table files and scales; print a summary")
    mode.add_argument("--estimate", action="store_true",
                      help="time each run configuration's search (and retraining) steps on this device; print the "
                           "projected cost per row and in total over rows and seeds; builds nothing")
    mode.add_argument("--audit", metavar="ROW", help="`rome audit` each finished run of a row against its own params and data")
    parser.add_argument("--force", action="store_true",
                        help="with --report: write it even if it holds fewer filled rows than the report it replaces")
    parser.add_argument("--cores", type=int, default=2, help="Snakemake --cores (default: %(default)s)")


def _engine(cmd: list[str]) -> int:
    exe = shutil.which(cmd[0])
    if exe is None:
        raise RomeError(f"{cmd[0]}: not found on PATH; install the project (./tasks setup) or activate .venv")
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.run([exe, *cmd[1:]], env={**os.environ}).returncode


def _audit(tables: list[Table], scale: Scale, row_id: str) -> int:
    """Audit every run of one row (a table's report names the row)."""
    import shlex

    from rome import cli
    from rome.tables.runs import audit_command, plan_table

    if len(tables) != 1:
        raise RomeError("--audit ROW: name exactly one table")
    plans = {p.row.id: p for p in plan_table(tables[0], scale)}
    if row_id not in plans:
        raise RomeError(f"--audit {row_id!r}: no such row in {tables[0].path}; expected one of {list(plans)}")
    final = {"search": "search", "derive": "derive", "evaluate": "evaluate"}[tables[0].until]
    done = [r for r in plans[row_id].runs if r.folder(final).is_dir()]
    if not done:
        raise RomeError(f"--audit {row_id}: no finished run yet at scale {scale.name}; build the table first")
    for run in done:
        code = cli.main(shlex.split(audit_command(run, final))[1:])
        if code:
            return code
    return 0


def main(args: argparse.Namespace) -> int:
    from rome.tables import dvcstages
    from rome.tables.definition import get_scale, load_table, table_names
    from rome.tables.report import report_files, write_report
    from rome.tables.runs import dump_plan, plan_table

    scale = get_scale(args.scale)
    names = args.names or table_names()
    tables = [load_table(n) for n in names]
    if args.check:
        for t in tables:
            plans = plan_table(t, scale)
            print(f"{t.name}: {len(t.rows)} rows, {sum(len(p.runs) for p in plans)} runs at scale {scale.name}")
        return 0
    if args.plan:
        for t in tables:
            print(f"# {t.name} at scale {scale.name}\n{dump_plan(plan_table(t, scale))}")
        return 0
    if args.audit:
        return _audit(tables, scale, args.audit)
    if args.estimate:
        from rome.tables.estimate import estimate_table

        for t in tables:
            print("\n".join(estimate_table(t, scale, plan_table(t, scale))))
        return 0
    if args.report:
        for t in tables:
            for path in write_report(t, scale, plan_table(t, scale), force=args.force):
                print(path)
        return 0
    if args.write_dvc or args.engine == "dvc":
        # every table of the scale: tables share runs, and DVC allows one stage per output
        path = dvcstages.write([load_table(n) for n in table_names()], scale)
        print(path)
        if args.write_dvc:
            return 0
        return _engine(["dvc", "repro", *(f"{path}:report-{t.name}" for t in tables)])
    if args.engine == "snakemake":
        targets = [str(report_files(t.name, scale.name)[0]) for t in tables]
        # --rerun-incomplete: a job killed mid-run reruns (and rome resumes it from its checkpoint)
        return _engine(["snakemake", "--cores", str(args.cores), "--rerun-incomplete", *targets])
    raise RomeError("rome table: say what to do: --engine dvc|snakemake, --report, --plan, --write-dvc or --check")


def run(*_: object) -> None:  # pragma: no cover - the CLI calls main
    raise RomeError("table is run through `rome table NAME --scale S ...`")
