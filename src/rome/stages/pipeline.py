"""``rome pipeline --write | --check``: keep dvc.yaml equal to what the stage table and the
stages' imports imply (see rome.pipeline). Not a stage: it runs no computation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rome.errors import RomeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite dvc.yaml")
    mode.add_argument("--check", action="store_true", help="exit 1 when dvc.yaml is stale")
    mode.add_argument("--show", metavar="STAGE", help="print the code files a stage depends on")
    parser.add_argument("--dvc-yaml", type=Path, default=Path("dvc.yaml"), help="the file (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    from rome.pipeline import dvcfile
    from rome.pipeline.codedeps import stage_code_files
    from rome.pipeline.spec import STAGES

    if args.show:
        if args.show not in STAGES:
            raise RomeError(f"--show {args.show!r}: unknown stage; expected one of {list(STAGES)}")
        print("\n".join(stage_code_files(args.show)))
        return 0
    if args.write:
        print(dvcfile.write(args.dvc_yaml))
        return 0
    if dvcfile.is_current(args.dvc_yaml):
        print(f"{args.dvc_yaml}: up to date")
        return 0
    print(f"{args.dvc_yaml}: stale; run `rome pipeline --write`", file=sys.stderr)
    return 1


def run(*_: object) -> None:  # pragma: no cover - the CLI calls main
    raise RomeError("pipeline is run through `rome pipeline --write|--check`")
